"""Extraction's scheduling helpers, without a database (the closure: tests/test_engine_e2e)."""

from __future__ import annotations

import pyarrow as pa

from subsetter.extract import _spread, _spread_levels


def batches(*sizes: int) -> list[pa.RecordBatch]:
    out, start = [], 0
    for size in sizes:
        out.append(pa.record_batch([pa.array(range(start, start + size))], names=["k"]))
        start += size
    return out


def keys(found: list[pa.RecordBatch]) -> list[int]:
    return [k for batch in found for k in batch.column(0).to_pylist()]


def test_the_last_batch_is_split_between_the_connections() -> None:
    given = batches(5000, 5000, 4892)

    found = list(_spread(iter(given), 2))

    assert [b.num_rows for b in found] == [5000, 5000, 2446, 2446]
    assert keys(found) == keys(given)


def test_one_connection_or_a_small_last_batch_stays_whole() -> None:
    assert [b.num_rows for b in _spread(iter(batches(1500)), 1)] == [1500]
    assert [b.num_rows for b in _spread(iter(batches(5000, 999)), 2)] == [5000, 999]
    assert [b.num_rows for b in _spread(iter(batches(1501)), 3)] == [501, 501, 499]
    assert list(_spread(iter([]), 2)) == []


def test_each_depth_splits_its_own_last_batch() -> None:
    given = [(0, b) for b in batches(5000, 2000)] + [(1, b) for b in batches(1200)]

    found = list(_spread_levels(iter(given), 2))

    assert [(d, b.num_rows) for d, b in found] == [
        (0, 5000),
        (0, 1000),
        (0, 1000),
        (1, 600),
        (1, 600),
    ]
