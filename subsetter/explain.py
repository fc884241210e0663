"""Why is this row in the subset? Walk back from a staged row to the seed row it came from.

Input: the Plan, the catalog and a staging file kept by ``--keep-staging``. Each staged row
records the closure round that added it, so the row that brought it in is a row of the round
before: a child whose parent it is (upstream), or a parent pulling children (downstream). The
walk ends at round 0, a seed or passthrough row. Output: the chain, seed first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from subsetter.catalog import Catalog, TableRef
from subsetter.errors import ConfigError
from subsetter.plan import Plan
from subsetter.staging import KeptStaging


@dataclass(frozen=True)
class Step:
    """One row of the chain and how it got into the subset."""

    table: TableRef
    key: dict[str, Any]
    how: str

    def __str__(self) -> str:
        key = ", ".join(f"{k}={v}" for k, v in self.key.items())
        return f"{self.table}({key}): {self.how}"


def explain_row(
    plan: Plan, catalog: Catalog, staging: KeptStaging, table: TableRef, key: Sequence[str]
) -> list[Step]:
    """The chain of relations from a seed row to the row of ``table`` whose key is ``key``."""
    identity = catalog.table(table).identity
    if len(key) != len(identity):
        raise ConfigError(
            f"table {table} is identified by {len(identity)} column(s) ({', '.join(identity)}); "
            f"got {len(key)} value(s)"
        )
    if not staging.has(table):
        raise ConfigError(f"table {table} is not in the staging file {staging.path}")
    found = staging.rows(table, identity, key, as_text=True)
    if not found:
        shown = ", ".join(f"{c}={v}" for c, v in zip(identity, key, strict=True))
        raise ConfigError(f"no row of {table} with {shown} is in the subset")
    row, gen, _ = found[0]
    chain: list[Step] = []
    here = table
    while True:
        ident = {c: row[c] for c in catalog.table(here).identity}
        if gen == 0:
            labels = [s.label for s in plan.seeds if s.table == here]
            chain.append(Step(here, ident, " / ".join(labels) or "seed"))
            break
        previous = _previous(plan, staging, here, row, gen)
        if previous is None:
            chain.append(Step(here, ident, f"added in closure round {gen} (origin not found)"))
            break
        how, prev_table, prev_row = previous
        chain.append(Step(here, ident, how))
        here, row, gen = prev_table, prev_row, gen - 1
    return list(reversed(chain))


def _previous(
    plan: Plan, staging: KeptStaging, table: TableRef, row: dict[str, Any], gen: int
) -> tuple[str, TableRef, dict[str, Any]] | None:
    """A row of round ``gen - 1`` that brought ``row`` in, and how.

    Upstream: a child row added in that round whose key points at ``row``. Downstream: a
    parent row that started pulling children in that round and that ``row`` points at.
    """
    ways = [
        (fk, fk.ref_columns, fk.child, fk.columns, "_gen", "parent")
        for fk in sorted(plan.upstream, key=str)
        if fk.parent == table
    ] + [
        (fk, fk.columns, fk.parent, fk.ref_columns, "_dgen", "child")
        for fk in sorted(plan.downstream, key=str)
        if fk.child == table
    ]
    for fk, here, other, there, round_column, role in ways:
        values = [row[c] for c in here]
        if not staging.has(other) or any(v is None for v in values):
            continue
        found = staging.rows(other, there, values, round_column=round_column, round_=gen - 1)
        if found:
            return f"{role} of the {other} row above, via {fk}", other, found[0][0]
    return None
