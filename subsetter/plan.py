"""Stage 2, pure: from the catalog and the config, decide what a run will copy and how.

``build_plan`` does no I/O. The Plan it returns is data: the tables and why each is in, the
foreign keys followed upstream and downstream, the cycles, the load order and the SQL each seed
runs. ``Plan.explain()`` renders it for people (``subset plan``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from subsetter.catalog import Catalog, ForeignKey, TableRef
from subsetter.config import Config
from subsetter.dialects import Dialect
from subsetter.errors import ConfigError, PlanError
from subsetter.graph import FkGraph

SAMPLE_SALT = "subsetter-v1"


@dataclass(frozen=True)
class SeedQuery:
    """One seed: the table, the SQL it runs on the source, and whether it pulls children."""

    table: TableRef
    sql: str
    children: bool
    label: str


@dataclass(frozen=True)
class Plan:
    """Everything a run needs to know before it touches data."""

    tables: tuple[TableRef, ...]
    """Tables the subset may hold rows of, in load order (parents first)."""
    seeds: tuple[SeedQuery, ...]
    upstream: tuple[ForeignKey, ...]
    """Foreign keys followed from child rows to their parents (always all of them)."""
    downstream: tuple[ForeignKey, ...]
    """Foreign keys followed from parent rows to their children."""
    nulled: tuple[ForeignKey, ...]
    """Foreign keys into excluded tables: written as NULL."""
    cycles: tuple[tuple[TableRef, ...], ...]
    reasons: dict[TableRef, list[str]] = field(default_factory=dict)
    excluded: tuple[TableRef, ...] = ()

    def explain(self) -> str:
        """A human-readable description, stable and sorted so it diffs well in review."""
        lines = ["Tables (load order, parents first):"]
        for table in self.tables:
            lines.append(f"  {table}: {'; '.join(self.reasons.get(table, []))}")
        lines.append("Seeds:")
        for seed in self.seeds:
            kids = "with children" if seed.children else "parents only"
            lines.append(f"  {seed.label} ({kids}):\n    {seed.sql}")
        lines.append("Followed upstream (child row -> its parent, always):")
        lines += [f"  {fk}" for fk in sorted(self.upstream, key=str)] or ["  (none)"]
        lines.append("Followed downstream (parent row -> its children):")
        lines += [f"  {fk}" for fk in sorted(self.downstream, key=str)] or ["  (none)"]
        if self.nulled:
            lines.append("Written as NULL (the parent table is excluded):")
            lines += [f"  {fk}" for fk in sorted(self.nulled, key=str)]
        lines.append("Cycles (followed to a fixpoint; constraints are added after loading):")
        lines += ["  " + " <-> ".join(map(str, c)) for c in self.cycles] or ["  (none)"]
        if self.excluded:
            lines.append("Excluded: " + ", ".join(map(str, self.excluded)))
        return "\n".join(lines)


def build_plan(catalog: Catalog, config: Config, dialect: Dialect) -> Plan:
    """Decide the tables, relations and seed queries of a run."""
    excluded = _resolve_all(catalog, config, "exclude", config.exclude)
    # In config order, not set order: the plan (and `subset plan`) must not vary between runs.
    passthrough = dict.fromkeys(
        catalog.resolve(name, config.locate("passthrough", i))
        for i, name in enumerate(config.passthrough)
    )
    seeds = [_seed_query(catalog, config, dialect, i, excluded) for i in range(len(config.seeds))]
    for ref, where in ((r, "passthrough") for r in passthrough):
        if ref in excluded:
            raise ConfigError(f"{config.locate(where)}table {ref} is both passthrough and excluded")
        seeds.append(
            SeedQuery(ref, dialect.select_sql(catalog.table(ref)), False, f"passthrough {ref}")
        )

    kept = [t for t in catalog.tables if t not in excluded]
    graph = FkGraph(kept, catalog.foreign_keys)
    down_starts = {s.table for s in seeds if s.children}
    down_tables = graph.downstream(down_starts)
    tables = graph.upstream(down_tables | {s.table for s in seeds})

    reasons: dict[TableRef, list[str]] = {t: [] for t in tables}
    for seed in seeds:
        reasons[seed.table].append(seed.label)
    downstream = [fk for t in sorted(down_tables) for fk in graph.children(t)]
    upstream = [fk for t in sorted(tables) for fk in graph.parents(t)]
    for fk in downstream:
        if fk.child != fk.parent:
            reasons[fk.child].append(f"child of {fk.parent} via {fk.columns_label}")
    for fk in upstream:
        if fk.child != fk.parent:
            reasons[fk.parent].append(f"parent of {fk.child} via {fk.columns_label}")

    nulled = _foreign_keys_into_excluded(catalog, tables, excluded)
    sub = graph.subgraph(tables)
    return Plan(
        tables=tuple(sub.load_order()),
        seeds=tuple(seeds),
        upstream=tuple(dict.fromkeys(upstream)),
        downstream=tuple(dict.fromkeys(downstream)),
        nulled=tuple(nulled),
        cycles=tuple(sub.cycles()),
        reasons={t: sorted(set(r), key=r.index) for t, r in reasons.items()},
        excluded=tuple(sorted(excluded)),
    )


def _resolve_all(
    catalog: Catalog, config: Config, key: str, names: tuple[str, ...]
) -> set[TableRef]:
    return {catalog.resolve(name, config.locate(key, i)) for i, name in enumerate(names)}


def _seed_query(
    catalog: Catalog, config: Config, dialect: Dialect, index: int, excluded: set[TableRef]
) -> SeedQuery:
    seed = config.seeds[index]
    ref = catalog.resolve(seed.table, config.locate("seeds", index, "table"))
    if ref in excluded:
        raise ConfigError(
            f"{config.locate('seeds', index, 'table')}table {ref} is a seed and also excluded"
        )
    table = catalog.table(ref)
    conditions = []
    if seed.where:
        conditions.append(f"({seed.where})")
    if seed.percent is not None:
        conditions.append(dialect.sample_sql(table.identity, seed.percent, SAMPLE_SALT))
    sql = dialect.select_sql(table)
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    if seed.limit is not None:
        order = seed.order_by or dialect.columns_sql(table.identity)
        sql += f" ORDER BY {order} {dialect.limit_sql(seed.limit)}"
    parts = [f"where {seed.where}"] if seed.where else []
    if seed.percent is not None:
        parts.append(f"{seed.percent:g}%")
    if seed.limit is not None:
        parts.append(f"limit {seed.limit}")
    label = f"seed {ref}" + (f" ({', '.join(parts)})" if parts else " (all rows)")
    return SeedQuery(ref, sql, seed.children, label)


def _foreign_keys_into_excluded(
    catalog: Catalog, tables: set[TableRef], excluded: set[TableRef]
) -> list[ForeignKey]:
    nulled = []
    for fk in catalog.foreign_keys:
        if fk.child not in tables or fk.parent not in excluded:
            continue
        child = catalog.table(fk.child)
        if not any(child.column(c).nullable for c in fk.columns):
            raise PlanError(
                f"foreign key {fk}: {fk.parent} is excluded but {fk.child}."
                f"{'/'.join(fk.columns)} is NOT NULL, so its rows cannot be copied without it. "
                f"Remove {fk.parent} from exclude, or exclude {fk.child} too."
            )
        nulled.append(fk)
    return nulled
