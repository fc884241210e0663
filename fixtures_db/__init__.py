"""Scenario databases for subsetter's tests and demo, written once and built on every engine.

- `demo`: a small, reproducible shop (`build_demo` writes the bundled `demo.sqlite`).
- `nasty`: the schemas that break subsetters (self-references, cycles, composite keys onto a
  unique key, a table without a primary key, reserved and mixed-case names).
- `loader`: puts one SQLAlchemy `MetaData` and its rows into PostgreSQL, MariaDB, SQLite or
  DuckDB.
"""

from fixtures_db.loader import ExpectedFK

__all__ = ["ExpectedFK"]
