"""Stage 2, pure: from the catalog and the config, decide what a run will copy and how.

``build_plan`` does no I/O. The Plan it returns is data: the tables and why each is in, the
foreign keys followed upstream and downstream (with each relation's policy: followed or not,
why, and any cap on children per parent), the cycles, the load order and the SQL each seed runs.
``Plan.explain()`` renders it for people (``subset plan``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Literal

from subsetter.catalog import Catalog, ForeignKey, Table, TableRef
from subsetter.config import Config, LoadMode, OnConflict, Relation
from subsetter.dialects import Dialect
from subsetter.errors import ConfigError, PlanError
from subsetter.graph import FkGraph

SAMPLE_SALT = "subsetter-v1"


def sample_salt(seed: int | None) -> str:
    """The salt of a seed's sample: the fixed one, or one per ``seed: N`` so N changes the rows."""
    return SAMPLE_SALT if seed is None else f"{SAMPLE_SALT}/{seed}"


@dataclass(frozen=True)
class SeedQuery:
    """One seed: the table, the SQL it runs on the source, and whether it pulls children."""

    table: TableRef
    sql: str
    children: bool
    label: str
    where: str | None = None
    percent: float | None = None
    limit: int | None = None
    passthrough: bool = False
    """A passthrough table: every row, no children."""


Follow = Literal["yes", "no", "always"]


@dataclass(frozen=True)
class ChildLimit:
    """At most ``limit`` children per parent row, the first by ``order_by`` (key as tiebreak)."""

    limit: int
    order_by: str | None = None


@dataclass(frozen=True)
class RelationDecision:
    """One foreign key between planned tables, seen downstream: followed or not, why, any cap.

    ``follow`` is ``yes`` (rows reached downstream pull children through it), ``always`` (every
    row of the parent table in the subset does) or ``no``; ``reason`` says which rule decided.
    """

    fk: ForeignKey
    follow: Follow
    reason: str
    limit: ChildLimit | None = None

    def describe(self) -> str:
        label = {"yes": "followed", "no": "not followed", "always": "always followed"}
        text = f"{self.fk}: {label[self.follow]} ({self.reason})"
        if self.limit is not None:
            order = f" by {self.limit.order_by}" if self.limit.order_by else " by key"
            text += f"; at most {self.limit.limit} per parent row{order}"
        return text


Strategy = Literal["after_load", "deferred", "null_then_update", "checks_disabled", "unenforced"]
"""How the rows of one cycle get past the target's foreign keys:

- ``after_load``: the run creates the tables and adds the keys after the rows (create, replace).
- ``deferred``: the cycle's keys are DEFERRABLE; checked at commit (``SET CONSTRAINTS``).
- ``null_then_update``: the ``nulled`` keys (nullable) are written as NULL, set by UPDATE after.
- ``checks_disabled``: the target's checks are off for the load (``allow_disabling_fk_checks``);
  subsetter's verification checks every key before the commit.
- ``unenforced``: the target does not check keys while loading (SQLite); verified after.
"""


@dataclass(frozen=True)
class CycleLoad:
    """How one cycle (strongly connected component) of the target is loaded, and why."""

    tables: tuple[TableRef, ...]
    strategy: Strategy
    reason: str
    nulled: tuple[ForeignKey, ...] = ()
    """Keys written as NULL first and set by UPDATE once every row is in."""
    deferred: tuple[ForeignKey, ...] = ()
    """Keys checked at commit."""


@dataclass(frozen=True)
class LoadPlan:
    """How rows go into the target: mode, insertion order, and each cycle's strategy."""

    mode: LoadMode
    on_conflict: OnConflict
    order: tuple[TableRef, ...]
    """Tables in insertion order (parents before children; source names)."""
    cycles: tuple[CycleLoad, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    """The target's keys between the subset's tables (source names), verified after loading."""
    keys: Mapping[TableRef, tuple[str, ...]] = field(default_factory=dict)
    """Columns telling a target row apart: conflict target and UPDATE key."""


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
    relations: tuple[RelationDecision, ...] = ()
    """Every foreign key between planned tables, with its downstream decision."""
    always: tuple[ForeignKey, ...] = ()
    """Downstream keys followed from every staged parent row, not only downstream ones."""
    limits: dict[ForeignKey, ChildLimit] = field(default_factory=dict)
    max_depth: int | None = None
    """Downward steps a row may be from a seed and still pull children through ``downstream``."""
    load: LoadPlan | None = None
    """Set once the target is known (``plan_load``)."""

    def explain(self) -> str:
        """A human-readable description, stable and sorted so it diffs well in review."""
        from subsetter.render import plan_document, plan_text  # render builds on this module

        return plan_text(plan_document(self))


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
            SeedQuery(
                ref,
                dialect.select_sql(catalog.table(ref)),
                False,
                f"passthrough {ref}",
                passthrough=True,
            )
        )

    kept = [t for t in catalog.tables if t not in excluded]
    graph = FkGraph(kept, catalog.foreign_keys)
    policy = _relation_policy(catalog, config)
    blocked = {fk for fk, (_, rel) in policy.items() if rel.follow is False}
    always = {fk for fk, (_, rel) in policy.items() if rel.follow == "always"}
    seed_tables = {s.table for s in seeds}
    depth = _downstream_depths(graph, {s.table for s in seeds if s.children}, blocked, always,
                               config.max_depth, seed_tables)  # fmt: skip
    tables = graph.upstream(set(depth) | seed_tables)

    reasons: dict[TableRef, list[str]] = {t: [] for t in tables}
    for seed in seeds:
        reasons[seed.table].append(seed.label)
    upstream = [fk for t in sorted(tables) for fk in graph.parents(t)]
    pulling = {t for t, d in depth.items() if config.max_depth is None or d < config.max_depth}
    downstream = [
        fk
        for fk in upstream
        if fk not in blocked and (fk.parent in pulling or (fk in always and fk.child in depth))
    ]
    for fk in downstream:
        if fk.child != fk.parent:
            reasons[fk.child].append(f"child of {fk.parent} via {fk.columns_label}")
    for fk in upstream:
        if fk.child != fk.parent:
            reasons[fk.parent].append(f"parent of {fk.child} via {fk.columns_label}")
    # Every key into a planned table, so the plan also says why a child table stayed out.
    into = dict.fromkeys(fk for t in sorted(tables) for fk in graph.children(t))
    followed = set(downstream)  # a list: `in` on it made 5,000 keys cost 25 million compares
    relations = tuple(
        _decide(fk, policy.get(fk), fk in followed, depth, config.max_depth) for fk in into
    )
    limits = {
        fk: ChildLimit(rel.limit, rel.order_by)
        for fk, (_, rel) in policy.items()
        if rel.limit is not None and fk in downstream
    }

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
        relations=relations,
        always=tuple(fk for fk in dict.fromkeys(downstream) if fk in always),
        limits=limits,
        max_depth=config.max_depth,
    )


def _relation_policy(catalog: Catalog, config: Config) -> dict[ForeignKey, tuple[int, Relation]]:
    """Match each ``relations`` entry to exactly one foreign key (declared or virtual)."""
    out: dict[ForeignKey, tuple[int, Relation]] = {}
    for i, rel in enumerate(config.relations):
        child = catalog.resolve(rel.child, config.locate("relations", i, "child"))
        parent = catalog.resolve(rel.parent, config.locate("relations", i, "parent"))
        between = [fk for fk in catalog.foreign_keys if fk.child == child and fk.parent == parent]
        found = [fk for fk in between if rel.columns is None or fk.columns == rel.columns]
        keys = "; ".join(f"columns: [{', '.join(fk.columns)}]" for fk in between)
        if not found:
            where = config.locate("relations", i, "columns" if between else "child")
            hint = f" (its keys: {keys})" if between else ""
            raise ConfigError(
                f"{where}no foreign key from {child} to {parent}"
                f"{' with these columns' if between else ''}{hint}; declare it under "
                "virtual_foreign_keys if the schema does not"
            )
        if len(found) > 1:
            raise ConfigError(
                f"{config.locate('relations', i, 'child')}{len(found)} foreign keys join "
                f"{child} to {parent}; say which with one of: {keys}"
            )
        if found[0] in out:
            raise ConfigError(
                f"{config.locate('relations', i)}relations[{out[found[0]][0]}] already sets "
                f"the policy of {found[0]}"
            )
        out[found[0]] = (i, rel)
    return out


def _downstream_depths(
    graph: FkGraph,
    starts: set[TableRef],
    blocked: set[ForeignKey],
    always: set[ForeignKey],
    max_depth: int | None,
    seed_tables: set[TableRef],
) -> dict[TableRef, int]:
    """Tables holding downstream rows, with the fewest downward steps from a seed to each.

    ``always`` relations also start from tables that are in only as parents (one step down);
    that can bring new parents, so it repeats until nothing changes.
    """
    depth = dict.fromkeys(starts, 0)
    while True:
        queue = deque(depth)
        while queue:
            table = queue.popleft()
            if max_depth is not None and depth[table] >= max_depth:
                continue
            for fk in graph.children(table):
                step = depth[table] + 1
                if fk not in blocked and step < depth.get(fk.child, step + 1):
                    depth[fk.child] = step
                    queue.append(fk.child)
        taken = graph.upstream(set(depth) | seed_tables)
        new = {
            fk.child
            for fk in always
            if fk.parent in taken and fk.child not in depth and max_depth != 0
        }
        if not new:
            return depth
        depth.update(dict.fromkeys(new, 1))


def _decide(
    fk: ForeignKey,
    policy: tuple[int, Relation] | None,
    followed: bool,
    depth: dict[TableRef, int],
    max_depth: int | None,
) -> RelationDecision:
    """Say whether ``fk`` is followed downstream, and which rule decided it."""
    index, rel = policy if policy is not None else (None, None)
    limit = ChildLimit(rel.limit, rel.order_by) if rel is not None and rel.limit else None
    if rel is not None and rel.follow is False:
        return RelationDecision(fk, "no", f"relations[{index}]: follow: false")
    if rel is not None and rel.follow == "always" and followed:
        return RelationDecision(fk, "always", f"relations[{index}]: follow: always", limit)
    if followed:
        steps = depth.get(fk.parent, 0)
        why = "seed rows pull their children" if steps == 0 else f"{steps} step(s) below a seed"
        return RelationDecision(fk, "yes", f"rows of {fk.parent} reached downstream: {why}", limit)
    if max_depth is not None and fk.parent in depth:
        return RelationDecision(
            fk, "no", f"max_depth {max_depth}: {fk.parent} is {depth[fk.parent]} step(s) down"
        )
    return RelationDecision(fk, "no", f"rows of {fk.parent} are in only as parents", limit)


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
    salt = sample_salt(seed.seed)
    if seed.percent is not None:
        conditions.append(dialect.sample_sql(table.identity, seed.percent, salt))
    sql = dialect.select_sql(table)
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    if seed.limit is not None:
        order = seed.order_by or dialect.columns_sql(table.identity)
        if seed.seed is not None:  # a reproducible sample of N rows, changed by the seed number
            order = f"{dialect.key_hash_sql(table.identity, salt)}, {order}"
        sql += f" ORDER BY {order} {dialect.limit_sql(seed.limit)}"
    parts = [f"where {seed.where}"] if seed.where else []
    if seed.percent is not None:
        parts.append(f"{seed.percent:g}%")
    if seed.limit is not None:
        parts.append(f"limit {seed.limit}")
    if seed.seed is not None:
        parts.append(f"seed {seed.seed}")
    label = f"seed {ref}" + (f" ({', '.join(parts)})" if parts else " (all rows)")
    return SeedQuery(ref, sql, seed.children, label, seed.where, seed.percent, seed.limit)


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


def plan_load(
    plan: Plan,
    foreign_keys: Sequence[ForeignKey],
    tables: Mapping[TableRef, Table],
    dialect: Dialect,
    mode: LoadMode,
    on_conflict: OnConflict = "error",
    allow_disabling_fk_checks: bool = False,
) -> LoadPlan:
    """Decide the insertion order and each cycle's strategy for loading into ``dialect``.

    ``foreign_keys`` and ``tables`` describe the target as it will be (source table names):
    for ``create``/``replace`` the source's own declared keys, for ``truncate``/``append`` the
    keys and columns the existing target tables have. Raises PlanError, before any data moves,
    when a cycle cannot be loaded.
    """
    # A table without any key has no duplicates to detect: its rows are always appended.
    keys = {ref: tables[ref].identity if tables[ref].has_key else () for ref in plan.tables}
    if mode in ("create", "replace"):
        if dialect.constraints_after_load:
            why = "keys are added after the rows"
        elif dialect.declares_foreign_keys:
            why = "keys are declared but not checked while loading; verified after"
        else:
            why = "the target declares no foreign keys; verified after"
        cycles = tuple(CycleLoad(c, "after_load", why) for c in plan.cycles)
        return LoadPlan(mode, on_conflict, plan.tables, cycles, tuple(foreign_keys), keys)
    if on_conflict == "update":
        keyless = [str(r) for r in plan.tables if not tables[r].has_key]
        if keyless:
            raise PlanError(
                f"on_conflict: update needs a primary or unique key to match rows on, and "
                f"table(s) {', '.join(keyless)} have none in the target; use skip or error"
            )
    if mode == "truncate" and not dialect.can_empty_referenced_tables and foreign_keys:
        raise PlanError(
            f"{dialect.label} cannot empty tables that other tables reference inside one "
            f"transaction (its foreign-key limitation), and the target's foreign key "
            f"{foreign_keys[0]} joins two of the subset's tables; use mode replace or append"
        )
    graph = FkGraph(plan.tables, foreign_keys)
    loads = [
        _cycle_load(c, graph, tables, dialect, allow_disabling_fk_checks) for c in graph.cycles()
    ]
    kept = [fk for fk in foreign_keys if _still_checked(fk, loads)]
    order = FkGraph(plan.tables, kept).load_order()
    return LoadPlan(mode, on_conflict, tuple(order), tuple(loads), tuple(foreign_keys), keys)


def _cycle_edges(component: Sequence[TableRef], graph: FkGraph) -> list[ForeignKey]:
    members = set(component)
    return [fk for t in component for fk in graph.parents(t) if fk.parent in members]


def _still_checked(fk: ForeignKey, loads: Sequence[CycleLoad]) -> bool:
    """Whether rows must be ordered for ``fk`` (it is checked per statement during the load)."""
    for load in loads:
        if fk.child in load.tables:
            if load.strategy in ("checks_disabled", "unenforced"):
                return False
            return fk not in load.nulled and fk not in load.deferred
    return True


def _acyclic(component: Sequence[TableRef], edges: Sequence[ForeignKey]) -> bool:
    return not FkGraph(component, edges).cycles()


def _cycle_load(
    component: tuple[TableRef, ...],
    graph: FkGraph,
    tables: Mapping[TableRef, Table],
    dialect: Dialect,
    allow_disabling: bool,
) -> CycleLoad:
    """The first strategy that loads this cycle: deferred, NULL then UPDATE, checks off."""
    edges = _cycle_edges(component, graph)
    if not dialect.enforces_foreign_keys:
        why = f"{dialect.label} does not check foreign keys while loading; verified after"
        return CycleLoad(component, "unenforced", why)
    deferred = [fk for fk in edges if fk.deferrable] if dialect.supports_deferrable_fks else []
    rest = [fk for fk in edges if fk not in deferred]
    if deferred and _acyclic(component, rest):
        why = f"{len(deferred)} of its {len(edges)} keys are DEFERRABLE: checked at commit"
        return CycleLoad(component, "deferred", why, deferred=tuple(deferred))

    def nullable(fk: ForeignKey) -> bool:
        return all(tables[fk.child].column(c).nullable for c in fk.columns)

    def keyed(fk: ForeignKey) -> bool:
        # The UPDATE finds each row by its key, so the row needs one.
        child = tables[fk.child]
        return child.has_key and set(child.identity) <= set(child.column_names)

    settable = dialect.can_update_referenced_rows
    candidates = [fk for fk in rest if settable and nullable(fk) and keyed(fk)]
    for size in range(1, len(candidates) + 1):
        for nulled in combinations(candidates, size):
            if _acyclic(component, [fk for fk in rest if fk not in nulled]):
                why = f"{'a' if size == 1 else size} nullable key{'s' if size > 1 else ''}"
                return CycleLoad(
                    component,
                    "null_then_update",
                    f"{why} of the cycle loaded as NULL, then set",
                    nulled=nulled,
                    deferred=tuple(deferred),
                )
    if allow_disabling and dialect.can_disable_fk_checks:
        why = "no nullable or deferrable way in; allow_disabling_fk_checks: true, verified after"
        return CycleLoad(component, "checks_disabled", why)
    names = " <-> ".join(map(str, component))
    not_null = [fk for fk in rest if not nullable(fk)]
    problems = []
    if not_null:
        problems.append(
            f"its foreign keys {'; '.join(map(str, not_null))} are NOT NULL and not deferrable"
        )
    if settable and any(nullable(fk) and not keyed(fk) for fk in rest):
        problems.append("a table of its nullable keys has no key to UPDATE rows by")
    if not settable:
        problems.append(f"{dialect.label} cannot UPDATE a row that other rows reference")
    hint = (
        ", or set allow_disabling_fk_checks: true on the target"
        if dialect.can_disable_fk_checks
        else f" ({dialect.label} cannot turn its checks off)"
    )
    raise PlanError(
        f"cycle {names} cannot be loaded into the existing tables: {', and '.join(problems)}, "
        f"so no insertion order satisfies it. Make one of its keys nullable or DEFERRABLE in "
        f"the target, or load with mode create or replace{hint}. Nothing was loaded."
    )
