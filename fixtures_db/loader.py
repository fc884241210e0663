"""Put one engine-neutral scenario (a SQLAlchemy `MetaData` plus its rows) into any engine.

Input: a `Scenario` and a database URL (`postgresql+psycopg://`, `mysql+pymysql://`,
`sqlite:///`, `duckdb:///`). Output: the tables created and filled, foreign keys declared.

PostgreSQL, MariaDB and SQLite go through SQLAlchemy Core. DuckDB goes through the raw `duckdb`
driver, because the `duckdb_engine` dialect fails at DDL under SQLAlchemy 2.1; its DDL is the
PostgreSQL rendering of the same `MetaData`, minus the foreign keys DuckDB cannot declare.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateTable

Row = dict[str, Any]


class ExpectedFK(NamedTuple):
    """A foreign key as the catalog should report it; equal to `tests.oracle.FK` as a tuple."""

    child: str
    child_columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str, ...]


@dataclass(frozen=True)
class Deferred:
    """A cyclic column inserted as NULL and set by UPDATE once every table is filled.

    Why: the last edge of a foreign-key cycle cannot point at rows that do not exist yet.
    """

    table: str
    column: str


@dataclass(frozen=True)
class Scenario:
    """A schema and its rows, in an order that satisfies every foreign key."""

    metadata: sa.MetaData
    rows: dict[str, list[Row]]
    deferred: tuple[Deferred, ...] = ()
    duckdb_omitted: frozenset[ExpectedFK] = field(default_factory=frozenset)


def expected_fks(metadata: sa.MetaData) -> list[ExpectedFK]:
    """List every foreign key declared in `metadata`, sorted, as the catalog should show it."""
    found = [
        _as_expected(table.name, fkc)
        for table in metadata.tables.values()
        for fkc in table.foreign_key_constraints
    ]
    return sorted(found)


def load(url: str, scenario: Scenario) -> None:
    """Create the scenario's tables at `url` and insert its rows."""
    if url.startswith("duckdb:"):
        _load_duckdb(_duckdb_path(url), scenario)
    else:
        _load_sqlalchemy(url, scenario)


def _as_expected(table: str, fkc: sa.ForeignKeyConstraint) -> ExpectedFK:
    parent = fkc.elements[0].column.table.name
    return ExpectedFK(
        table,
        tuple(e.parent.name for e in fkc.elements),
        parent,
        tuple(e.column.name for e in fkc.elements),
    )


def _load_sqlalchemy(url: str, scenario: Scenario) -> None:
    engine = sa.create_engine(url)
    try:
        # A copy: SQLAlchemy's ALTER TABLE ... ADD CONSTRAINT (use_alter, on engines with ALTER)
        # marks the shared constraint object as never to be rendered in CREATE TABLE again, so a
        # later build on SQLite, which declares it inline, would silently lose that foreign key.
        fresh = sa.MetaData()
        for table in scenario.metadata.tables.values():
            table.to_metadata(fresh)
        fresh.create_all(engine)
        with engine.begin() as conn:
            for table in scenario.metadata.sorted_tables:
                for wave in _waves(table, _nulled(table.name, scenario)):
                    conn.execute(table.insert(), wave)
            for table, pk, key, column, value in _updates(scenario):
                conn.execute(table.update().where(table.c[pk] == key).values({column: value}))
    finally:
        engine.dispose()


def _load_duckdb(path: str, scenario: Scenario) -> None:
    import duckdb
    import pyarrow as pa

    con = duckdb.connect(path)
    try:
        for table in scenario.metadata.sorted_tables:
            con.execute(_duckdb_ddl(table, scenario.duckdb_omitted))
        for table in scenario.metadata.sorted_tables:
            cols = ", ".join(_q(c.name) for c in table.columns)
            for wave in _waves(table, _nulled(table.name, scenario)):
                batch = pa.Table.from_pylist(
                    [{c.name: r.get(c.name) for c in table.columns} for r in wave]
                )
                con.register("batch", batch)
                con.execute(f"INSERT INTO {_q(table.name)} ({cols}) SELECT {cols} FROM batch")
                con.unregister("batch")
        for table, pk, key, column, value in _updates(scenario):
            con.execute(
                f"UPDATE {_q(table.name)} SET {_q(column)} = ? WHERE {_q(pk)} = ?", [value, key]
            )
    finally:
        con.close()


def _duckdb_ddl(table: sa.Table, omitted: frozenset[ExpectedFK]) -> str:
    """Render CREATE TABLE for DuckDB: PostgreSQL syntax, without the FKs DuckDB refuses.

    DuckDB cannot add a foreign key after CREATE TABLE (no ALTER ... ADD CONSTRAINT), so an FK
    closing a cycle can never be declared.
    """
    keep = [
        fkc for fkc in table.foreign_key_constraints if _as_expected(table.name, fkc) not in omitted
    ]
    ddl = CreateTable(table, include_foreign_key_constraints=keep)
    return str(ddl.compile(dialect=postgresql.dialect()))


def _nulled(table: str, scenario: Scenario) -> list[Row]:
    """Return the table's rows with deferred (cyclic) columns blanked for the first pass."""
    blank = {d.column for d in scenario.deferred if d.table == table}
    rows = scenario.rows.get(table, [])
    return [{k: (None if k in blank else v) for k, v in r.items()} for r in rows] if blank else rows


def _updates(scenario: Scenario) -> Iterable[tuple[sa.Table, str, Any, str, Any]]:
    """Yield (table, primary-key column, key value, column, value) per deferred non-null cell."""
    for d in scenario.deferred:
        table = scenario.metadata.tables[d.table]
        (pk,) = table.primary_key.columns
        for row in scenario.rows[d.table]:
            if row.get(d.column) is not None:
                yield table, pk.name, row[pk.name], d.column, row[d.column]


def _waves(table: sa.Table, rows: Sequence[Row]) -> list[list[Row]]:
    """Split rows so each batch references, through self-FKs, only rows of earlier batches.

    DuckDB checks a foreign key against the table as it was before the statement, so a parent
    and its child cannot arrive in the same INSERT; the other engines do not care either way.
    """
    self_cols = [
        (fkc.elements[0].parent.name, fkc.elements[0].column.name)
        for fkc in table.foreign_key_constraints
        if fkc.referred_table is table and len(fkc.elements) == 1
    ]
    if not self_cols:
        return [list(rows)] if rows else []
    waves: list[list[Row]] = []
    seen: dict[str, set[Any]] = {target: set() for _, target in self_cols}
    pending = list(rows)
    while pending:
        ready = [r for r in pending if all(_found(r, c, t, seen) for c, t in self_cols)]
        if not ready:
            raise ValueError(f"{table.name}: rows reference missing or cyclic parents")
        waves.append(ready)
        for r in ready:
            for target, values in seen.items():
                values.add(r[target])
        taken = {id(r) for r in ready}
        pending = [r for r in pending if id(r) not in taken]
    return waves


def _found(row: Row, column: str, target: str, seen: dict[str, set[Any]]) -> bool:
    value = row.get(column)
    return value is None or value in seen[target]


def _duckdb_path(url: str) -> str:
    return url.split(":///", 1)[1]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
