"""Helpers of the reliability tests: fault injection on the servers, and before/after checks.

- `kill_sessions(db)` ends subsetter's own sessions on a database (`pg_terminate_backend`,
  MariaDB `KILL`), the way a DBA, a failover or a network cut would.
- `Hook` is a Reporter that calls a function at a chosen moment of a run (after a seed was read,
  after a table was loaded), so a fault lands mid-extract or mid-load every time, not by luck.
- `fingerprint(db)` sums up every row of every table, to prove a source was not changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from subsetter.reporting import NullReporter
from tests import oracle
from tests.conftest import Backend


def kill_sessions(db: Backend) -> int:
    """End every session subsetter holds on `db`; return how many were ended."""
    if db.name == "postgres":
        rows = db.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND application_name = 'subsetter' AND pid <> pg_backend_pid()",
            (db.database,),
        )
        return sum(1 for (ok,) in rows if ok)
    ids = db.query(
        "SELECT id FROM information_schema.processlist WHERE db = %s AND id <> CONNECTION_ID()",
        (db.database,),
    )
    for (pid,) in ids:
        db.execute(f"KILL {int(pid)}")
    return len(ids)


def fingerprint(db: Backend) -> dict[str, str]:
    """A digest of every row of every table (order-free): equal exactly when nothing changed."""
    out = {}
    for table in oracle.tables(db):
        rows = sorted(repr(r) for r in oracle.rows(db, table))
        out[table] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
    return out


def tables_of(db: Backend) -> set[str]:
    return set(oracle.tables(db))


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


class Hook(NullReporter):
    """Calls `on_seed` after each seed is read and `on_loaded` after each table is loaded.

    Each callback gets the number of times it has been called before (0 the first time), so a
    test can inject a fault on the first attempt only, or on every attempt.
    """

    def __init__(
        self,
        on_seed: Callable[[int], None] | None = None,
        on_loaded: Callable[[int], None] | None = None,
    ) -> None:
        self.on_seed, self.on_loaded = on_seed, on_loaded
        self.seeds = self.loaded = 0
        self.warnings: list[str] = []

    def event(self, message: str, seconds: float | None = None) -> None:
        if message.startswith("seed") and self.on_seed is not None:
            self.on_seed(self.seeds)
            self.seeds += 1

    def table_loaded(self, table: str, rows: int, seconds: float) -> None:
        if self.on_loaded is not None:
            self.on_loaded(self.loaded)
            self.loaded += 1

    def warning(self, message: str) -> None:
        self.warnings.append(message)


# ---------------------------------------------------------------- a writer during runs

LOAD_SCHEMA = [
    "CREATE TABLE account (id INTEGER PRIMARY KEY, name VARCHAR(40) NOT NULL)",
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, "
    "account_id INTEGER NOT NULL REFERENCES account (id), n_lines INTEGER NOT NULL, "
    "total INTEGER NOT NULL, version INTEGER NOT NULL)",
    "CREATE TABLE line (id INTEGER PRIMARY KEY, "
    "order_id INTEGER NOT NULL REFERENCES orders (id), amount INTEGER NOT NULL)",
    "CREATE TABLE writer_version (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)",
]
ACCOUNTS = 20


def initial_state() -> dict[int, tuple[int, list[tuple[int, int]]]]:
    """Orders at version 0: order id -> (account id, [(line id, amount), ...])."""
    state = {}
    line = 0
    for order in range(1, 201):
        lines = []
        for k in range(1 + order % 4):
            line += 1
            lines.append((line, (order * 7 + k * 13) % 100 + 1))
        state[order] = (1 + order % ACCOUNTS, lines)
    return state


def build_load_source(db: Backend) -> None:
    """The account/orders/line schema at version 0; each order stores its line count and sum."""
    import psycopg
    import pymysql

    from tests.conftest import MYSQL, PG

    orders, lines = [], []
    for order, (account, its) in initial_state().items():
        orders.append((order, account, len(its), sum(a for _, a in its)))
        lines += [(line_id, order, amount) for line_id, amount in its]
    conn: Any = (
        psycopg.connect(**PG, dbname=db.database)
        if db.name == "postgres"
        else pymysql.connect(**MYSQL, database=db.database)
    )
    try:
        cur = conn.cursor()
        for statement in LOAD_SCHEMA:
            cur.execute(statement)
        cur.executemany(
            "INSERT INTO account VALUES (%s, %s)",
            [(i, f"account {i}") for i in range(1, ACCOUNTS + 1)],
        )
        cur.executemany("INSERT INTO orders VALUES (%s, %s, %s, %s, 0)", orders)
        cur.executemany("INSERT INTO line VALUES (%s, %s, %s)", lines)
        cur.execute("INSERT INTO writer_version VALUES (1, 0)")
        conn.commit()
    finally:
        conn.close()


def writer(engine: str, database: str, journal: str, commits: Any, stop: Any) -> None:
    """Insert, grow and delete orders with their lines, one FK-consistent transaction each.

    Each transaction also bumps `writer_version.v`, and after its commit a JSON line records
    what it did, so a test can rebuild the source as it was at any version. Runs in a process
    of its own until `stop` is set.
    """
    import json
    import random

    import psycopg
    import pymysql

    from tests.conftest import MYSQL, PG

    rng = random.Random(7)
    state = initial_state()
    next_order, next_line = 10_000, 100_000
    if engine == "postgres":
        conn: Any = psycopg.connect(**PG, dbname=database)
    else:
        conn = pymysql.connect(**MYSQL, database=database, autocommit=False)
    with open(journal, "a", encoding="utf-8") as log:
        while not stop.is_set():
            cur = conn.cursor()
            cur.execute("SELECT v FROM writer_version WHERE id = 1 FOR UPDATE")
            version = cur.fetchone()[0] + 1
            op = rng.choice(["insert", "insert", "grow", "delete"])
            if op != "insert" and not state:
                op = "insert"
            if op == "insert":
                order, account = next_order, rng.randint(1, ACCOUNTS)
                next_order += 1
                lines = []
                for _ in range(rng.randint(1, 4)):
                    lines.append((next_line, rng.randint(1, 100)))
                    next_line += 1
                cur.execute(
                    "INSERT INTO orders VALUES (%s, %s, %s, %s, %s)",
                    (order, account, len(lines), sum(a for _, a in lines), version),
                )
                cur.executemany(
                    "INSERT INTO line VALUES (%s, %s, %s)", [(i, order, a) for i, a in lines]
                )
                state[order] = (account, lines)
            elif op == "grow":
                order = rng.choice(list(state))
                account, lines = state[order]
                lines = [*lines, (next_line, rng.randint(1, 100))]
                next_line += 1
                cur.execute("INSERT INTO line VALUES (%s, %s, %s)", (lines[-1][0], order,
                                                                     lines[-1][1]))  # fmt: skip
                cur.execute(
                    "UPDATE orders SET n_lines = %s, total = %s, version = %s WHERE id = %s",
                    (len(lines), sum(a for _, a in lines), version, order),
                )
                state[order] = (account, lines)
            else:
                order = rng.choice(list(state))
                account, lines = state.pop(order)
                cur.execute("DELETE FROM line WHERE order_id = %s", (order,))
                cur.execute("DELETE FROM orders WHERE id = %s", (order,))
            cur.execute("UPDATE writer_version SET v = %s WHERE id = 1", (version,))
            conn.commit()
            cur.close()
            entry = {"v": version, "op": op, "order": order, "account": account, "lines": lines}
            log.write(json.dumps(entry) + "\n")
            log.flush()
            with commits.get_lock():
                commits.value += 1
    conn.close()


def state_at(journal: str, version: int) -> dict[int, tuple[int, list[tuple[int, int]]]]:
    """The orders of the source as they were once `version` had committed."""
    import json

    state = initial_state()
    with open(journal, encoding="utf-8") as log:
        for line in log:
            entry = json.loads(line)
            if entry["v"] > version:
                break
            if entry["op"] == "delete":
                state.pop(entry["order"], None)
            else:
                state[entry["order"]] = (entry["account"], [tuple(x) for x in entry["lines"]])
    return state
