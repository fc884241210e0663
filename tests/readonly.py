"""The read-only source switch: with `SUBSETTER_READONLY_SOURCE=1`, sources are read as a role
that can only SELECT.

`as_reader(url)` turns a server URL (built and filled as the admin) into the same database seen
by a PostgreSQL role with SELECT only and `default_transaction_read_only = on`, or a MariaDB user
with SELECT only; the grants are made on the spot, since a test creates its tables first. One
role and one user per test session, dropped at its end (`drop_readers`). Without the variable,
URLs pass through unchanged. `.ci/run` runs the engine end-to-end tests a second time this way.
"""

from __future__ import annotations

import os
import secrets

import psycopg
import pymysql
from sqlalchemy.engine import make_url

from tests.conftest import MYSQL, PG

_NAME = f"subsetter_reader_{os.getpid()}"
_PASSWORD = secrets.token_hex(12)
_made: set[str] = set()


def enabled() -> bool:
    return os.environ.get("SUBSETTER_READONLY_SOURCE", "") not in ("", "0")


def as_reader(url: str) -> str:
    """The URL of the same database for the read-only role (unchanged when switched off)."""
    if not enabled():
        return url
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        _grant_pg(parsed.database or "")
    elif backend in ("mysql", "mariadb"):
        _grant_mysql(parsed.database or "")
    else:
        return url
    return parsed.set(username=_NAME, password=_PASSWORD).render_as_string(hide_password=False)


def _grant_pg(database: str) -> None:
    with psycopg.connect(**PG, dbname="postgres", autocommit=True) as admin:
        if "postgres" not in _made:
            admin.execute(f"CREATE ROLE {_NAME} LOGIN PASSWORD '{_PASSWORD}'")
            admin.execute(f"ALTER ROLE {_NAME} SET default_transaction_read_only = on")
            _made.add("postgres")
    with psycopg.connect(**PG, dbname=database, autocommit=True) as admin:
        schemas = admin.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
            "AND nspname <> 'information_schema'"
        ).fetchall()
        for (schema,) in schemas:
            quoted = '"' + schema.replace('"', '""') + '"'
            admin.execute(f"GRANT USAGE ON SCHEMA {quoted} TO {_NAME}")
            admin.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {quoted} TO {_NAME}")


def _grant_mysql(database: str) -> None:
    admin = pymysql.connect(**MYSQL, autocommit=True)
    try:
        with admin.cursor() as cur:
            if "mysql" not in _made:
                cur.execute(f"CREATE USER '{_NAME}'@'%%' IDENTIFIED BY %s", (_PASSWORD,))
                _made.add("mysql")
            cur.execute(f"GRANT SELECT ON `{database}`.* TO '{_NAME}'@'%'")
    finally:
        admin.close()


def drop_readers() -> None:
    """Drop the role and the user (their grants went with the test databases)."""
    if "postgres" in _made:
        with psycopg.connect(**PG, dbname="postgres", autocommit=True) as admin:
            for (db,) in admin.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE 'subsetter\\_t\\_%%' "
                "AND has_database_privilege(%s, datname, 'CONNECT')",
                (_NAME,),
            ).fetchall():
                try:
                    with psycopg.connect(**PG, dbname=db, autocommit=True) as conn:
                        conn.execute(f"DROP OWNED BY {_NAME}")
                except psycopg.Error:
                    pass  # a database another run is dropping right now
            admin.execute(f"DROP ROLE IF EXISTS {_NAME}")
    if "mysql" in _made:
        admin = pymysql.connect(**MYSQL, autocommit=True)
        try:
            with admin.cursor() as cur:
                cur.execute(f"DROP USER IF EXISTS '{_NAME}'@'%'")
        finally:
            admin.close()
    _made.clear()
