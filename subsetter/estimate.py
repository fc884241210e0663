"""Estimate the rows and bytes a plan will copy, before it copies anything.

Inputs: a Plan, the catalog, and what the source's dialect can tell cheaply: per-table statistics
(``table_stats``: PostgreSQL's ``pg_class``, MySQL's ``information_schema.TABLES``), exact counts
of small tables, and the rows matching each seed's ``where`` (counted on a small table, the
planner's estimate on a large one). Nothing ever scans a large table.

``propagate`` (pure) spreads those figures along the plan's relations: a child table keeps the
share of its rows whose parents pull children; a parent table keeps the distinct parents of the
kept child rows. Sums are capped at the source's size, and cycles run to a fixpoint. Output:
``Estimates``, per table the expected rows and bytes and the path of relations that brings most
of them, plus warnings for tables expected to exceed ``budget.warn_percent`` of their source.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from subsetter.catalog import Catalog, ColumnType, TableRef
from subsetter.dialects import Dialect
from subsetter.errors import SourceError, SubsetterError
from subsetter.plan import Plan, SeedQuery

SMALL_TABLE_ROWS = 100_000
"""Tables up to this size are counted exactly; larger ones rely on statistics."""
COUNT_CAP = 1_000_000
"""A count with no statistics to go by reads at most this many rows (then a lower bound)."""
MIN_WARN_ROWS = 100
"""Smaller tables (lookups) are never warned about: copying them whole costs nothing."""

_KIND_BYTES = {
    "integer": 8, "decimal": 12, "float": 8, "boolean": 1, "date": 4, "time": 8,
    "timestamp": 8, "timestamptz": 8, "interval": 16, "uuid": 16, "year": 2,
    "string": 24, "text": 200, "json": 200, "binary": 200, "array": 64, "enum": 8, "set": 16,
}  # fmt: skip


@dataclass(frozen=True)
class SourceSize:
    """One source table's size: rows (``at_least`` when a capped count stopped) and bytes."""

    rows: int
    bytes: int
    at_least: bool = False


@dataclass(frozen=True)
class TableEstimate:
    """What a run is expected to copy of one table, and the relations that bring it."""

    source: SourceSize
    rows: int
    bytes: int
    path: tuple[TableRef, ...]
    """From the seed (or passthrough) table whose rows lead here, to this table."""

    @property
    def percent(self) -> float:
        return 100.0 * self.rows / self.source.rows if self.source.rows else 0.0


@dataclass(frozen=True)
class Estimates:
    """Expected size of a subset, per table and in total."""

    tables: Mapping[TableRef, TableEstimate]
    seed_rows: tuple[int, ...]
    """Expected rows of each of the plan's seeds, in plan order."""
    warnings: tuple[str, ...] = ()

    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables.values())

    @property
    def total_bytes(self) -> int:
        return sum(t.bytes for t in self.tables.values())


def row_bytes(catalog: Catalog, ref: TableRef) -> int:
    """A typical row's width from its column types, where the engine gives no size."""
    return sum(_column_bytes(c.type) for c in catalog.table(ref).columns) or 1


def _column_bytes(ctype: ColumnType) -> int:
    if ctype.kind == "string" and ctype.length:
        return min(ctype.length, 64)
    return _KIND_BYTES.get(ctype.kind, 32)


def estimate(
    plan: Plan, catalog: Catalog, dialect: Dialect, conn: Any, warn_percent: float = 50
) -> Estimates:
    """Read the source's sizes and the seeds' counts cheaply, then ``propagate``."""
    sizes = source_sizes(plan.tables, catalog, dialect, conn)
    seeds = tuple(_seed_rows(seed, sizes[seed.table], dialect, conn) for seed in plan.seeds)
    return propagate(plan, sizes, seeds, warn_percent)


def source_sizes(
    refs: Sequence[TableRef], catalog: Catalog, dialect: Dialect, conn: Any
) -> dict[TableRef, SourceSize]:
    """Each table's size: statistics where the engine keeps them, a bounded count elsewhere."""
    stats = _guard(
        dialect, "reading the source's table statistics", "", dialect.table_stats, conn, refs
    )
    out = {}
    for ref in refs:
        known = stats.get(ref)
        rows = known.rows if known else None
        at_least = False
        if rows is None or rows <= SMALL_TABLE_ROWS:
            rows = _guard(
                dialect, f"counting {ref}", "", dialect.count_rows, conn, ref, None, COUNT_CAP
            )
            at_least = rows >= COUNT_CAP
        size = known.bytes if known and known.bytes and rows else None
        out[ref] = SourceSize(
            rows, size if size is not None else rows * row_bytes(catalog, ref), at_least
        )
    return out


def _seed_rows(seed: SeedQuery, size: SourceSize, dialect: Dialect, conn: Any) -> int:
    rows = size.rows
    if seed.where:
        what = f"estimating the rows of {seed.label}"
        planned = None
        if size.rows > SMALL_TABLE_ROWS:
            planned = _guard(
                dialect, what, seed.sql, dialect.planner_rows, conn, seed.table, seed.where
            )
        if planned is None:
            planned = _guard(
                dialect, what, seed.sql, dialect.count_rows, conn, seed.table, seed.where, COUNT_CAP
            )
        rows = min(planned, size.rows)
    if seed.percent is not None:
        rows = math.ceil(rows * seed.percent / 100)
    if seed.limit is not None:
        rows = min(rows, seed.limit)
    return rows


def _guard(dialect: Dialect, what: str, sql: str, method: Any, *args: Any) -> Any:
    """Call a dialect method; a driver error becomes a SourceError naming what was estimated."""
    try:
        return method(*args)
    except SubsetterError:
        raise
    except Exception as exc:
        if not dialect.is_driver_error(exc):
            raise
        shown = f"\n  SQL: {sql[:500]}" if sql else ""
        raise SourceError(
            f"{what} failed on the source: {dialect.wrap_error(exc)}{shown}"
        ) from None


def propagate(
    plan: Plan,
    sizes: Mapping[TableRef, SourceSize],
    seed_rows: Sequence[int],
    warn_percent: float = 50,
) -> Estimates:
    """Spread seed rows along the plan's relations to a fixpoint; pure.

    ``kept`` counts every row of a table in the subset; ``pulling`` the ones that pull their
    children (seed rows with children, rows reached downstream). Each round recomputes every
    table from the previous round's figures, so a cycle settles where its rows stop growing.
    """
    total = {t: float(sizes[t].rows) for t in plan.tables}
    seeded = dict.fromkeys(plan.tables, 0.0)
    seeded_pulling = dict.fromkeys(plan.tables, 0.0)
    for seed, rows in zip(plan.seeds, seed_rows, strict=True):
        seeded[seed.table] += rows
        if seed.children:
            seeded_pulling[seed.table] += rows
    kept = {t: min(total[t], seeded[t]) for t in plan.tables}
    pulling = {t: min(total[t], seeded_pulling[t]) for t in plan.tables}
    via: dict[TableRef, TableRef | None] = dict.fromkeys(plan.tables)
    reached_down = dict.fromkeys(plan.tables, 0.0)
    always = set(plan.always)
    for _ in range(4 * len(plan.tables) + 8):
        best: dict[TableRef, tuple[float, TableRef | None]] = {
            t: (seeded[t], None) for t in plan.tables
        }
        down = dict.fromkeys(plan.tables, 0.0)
        for fk in plan.downstream:
            # An ``always`` relation pulls the children of every kept parent row.
            parents = kept[fk.parent] if fk in always else pulling[fk.parent]
            share = parents / total[fk.parent] if total[fk.parent] else 0.0
            children = total[fk.child] * share
            if fk in plan.limits:
                children = min(children, parents * plan.limits[fk].limit)
            # Several parents of one child table mostly lead to the same rows (an order is
            # reached from its customer and from its address): the largest path, not the sum.
            down[fk.child] = max(down[fk.child], children)
            _keep_best(best, fk.child, children, fk.parent, seeded)
        up = dict.fromkeys(plan.tables, 0.0)
        for fk in plan.upstream:
            own = kept[fk.child]
            if fk.child == fk.parent or pulling[fk.parent] > 0:
                # Rows reached downstream mostly hang under parents already kept.
                own -= reached_down[fk.child]
            parents = _distinct(total[fk.parent], max(own, 0.0))
            up[fk.parent] += parents
            _keep_best(best, fk.parent, parents, fk.child, seeded)
        new_kept = {t: min(total[t], seeded[t] + down[t] + up[t]) for t in plan.tables}
        new_pulling = {t: min(new_kept[t], seeded_pulling[t] + down[t]) for t in plan.tables}
        via = {t: best[t][1] for t in plan.tables}
        settled = all(abs(new_kept[t] - kept[t]) < 0.5 for t in plan.tables)
        kept, pulling, reached_down = new_kept, new_pulling, down
        if settled:
            break
    tables = {}
    for t in sorted(plan.tables):
        rows = round(kept[t])
        size = sizes[t]
        per_row = size.bytes / size.rows if size.rows else 0
        tables[t] = TableEstimate(size, rows, round(rows * per_row), _path(t, via))
    warnings = _warnings(plan, tables, warn_percent)
    return Estimates(tables, tuple(seed_rows), warnings)


def _distinct(parents: float, child_rows: float) -> float:
    """Expected distinct parents among ``child_rows`` references spread evenly over them."""
    if parents <= 0:
        return 0.0
    return parents * (1 - math.exp(-child_rows / parents))


def _keep_best(
    best: dict[TableRef, tuple[float, TableRef | None]],
    table: TableRef,
    rows: float,
    src: TableRef,
    seeded: Mapping[TableRef, float],
) -> None:
    current, current_src = best[table]
    if current_src is None or rows > current + 1e-9:
        if rows > current:
            best[table] = (rows, src)
        return
    # A tie goes to a seed table (the shorter story), then to the smaller name, so the path
    # (and the plan's text) never varies between runs.
    if rows >= current - 1e-9 and (not seeded[src], src) < (not seeded[current_src], current_src):
        best[table] = (rows, src)


def _path(table: TableRef, via: Mapping[TableRef, TableRef | None]) -> tuple[TableRef, ...]:
    path = [table]
    while (previous := via.get(path[-1])) is not None and previous not in path:
        path.append(previous)
    return tuple(reversed(path))


def _warnings(
    plan: Plan, tables: Mapping[TableRef, TableEstimate], warn_percent: float
) -> tuple[str, ...]:
    """Tables reached through relations that are expected to hold much of their source."""
    whole = {s.table for s in plan.seeds if s.passthrough or not (s.where or s.percent or s.limit)}
    out = []
    for ref, est in tables.items():
        if ref in whole or len(est.path) < 2 or est.source.rows < MIN_WARN_ROWS:
            continue
        if est.percent <= warn_percent:
            continue
        path = " -> ".join(str(t) for t in est.path)
        out.append(
            f"{ref}: about {est.rows} of its {est.source.rows} rows ({est.percent:.0f}%) are "
            f"expected in the subset; the subset explodes through {path}"
        )
    return tuple(out)
