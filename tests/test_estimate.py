"""Tests of subsetter.estimate: the pure propagation, and the statistics each engine reads.

The propagation runs on hand-made sizes (no database). The dialect part runs on every engine:
a parent/child pair with known counts, analysed, so PostgreSQL's reltuples and MySQL's
information_schema figures are there to read.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import subsetter
from subsetter.catalog import TableRef
from subsetter.config import parse_config
from subsetter.dialects import dialect_for
from subsetter.estimate import SourceSize, propagate
from tests.test_plan import FULL, plan_for

if TYPE_CHECKING:
    from conftest import Backend


def t(name: str) -> TableRef:
    return TableRef(None, name)


def sizes_for(rows: dict[str, int], default: int = 10) -> dict[TableRef, SourceSize]:
    plan = plan_for(FULL)
    return {
        ref: SourceSize(rows.get(ref.name, default), 100 * rows.get(ref.name, default))
        for ref in plan.tables
    }


def test_propagation_is_capped_by_the_source_and_follows_children() -> None:
    plan = plan_for("seeds:\n  - table: customer\n    where: customer_id <= 5\n")
    sizes = {ref: SourceSize(1000, 100_000) for ref in plan.tables}
    sizes[t("customer")] = SourceSize(100, 10_000)
    sizes[t("rental")] = SourceSize(5000, 500_000)
    seeds = [5] * len(plan.seeds)
    est = propagate(plan, sizes, seeds)
    assert est.tables[t("customer")].rows == 5
    # 5% of the customers keep 5% of their children.
    assert est.tables[t("rental")].rows == 250
    assert est.tables[t("rental")].path == (t("customer"), t("rental"))
    assert est.tables[t("rental")].bytes == 25_000
    for ref, table in est.tables.items():
        assert 0 <= table.rows <= sizes[ref].rows, ref
    assert est.total_rows == sum(x.rows for x in est.tables.values())


def test_a_table_expected_mostly_whole_is_warned_with_its_path() -> None:
    plan = plan_for("seeds:\n  - table: customer\n    where: customer_id <= 90\n")
    sizes = {ref: SourceSize(1000, 1000) for ref in plan.tables}
    sizes[t("customer")] = SourceSize(100, 100)
    est = propagate(plan, sizes, [90] * len(plan.seeds), warn_percent=50)
    warned = [w for w in est.warnings if w.startswith("rental:")]
    assert len(warned) == 1, est.warnings
    assert "explodes through customer -> rental" in warned[0]
    quiet = propagate(plan, sizes, [90] * len(plan.seeds), warn_percent=95)
    assert not [w for w in quiet.warnings if w.startswith("rental:")]
    small = propagate(plan, sizes, [5] * len(plan.seeds), warn_percent=50)
    assert not [w for w in small.warnings if w.startswith("rental:")]


def test_propagation_is_deterministic_and_settles_on_cycles() -> None:
    plan = plan_for(FULL)
    sizes = sizes_for({"rental": 5000, "payment": 8000})
    first = propagate(plan, sizes, [3] * len(plan.seeds))
    assert first == propagate(plan, sizes, [3] * len(plan.seeds))
    assert plan.cycles, "the shop has cycles"


# ---------------------------------------------------------------- on each engine

PARENTS, CHILDREN = 200, 1000


def _pair(backend: Backend) -> None:
    backend.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY, name VARCHAR(40))")
    backend.execute(
        "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL "
        "REFERENCES parent (id), note VARCHAR(40))"
    )
    values = ", ".join(f"({i}, 'p{i}')" for i in range(1, PARENTS + 1))
    backend.execute(f"INSERT INTO parent VALUES {values}")
    values = ", ".join(f"({i}, {i % PARENTS + 1}, 'c{i}')" for i in range(1, CHILDREN + 1))
    backend.execute(f"INSERT INTO child VALUES {values}")
    if backend.name == "postgres":
        backend.execute("ANALYZE")
    elif backend.name == "mysql":
        backend.execute("ANALYZE TABLE parent, child")


def test_plan_estimates_from_the_source(backend: Backend, tmp_path: Path) -> None:
    _pair(backend)
    config = parse_config(
        f"source:\n  url: {backend.url}\nseeds:\n  - table: parent\n    where: id <= 20\n",
        tmp_path / "c.yml",
        {},
    )
    result = subsetter.plan(config)
    assert result.estimates is not None
    by_name = {ref.name: est for ref, est in result.estimates.tables.items()}
    assert by_name["parent"].source.rows == PARENTS
    # Small tables are counted exactly on every engine; InnoDB's figure may be sampled.
    assert by_name["child"].source.rows == CHILDREN
    assert by_name["parent"].rows == 20
    assert by_name["child"].rows == 100
    assert by_name["child"].bytes > 0
    assert result.estimates.seed_rows == (20,)
    doc = result.document()
    assert doc["estimate"] == {
        "rows": result.estimates.total_rows,
        "bytes": result.estimates.total_bytes,
    }


def test_planner_and_statistics_are_read_without_counting(backend: Backend) -> None:
    _pair(backend)
    dialect = dialect_for(backend.url)
    conn = dialect.connect(read_only=True)
    try:
        refs = [r for r in dialect.reflect(None).tables if r.name in {"parent", "child"}]
        stats = dialect.table_stats(conn, refs)
        planned = dialect.planner_rows(conn, next(r for r in refs if r.name == "child"), "id < 0")
        capped = dialect.count_rows(conn, next(r for r in refs if r.name == "child"), None, 300)
    finally:
        conn.close()
    assert capped == 300, "a capped count stops at its cap"
    if backend.name in {"postgres", "mysql"}:
        assert {r.name for r in stats} == {"parent", "child"}
        child = next(s for r, s in stats.items() if r.name == "child")
        assert child.rows is not None and CHILDREN * 0.5 <= child.rows <= CHILDREN * 1.5
        assert child.bytes and child.bytes > 0
        assert planned is not None and planned <= CHILDREN
    else:
        assert stats == {} and planned is None


def test_a_bad_seed_condition_fails_at_plan_time_naming_the_seed(tmp_path: Path) -> None:
    source = Path(__file__).resolve().parent.parent / "fixtures_db" / "demo.sqlite"
    config = parse_config(
        f"source:\n  url: sqlite:///{source}\nseeds:\n  - table: customer\n    where: nope > 1\n",
        tmp_path / "c.yml",
        {},
    )
    with pytest.raises(subsetter.SourceError, match="seed customer") as info:
        subsetter.plan(config)
    assert "nope" in str(info.value)
    assert subsetter.plan(config, estimate=False).estimates is None
