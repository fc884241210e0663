"""Tests of subsetter.staging that need no source database: the memory budget."""

from __future__ import annotations

import pyarrow as pa

from subsetter.catalog import Column, ColumnType, Table, TableRef
from subsetter.staging import Staging

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
    staging = Staging(memory_limit="64MB")
    try:
        staging.create(DOCS)
        # 24 MB in 3,000 small values: no value needs more than the default budget.
        stage(staging, [b"x" * 8000] * 3000)
        assert memory_limit(staging) <= 64 * 2**20
        # One 20 MB value: DuckDB needs room for a few copies of it (4 x 20 MB).
        stage(staging, [b"y" * 20_000_000])
        assert memory_limit(staging) >= 75_000_000
    finally:
        staging.close()
