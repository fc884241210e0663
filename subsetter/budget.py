"""The config's ``budget:``: limits the staged subset must fit before anything is loaded.

``check_budget`` takes the rows staged per table (and the source's bytes per row) and raises a
``BudgetError`` (exit code 4) naming the table over its limit, or the largest table when the
whole subset is, and the path of relations that brought its rows: the answer to "what made it
grow". ``budget_warnings`` says the same of a plan's estimates, before a run.
"""

from __future__ import annotations

from collections.abc import Mapping

from subsetter.catalog import Catalog, TableRef
from subsetter.config import Config
from subsetter.errors import BudgetError
from subsetter.estimate import Estimates
from subsetter.plan import Plan


def table_limits(config: Config, catalog: Catalog) -> dict[TableRef, tuple[int, str]]:
    """``budget.tables`` resolved against the source: the limit and where the file says it."""
    out = {}
    for name, rows in config.budget.tables.items():
        where = config.locate("budget", "tables", name)
        out[catalog.resolve(name, where)] = (rows, where)
    return out


def growth_path(plan: Plan, rows: Mapping[TableRef, int], table: TableRef) -> list[TableRef]:
    """From a seed table to ``table``, walking back along the relations that brought rows.

    Children come through their parents (downstream relations), so a parent that pulls
    children is preferred over a child whose parents these rows are; among those, a seed
    table, then the table with the most rows. Ties go by name, so the path is stable.
    """
    seeded = {s.table for s in plan.seeds}
    path = [table]
    while path[-1] not in seeded:
        here = path[-1]
        down = [fk.parent for fk in plan.downstream if fk.child == here]
        up = [fk.child for fk in plan.upstream if fk.parent == here]
        sources = [s for s in down if s not in path and rows.get(s, 0) > 0] or [
            s for s in up if s not in path and rows.get(s, 0) > 0
        ]
        if not sources:
            break
        path.append(min(sources, key=lambda s: (s not in seeded, -rows.get(s, 0), s)))
    return list(reversed(path))


def check_budget(
    config: Config,
    catalog: Catalog,
    plan: Plan,
    rows: Mapping[TableRef, int],
    row_bytes: Mapping[TableRef, float],
) -> None:
    """Raise BudgetError when the staged ``rows`` exceed the config's budget."""
    budget = config.budget

    def path_of(table: TableRef) -> str:
        return " -> ".join(str(t) for t in growth_path(plan, rows, table))

    for ref, (limit, where) in sorted(table_limits(config, catalog).items()):
        if rows.get(ref, 0) > limit:
            raise BudgetError(
                f"{where}table {ref} would get {rows[ref]} rows, over "
                f"its budget of {limit}; it grew through {path_of(ref)}. Nothing was loaded: "
                "narrow the seeds, stop following a relation, or raise the budget."
            )
    total = sum(rows.values())
    largest = max(rows, key=lambda t: (rows[t], t)) if rows else None
    if budget.max_rows is not None and total > budget.max_rows and largest is not None:
        raise BudgetError(
            f"{config.locate('budget', 'max_rows')}the subset would hold {total} rows, over the "
            f"budget of {budget.max_rows}; the largest table is {largest} ({rows[largest]} rows), "
            f"grown through {path_of(largest)}. Nothing was loaded."
        )
    sizes = {t: round(n * row_bytes.get(t, 0)) for t, n in rows.items()}
    size = sum(sizes.values())
    if budget.max_bytes is not None and size > budget.max_bytes and largest is not None:
        biggest = max(sizes, key=lambda t: (sizes[t], t))
        raise BudgetError(
            f"{config.locate('budget', 'max_bytes')}the subset would hold about {size} bytes, "
            f"over the budget of {budget.max_bytes} bytes; the largest table is {biggest} "
            f"(~{sizes[biggest]} bytes), grown through {path_of(biggest)}. Nothing was loaded."
        )


def budget_warnings(config: Config, catalog: Catalog, estimates: Estimates) -> list[str]:
    """What a plan's estimates say about the budget: a run would likely stop with exit 4."""
    out = []
    budget = config.budget
    for ref, (limit, _) in sorted(table_limits(config, catalog).items()):
        est = estimates.tables.get(ref)
        if est is not None and est.rows > limit:
            out.append(f"{ref}: ~{est.rows} rows expected, over its budget of {limit}")
    if budget.max_rows is not None and estimates.total_rows > budget.max_rows:
        out.append(f"~{estimates.total_rows} rows expected, over the budget of {budget.max_rows}")
    if budget.max_bytes is not None and estimates.total_bytes > budget.max_bytes:
        out.append(
            f"~{estimates.total_bytes} bytes expected, over the budget of {budget.max_bytes}"
        )
    return out
