"""Database fixtures for every engine: a fresh empty database per test, and the sample datasets.

- `backend`: parametrized over sqlite, duckdb, postgres, mysql; a fresh empty database per test.
- `make_backend`: a factory for extra fresh databases (e.g. a target), dropped at test end.
- `pagila_pg`, `chinook_pg`, `chinook_mysql`, `sakila_mysql`, `chinook_sqlite`: sample datasets
  loaded once per session. They are sources: tests must never modify them.

A server that does not answer skips its tests locally and fails them under `CI=true`; so does a
missing datasets folder (`SUBSETTER_DATASETS`, default `<repo>/../shared/datasets`). Databases
on the servers get unique names (`subsetter_t_<pid>_<hex>`), so parallel runs sharing a server
never touch each other's databases; each run drops only what it created.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pymysql
import pytest

REPO = Path(__file__).resolve().parent.parent
# pyproject.toml sets no `pythonpath`, and `tests/` is not a package: make `fixtures_db` and
# `tests.oracle` importable under plain `pytest` as well as `python -m pytest`.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
# ssl_disabled: PyMySQL otherwise spends ~25 ms per connection on TLS setup, most of a test.
MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": "", "ssl_disabled": True}
SERVERS = ("postgres", "mysql")
ENGINES = ("sqlite", "duckdb", "postgres", "mysql")
Params = Any


@dataclass(frozen=True)
class Backend:
    """One database on one engine, reachable by URL (for subsetter) and by raw driver (for tests).

    `execute` and `query` open and close a connection per call, in autocommit, so a test never
    holds a lock or a transaction that the code under test would wait on. Parameters use the
    driver's own placeholder: `%s` on postgres and mysql, `?` on sqlite and duckdb.
    """

    name: str
    url: str
    database: str
    """The database name on a server, or the file path for sqlite and duckdb."""

    @property
    def placeholder(self) -> str:
        """Return the driver's parameter placeholder."""
        return "%s" if self.name in SERVERS else "?"

    def execute(self, sql: str, params: Params = None) -> None:
        """Run one statement and commit it."""
        self._run(sql, params, fetch=False)

    def query(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        """Run one statement and return all its rows as tuples."""
        return self._run(sql, params, fetch=True)

    def _run(self, sql: str, params: Params, *, fetch: bool) -> list[tuple[Any, ...]]:
        if self.name == "postgres":
            with psycopg.connect(**PG, dbname=self.database, autocommit=True) as conn:
                cur = conn.execute(sql, params)
                return [tuple(r) for r in cur.fetchall()] if fetch else []
        if self.name == "mysql":
            conn = pymysql.connect(**MYSQL, database=self.database, autocommit=True)
            try:
                with conn.cursor() as cur:
                    cur.execute(sql, params)
                    return [tuple(r) for r in cur.fetchall()] if fetch else []
            finally:
                conn.close()
        if self.name == "sqlite":
            sconn = sqlite3.connect(self.database, isolation_level=None)
            try:
                cur = sconn.execute(sql, params or ())
                return [tuple(r) for r in cur.fetchall()] if fetch else []
            finally:
                sconn.close()
        dconn = duckdb.connect(self.database)
        try:
            dconn.execute(sql, params)
            return [tuple(r) for r in dconn.fetchall()] if fetch else []
        finally:
            dconn.close()


def in_ci() -> bool:
    """Tell whether a missing server or dataset must fail the run instead of skipping."""
    return os.environ.get("CI", "").strip().lower() == "true"


def unavailable(reason: str) -> None:
    """Skip locally, fail under CI=true: CI must never pass by skipping everything."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: not skipping)", pytrace=False)
    pytest.skip(reason)


def unique_name() -> str:
    """Return a database name no other run on the same server can pick."""
    return f"subsetter_t_{os.getpid()}_{secrets.token_hex(4)}"


class Servers:
    """Reachability of each server, probed once per session, plus create/drop of databases."""

    def __init__(self) -> None:
        self._status: dict[str, str | None] = {}

    def require(self, engine: str) -> None:
        """Skip (or fail under CI) if `engine`'s server does not answer."""
        if engine not in self._status:
            self._status[engine] = self._probe(engine)
        error = self._status[engine]
        if error is not None:
            unavailable(
                f"{engine} server unreachable ({error}); start it: /work/shared/services.sh"
            )

    def create(self, engine: str, name: str) -> None:
        """Create an empty database `name` (UTF-8 on MariaDB)."""
        self.require(engine)
        if engine == "postgres":
            self._pg(f'CREATE DATABASE "{name}"')
        else:
            self._mysql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")

    def drop(self, engine: str, name: str) -> None:
        """Drop database `name`, even if a connection was left open on it."""
        if engine == "postgres":
            self._pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            self._mysql(f"DROP DATABASE IF EXISTS `{name}`")

    def _probe(self, engine: str) -> str | None:
        try:
            if engine == "postgres":
                self._pg("SELECT 1")
            else:
                self._mysql("SELECT 1")
        except Exception as exc:  # any driver error means "not usable": report it
            return f"{type(exc).__name__}: {exc}".splitlines()[0]
        return None

    @staticmethod
    def _pg(sql: str) -> None:
        with psycopg.connect(**PG, dbname="postgres", autocommit=True, connect_timeout=3) as c:
            c.execute(sql)

    @staticmethod
    def _mysql(sql: str) -> None:
        conn = pymysql.connect(**MYSQL, autocommit=True, connect_timeout=3)
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()


def server_url(engine: str, name: str) -> str:
    """Return the SQLAlchemy URL of database `name` on `engine`'s server."""
    if engine == "postgres":
        return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    return f"mysql+pymysql://root@127.0.0.1:3306/{name}"


@pytest.fixture(scope="session")
def servers() -> Servers:
    """Share one reachability probe per server across the session."""
    return Servers()


@pytest.fixture
def make_backend(servers: Servers, tmp_path: Path) -> Iterator[Callable[[str], Backend]]:
    """Return a factory of fresh empty databases; each is dropped at the end of the test."""
    created: list[tuple[str, str]] = []

    def make(engine: str) -> Backend:
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r}; expected one of {ENGINES}")
        if engine in SERVERS:
            name = unique_name()
            servers.create(engine, name)
            created.append((engine, name))
            return Backend(engine, server_url(engine, name), name)
        path = tmp_path / f"{engine}_{secrets.token_hex(4)}.{engine}"
        return Backend(engine, f"{engine}:///{path}", str(path))

    yield make
    for engine, name in created:
        servers.drop(engine, name)


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("duckdb", id="duckdb"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.server),
        pytest.param("mysql", id="mysql", marks=pytest.mark.server),
    ]
)
def backend(request: pytest.FixtureRequest, make_backend: Callable[[str], Backend]) -> Backend:
    """Give each test a fresh empty database, once per engine."""
    return make_backend(request.param)


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """Locate the public sample datasets (`SUBSETTER_DATASETS`, default ../shared/datasets)."""
    path = Path(os.environ.get("SUBSETTER_DATASETS", REPO.parent / "shared" / "datasets"))
    if not (path / "load.sh").is_file():
        unavailable(f"sample datasets not found at {path} (set SUBSETTER_DATASETS)")
    return path


def _load_dataset(servers: Servers, datasets: Path, dataset: str, engine: str) -> Iterator[Backend]:
    """Load `dataset` into a fresh uniquely named database with load.sh; drop it afterwards."""
    servers.require(engine)
    name = unique_name()
    script_engine = "mariadb" if engine == "mysql" else engine
    try:
        done = subprocess.run(
            [str(datasets / "load.sh"), dataset, script_engine, name],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            pytest.fail(f"load.sh {dataset} {script_engine} failed:\n{done.stderr[-2000:]}")
        yield Backend(engine, server_url(engine, name), name)
    finally:
        servers.drop(engine, name)


@pytest.fixture(scope="session")
def pagila_pg(servers: Servers, datasets_dir: Path) -> Iterator[Backend]:
    """Pagila on PostgreSQL, loaded once per session. Read only."""
    yield from _load_dataset(servers, datasets_dir, "pagila", "postgres")


@pytest.fixture(scope="session")
def chinook_pg(servers: Servers, datasets_dir: Path) -> Iterator[Backend]:
    """Chinook on PostgreSQL, loaded once per session. Read only."""
    yield from _load_dataset(servers, datasets_dir, "chinook", "postgres")


@pytest.fixture(scope="session")
def chinook_mysql(servers: Servers, datasets_dir: Path) -> Iterator[Backend]:
    """Chinook on MariaDB, loaded once per session. Read only."""
    yield from _load_dataset(servers, datasets_dir, "chinook", "mysql")


@pytest.fixture(scope="session")
def sakila_mysql(servers: Servers, datasets_dir: Path) -> Iterator[Backend]:
    """Sakila on MariaDB, loaded once per session. Read only."""
    yield from _load_dataset(servers, datasets_dir, "sakila", "mysql")


@pytest.fixture(scope="session")
def chinook_sqlite(datasets_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Backend:
    """Chinook as a SQLite file, copied once per session. Read only."""
    path = tmp_path_factory.mktemp("chinook") / "chinook.sqlite"
    shutil.copyfile(datasets_dir / "chinook" / "Chinook_Sqlite.sqlite", path)
    return Backend("sqlite", f"sqlite:///{path}", str(path))


_DATASET_FIXTURES = {
    "pagila_pg": True,
    "chinook_pg": True,
    "chinook_mysql": True,
    "sakila_mysql": True,
    "chinook_sqlite": False,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests using a dataset fixture `datasets` (and `server` when it lives on a server).

    Why: `-m "not server"` and `-m "not datasets"` then select correctly without each test
    repeating marks its fixtures already imply.
    """
    for item in items:
        used = [f for f in getattr(item, "fixturenames", ()) if f in _DATASET_FIXTURES]
        if used:
            item.add_marker(pytest.mark.datasets)
        if any(_DATASET_FIXTURES[f] for f in used):
            item.add_marker(pytest.mark.server)


@pytest.fixture(scope="session")
def demo_on(servers: Servers) -> Iterator[Callable[[str], Backend]]:
    """The demo shop on a server, built once per session and engine. A source: read only."""
    from fixtures_db.demo import load_demo

    made: dict[str, Backend] = {}

    def get(engine: str) -> Backend:
        if engine not in made:
            name = unique_name()
            servers.create(engine, name)
            made[engine] = Backend(engine, server_url(engine, name), name)
            load_demo(made[engine].url)
        return made[engine]

    yield get
    for db in made.values():
        servers.drop(db.name, db.database)


@pytest.fixture(scope="session", autouse=True)
def _readonly_readers() -> Iterator[None]:
    """Drop the read-only role and user of SUBSETTER_READONLY_SOURCE=1 at the session's end."""
    yield
    from tests.readonly import drop_readers

    drop_readers()
