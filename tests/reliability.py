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
