"""Tests of subsetter.staging that need no source database: the memory budget, and reading
back by closure round (`Staging.round_rows`, for loading while extracting)."""

from __future__ import annotations

import threading

import pyarrow as pa
import pytest

from subsetter.catalog import Column, ColumnType, Table, TableRef
from subsetter.staging import RoundAbandoned, Staging

DOCS = Table(
    TableRef(None, "docs"),
    (Column("id", ColumnType("integer", "INTEGER")), Column("body", ColumnType("binary", "BLOB"))),
    ("id",),
)


def memory_limit(staging: Staging) -> float:
    """DuckDB's memory limit in bytes (it reports KiB, MiB or GiB)."""
    text = str(staging.conn.execute("SELECT current_setting('memory_limit')").fetchone()[0])
    number, unit = text.split()
    return float(number) * {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30}[unit]


def stage(staging: Staging, bodies: list[bytes]) -> None:
    batch = pa.table(
        {"c0": pa.array(range(len(bodies)), pa.int64()), "c1": pa.array(bodies, pa.binary())}
    )
    staging.add_arrow(DOCS.ref, batch.cast(staging.arrow_schema(DOCS.ref)), gen=0, down=False)


def test_budget_grows_for_one_huge_value_only() -> None:
    """DuckDB never splits a value: a statement moving one larger than the budget runs again
    with more, and the budget goes back down afterwards (it is not kept at 4x the value).

    Reading back goes by ranges of rows for such a table (not 2,048-row vectors).
    """
    staging = Staging(memory_limit="8MB")
    try:
        staging.create(DOCS)
        # 24 MB in 3,000 small values: no statement needs more than the budget.
        stage(staging, [b"x" * 8000] * 3000)
        # One 20 MB value, 2.5 times the budget.
        stage(staging, [b"y" * 20_000_000])
        assert staging.settle() == 3000  # the second batch reuses key 0: one row per key
        assert memory_limit(staging) <= 8 * 2**20
        bodies = sorted(len(r[1]) for batch in staging.read(DOCS.ref) for r in batch)
        assert bodies == [8000] * 3000
        assert memory_limit(staging) <= 8 * 2**20
    finally:
        staging.close()


def test_a_value_larger_than_the_budget_stages_and_reads_back() -> None:
    staging = Staging(memory_limit="8MB")
    try:
        staging.create(DOCS)
        rows = [(i, bytes([i]) * (20_000_000 if i == 3 else 1000)) for i in range(1, 6)]
        staging.add_rows(DOCS.ref, rows, gen=0, down=False)
        assert staging.settle() == 5
        assert memory_limit(staging) <= 8 * 2**20
        read = [r for batch in staging.read(DOCS.ref) for r in batch]
        assert sorted(read) == rows
    finally:
        staging.close()


ITEM = Table(
    TableRef(None, "item"),
    (Column("id", ColumnType("integer"), nullable=False), Column("name", ColumnType("text"))),
    primary_key=("id",),
)


def staged(rounds: list[range], batch_size: int) -> Staging:
    """A staging holding ITEM rows added in rounds 0, 1, ... (ids as given, settled each round)."""
    staging = Staging(batch_size=batch_size)
    staging.create(ITEM)
    for gen, ids in enumerate(rounds):
        batch = pa.table({"c0": pa.array(ids, pa.int64()), "c1": [f"n{i}" for i in ids]})
        staging.add_arrow(ITEM.ref, batch, gen, down=False, fetch=gen + 1)
        staging.settle()
    return staging


def test_a_round_reads_its_own_rows_in_batches_while_staging_goes_on() -> None:
    staging = staged([range(0, 7), range(100, 125)], batch_size=10)
    cursor = staging.cursor()
    try:
        second = staging.round_rows(1, cursor)
        batches = list(second.read_arrow(ITEM.ref))
        # staging takes more rows meanwhile (another round): the round's reader is unaffected
        staging.add_arrow(ITEM.ref, pa.table({"c0": pa.array([7], pa.int64()), "c1": ["x"]}), 2,
                          down=False, fetch=9)  # fmt: skip
        staging.settle()
        assert all(b.num_rows <= 10 for b in batches) and len(batches) == 3
        assert sorted(k for b in batches for k in b.column(0).to_pylist()) == list(range(100, 125))
        assert second.count(ITEM.ref) == 25
        first = [r for rows in staging.round_rows(0, cursor).read(ITEM.ref) for r in rows]
        assert sorted(first) == [(i, f"n{i}") for i in range(7)]
        assert staging.round_rows(2, cursor).count(ITEM.ref) == 1
        assert list(staging.round_rows(5, cursor).read_arrow(ITEM.ref)) == []
    finally:
        cursor.close()
        staging.close()


def test_a_stopped_round_stops_between_batches() -> None:
    staging = staged([range(0, 30)], batch_size=10)
    cursor = staging.cursor()
    stop = threading.Event()
    try:
        reading = staging.round_rows(0, cursor, stop).read_arrow(ITEM.ref)
        assert next(reading).num_rows == 10
        stop.set()
        with pytest.raises(RoundAbandoned):
            next(reading)
    finally:
        cursor.close()
        staging.close()
