"""The source is only read: a role with SELECT only (and read-only transactions) is enough.

Nothing subsetter does may need more than SELECT on the source: no temp tables, no sequences,
no locks beyond a read snapshot. These tests run a real subset as such a role on both servers,
and check that the source's contents are unchanged afterwards.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import psycopg
import pymysql
import pytest

import subsetter
from fixtures_db.demo import load_demo
from tests import oracle
from tests.conftest import MYSQL, PG, Backend

pytestmark = pytest.mark.server

CONFIG = """
source: {{url: '{url}'}}
seeds:
  - {{table: customer, where: "id <= 10"}}
  - {{table: product, percent: 10, children: false}}
"""


def _fingerprint(db: Backend) -> dict[str, int]:
    return {t: oracle.count(db, t) for t in oracle.tables(db)}


def _run(url: str, target: Backend, tmp_path: Path) -> subsetter.RunResult:
    config = subsetter.parse_config(CONFIG.format(url=url), tmp_path / "ro.yml", {})
    return subsetter.run(config, subsetter.RunOptions(target_url=target.url))


def test_postgres_select_only_role(make_backend: Callable[[str], Backend], tmp_path: Path) -> None:
    source = make_backend("postgres")
    load_demo(source.url)
    role, password = f"subsetter_ro_{secrets.token_hex(4)}", secrets.token_hex(8)
    with psycopg.connect(**PG, dbname=source.database, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        admin.execute(f"ALTER ROLE {role} SET default_transaction_read_only = on")
        admin.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        admin.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    before = _fingerprint(source)
    try:
        target = make_backend("postgres")
        url = f"postgresql://{role}:{password}@127.0.0.1:5432/{source.database}"
        result = _run(url, target, tmp_path)
        assert result.verification is not None and result.verification.ok
        assert result.rows["customer"] >= 10
        assert password not in result.source
        oracle.assert_subset_of(source, target)
    finally:
        with psycopg.connect(**PG, dbname=source.database, autocommit=True) as admin:
            admin.execute(f"DROP OWNED BY {role}")
            admin.execute(f"DROP ROLE {role}")
    assert _fingerprint(source) == before


def test_mariadb_select_only_user(make_backend: Callable[[str], Backend], tmp_path: Path) -> None:
    source = make_backend("mysql")
    load_demo(source.url)
    user, password = f"subsetter_ro_{secrets.token_hex(4)}", secrets.token_hex(8)
    admin = pymysql.connect(**MYSQL, autocommit=True)
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
            cur.execute(f"GRANT SELECT ON `{source.database}`.* TO '{user}'@'%'")
        before = _fingerprint(source)
        target = make_backend("mysql")
        url = f"mysql://{user}:{password}@127.0.0.1:3306/{source.database}"
        result = _run(url, target, tmp_path)
        assert result.verification is not None and result.verification.ok
        oracle.assert_subset_of(source, target)
        assert _fingerprint(source) == before
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        admin.close()
