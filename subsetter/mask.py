"""Stage 4: masking rules applied in staging, after extract and before anything reaches the target.

``plan_masks`` (pure, right after planning) checks the config's ``masks`` against the catalog:
each named column exists, its strategy can write the column's type, length and NOT NULL, and a
masked key stays a key. It also spreads a mask over its **key group**: the columns joined by
foreign keys (declared, composite or virtual) share one mapping, so a masked
``customer.customer_id`` masks ``rental.customer_id`` alike and every join still matches.

``mask`` then rewrites the staged rows. Simple strategies run as one DuckDB ``UPDATE``; Faker
fakes, JSON paths and key groups go through a mapping table of distinct values (each distinct
value is computed once); hooks run per row (or per batch) with the row as context. A key group's
mapping is checked for collisions, which are resolved with fresh digests of the colliding values
(deterministic: the value with the smallest text keeps the first digest) or reported naming the
column. The load reads staging only after this stage has finished, so the target never receives
an original value of a masked column, even when the run fails part-way.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import importlib
import inspect
import json
import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from subsetter.catalog import Catalog, Column, ColumnType, Table, TableRef, did_you_mean
from subsetter.config import Config, MaskRule
from subsetter.errors import ConfigError, MaskError, SubsetterError
from subsetter.plan import Plan
from subsetter.reporting import Reporter
from subsetter.staging import Row, Staging
from subsetter.strategies import (
    DEFAULT_LOCALE,
    MAX_ATTEMPTS,
    STRATEGIES,
    Masker,
    check_fit,
    sql_form,
)

ColumnId = tuple[TableRef, str]


@dataclass(frozen=True)
class ColumnMask:
    """One masked column: its rule, and why it is masked (its own config key, or its group's)."""

    table: TableRef
    column: Column
    rule: MaskRule
    source: str
    """The config key that asked for this mask (``masks.customer.email``)."""
    label: str
    """``table.column`` as messages and reports name it (the default schema left out)."""


@dataclass(frozen=True)
class KeyGroup:
    """Columns that must map values alike (joined by foreign keys), or one unique column."""

    members: tuple[ColumnMask, ...]
    unique: bool

    @property
    def rule(self) -> MaskRule:
        return self.members[0].rule

    @property
    def label(self) -> str:
        return ", ".join(m.label for m in self.members)


@dataclass(frozen=True)
class Hook:
    """A user function ``module:function``, per value ``f(value, row)`` or per batch."""

    spec: str
    function: Callable[..., Any]
    batch: bool
    """Called as ``f(values, rows)`` with lists, when its first parameter is named ``values``."""


@dataclass(frozen=True)
class MaskPlan:
    """Every masking decision of a run, made before data moves."""

    columns: tuple[ColumnMask, ...] = ()
    """Masked columns outside key groups."""
    groups: tuple[KeyGroup, ...] = ()
    kept: tuple[str, ...] = ()
    """Columns explicitly reviewed with ``keep``."""
    key: bytes = field(default=b"", repr=False)
    random_key: bool = False
    locale: str = DEFAULT_LOCALE
    hooks: Mapping[str, Hook] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.columns and not self.groups

    def masked(self) -> dict[str, str]:
        """``table.column`` -> the rule, for every masked column (group members included)."""
        out = {m.label: m.rule.describe() for m in self.columns}
        for group in self.groups:
            for m in group.members:
                origin = m.source.removeprefix("masks.")
                note = "" if origin == m.label else f" (key group of {origin})"
                out[m.label] = m.rule.describe() + note
        return dict(sorted(out.items()))


def mask_key_of(config: Config, allow_random: bool) -> tuple[bytes, bool]:
    """The mask key's bytes, or a random one when allowed; a clear error otherwise."""
    if config.mask_key is not None and config.mask_key.get_secret_value():
        return config.mask_key.get_secret_value().encode("utf-8"), False
    if allow_random:
        return secrets.token_bytes(32), True
    where = config.locate("mask_key" if config.mask_key is not None else "masks")
    raise ConfigError(
        f"{where}masks need a mask_key, the secret that makes masking deterministic, and it is "
        "missing or empty: write `mask_key: ${SUBSET_MASK_KEY}` and set that variable, or pass "
        "--allow-random-masks to mask with a random key (different output on every run)"
    )


def plan_masks(
    catalog: Catalog,
    plan: Plan | None,
    config: Config,
    allow_random: bool = False,
    need_key: bool = True,
) -> MaskPlan:
    """Check ``config.masks`` against the catalog and decide how each column is masked.

    ``plan`` limits the masks to the tables a run copies (None: every table, as ``audit``
    wants); ``need_key=False`` checks the rules without asking for the secret.
    """
    if not config.masks:
        return MaskPlan()
    wanted: dict[ColumnId, tuple[MaskRule, str]] = {}
    kept: list[str] = []
    for name, rule in config.masks.items():
        where = config.locate("masks", name)
        ref, column = _resolve_column(catalog, name, where)
        wanted[(ref, column.name)] = (rule, where)
        if rule.strategy == "keep":
            kept.append(column_label(catalog, ref, column.name))
    hooks = {
        r.hook: _import_hook(r.hook, where) for r, where in wanted.values() if r.hook is not None
    }
    planned = set(plan.tables if plan is not None else catalog.tables)
    groups: list[KeyGroup] = []
    singles: list[ColumnMask] = []
    for members in _key_groups(catalog, wanted):
        rules = [wanted[c] for c in members if c in wanted]
        chosen = _one_rule(catalog, members, rules, wanted)
        if chosen is None:
            continue
        rule, where = chosen
        unique = len(members) > 1 or in_unique_key(catalog.table(members[0][0]), members[0][1])
        masks = []
        for ref, col in members:
            column = catalog.table(ref).column(col)
            _check_column(ref, column, rule, where, unique)
            if ref in planned:
                label = column_label(catalog, ref, col)
                masks.append(ColumnMask(ref, column, rule, _source_key(where), label))
        if masks and unique:
            groups.append(KeyGroup(tuple(masks), unique))
        else:
            singles += masks
    if not groups and not singles:
        return MaskPlan(kept=tuple(kept))
    key, random_key = mask_key_of(config, allow_random) if need_key else (b"", False)
    return MaskPlan(
        tuple(singles),
        tuple(groups),
        tuple(kept),
        key,
        random_key,
        config.locale or DEFAULT_LOCALE,
        hooks,
    )


def column_label(catalog: Catalog, ref: TableRef, column: str) -> str:
    """``table.column`` as reports name it: the source's default schema left out."""
    return f"{ref.name if ref.schema == catalog.default_schema else ref}.{column}"


def _source_key(where: str) -> str:
    """``c.yml:4:3 masks.a.b: `` -> ``masks.a.b``."""
    return where.rstrip(": ").split(" ", 1)[-1]


def _resolve_column(catalog: Catalog, name: str, where: str) -> tuple[TableRef, Column]:
    table_name, _, column_name = name.rpartition(".")
    ref = catalog.resolve(table_name, where)
    table = catalog.table(ref)
    try:
        return ref, table.column(column_name)
    except KeyError:
        hint = did_you_mean(column_name, table.column_names)
        raise ConfigError(f'{where}no column "{column_name}" in table {ref}.{hint}') from None


def _import_hook(spec: str, where: str) -> Hook:
    module_name, _, name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(
            f"{where}cannot import the hook's module {module_name} ({type(exc).__name__}: {exc}); "
            "it must be importable from the environment subset runs in"
        ) from None
    function = getattr(module, name, None)
    if not callable(function):
        raise ConfigError(f"{where}module {module_name} has no function {name}")
    params = list(inspect.signature(function).parameters)
    return Hook(spec, function, batch=bool(params) and params[0] == "values")


def _key_groups(catalog: Catalog, wanted: Mapping[ColumnId, Any]) -> list[list[ColumnId]]:
    """The connected components (through foreign-key column pairs) of the wanted columns."""
    parent: dict[ColumnId, ColumnId] = {}

    def find(c: ColumnId) -> ColumnId:
        while parent.get(c, c) != c:
            c = parent[c]
        return c

    nodes: dict[ColumnId, None] = dict.fromkeys(wanted)
    for fk in catalog.foreign_keys:
        for a, b in zip(fk.columns, fk.ref_columns, strict=True):
            nodes.update(dict.fromkeys([(fk.child, a), (fk.parent, b)]))
            ra, rb = find((fk.child, a)), find((fk.parent, b))
            if ra != rb:
                parent[max(ra, rb, key=_order)] = min(ra, rb, key=_order)
    members: dict[ColumnId, list[ColumnId]] = {}
    for c in nodes:
        members.setdefault(find(c), []).append(c)
    return [sorted(m, key=_order) for m in members.values() if any(c in wanted for c in m)]


def _order(c: ColumnId) -> tuple[str, str, str]:
    return (c[0].schema or "", c[0].name, c[1])


def _one_rule(
    catalog: Catalog,
    members: list[ColumnId],
    rules: list[tuple[MaskRule, str]],
    wanted: Mapping[ColumnId, tuple[MaskRule, str]],
) -> tuple[MaskRule, str] | None:
    """The single rule a key group gets; two different rules in one group are an error."""
    if any(rule != rules[0][0] for rule, _ in rules):
        named = sorted(
            f"{r}.{c} ({wanted[(r, c)][0].describe()})" for r, c in wanted if (r, c) in members
        )
        first = sorted(rules, key=lambda r: r[1])[0][1]
        raise ConfigError(
            f"{first}columns joined by foreign keys must be masked alike, so joins still match: "
            f"{', '.join(named)}. Give them one rule (masking one of them masks all)."
        )
    rule, where = sorted(rules, key=lambda r: r[1])[0]
    return None if rule.strategy == "keep" else (rule, where)


def in_unique_key(table: Table, column: str) -> bool:
    """Whether ``column`` is part of the primary key, a unique key or a unique index."""
    keys = [table.primary_key, *table.unique_keys, *(i.columns for i in table.indexes if i.unique)]
    return any(column in key for key in keys if key)


def _check_column(ref: TableRef, column: Column, rule: MaskRule, where: str, unique: bool) -> None:
    """Fail (naming the column) when the rule cannot write it, or cannot keep it a key."""
    label = f"{ref}.{column.name}"
    if rule.hook is not None or rule.json_paths is not None:
        if unique:
            raise ConfigError(
                f"{where}{label} is a key (unique, or joined by a foreign key); a "
                f"{'hook' if rule.hook else 'json rule'} cannot keep it consistent. "
                "Use hash or a built-in strategy."
            )
        if rule.json_paths is not None:
            if column.type.kind not in {"json", "string", "text"}:
                raise ConfigError(f"{where}{label} is not JSON or text; json rules cannot apply")
            for path, inner in rule.json_paths.items():
                if inner.hook is not None or inner.json_paths is not None:
                    raise ConfigError(f"{where}{label} {path}: use a strategy inside json")
                _json_path(path, where)
        return
    strategy = STRATEGIES[rule.strategy or "keep"]
    problem = check_fit(strategy, column, rule.options)
    if problem is None and unique and not strategy.spread:
        problem = f"strategy {strategy.name} gives many rows one value, but the column is a key"
    if problem is not None:
        raise ConfigError(f"{where}cannot mask {label}: {problem}")


_PATH_PART = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+|\*)\]|\[\"([^\"]+)\"\]|\['([^']+)'\]")


def _json_path(path: str, where: str) -> list[str | int]:
    """``$.a.b[0][*]`` -> ``["a", "b", 0, "*"]``."""
    parts: list[str | int] = []
    pos = 1
    while pos < len(path):
        match = _PATH_PART.match(path, pos)
        if not match:
            raise ConfigError(f'{where}cannot read JSON path "{path}" at "{path[pos:]}"')
        name, index, dq, sq = match.groups()
        parts.append(int(index) if index and index != "*" else (index or name or dq or sq))
        pos = match.end()
    return parts


# ---------------------------------------------------------------------------- the stage


@dataclass
class MaskStats:
    """Values rewritten per masked column, and collisions resolved in key groups."""

    values: dict[str, int] = field(default_factory=dict)
    collisions: dict[str, int] = field(default_factory=dict)


def mask(masks: MaskPlan, staging: Staging, reporter: Reporter) -> MaskStats:
    """Rewrite every masked column in staging. Hooks run first, so their rows hold originals."""
    stats = MaskStats()
    masker = Masker(masks.key, masks.locale)
    ordered = sorted(masks.columns, key=lambda m: m.rule.hook is None)
    for m in ordered:
        with _failing_as_mask_error(m.label, m.rule):
            stats.values[m.label] = _mask_column(m, masks, masker, staging)
        reporter.event(f"masked {m.label}: {m.rule.describe()}")
    for group in masks.groups:
        with _failing_as_mask_error(group.label, group.rule):
            _mask_group(group, masker, staging, stats)
        reporter.event(f"masked key {group.label}: {group.rule.describe()}")
    return stats


@contextlib.contextmanager
def _failing_as_mask_error(label: str, rule: MaskRule) -> Iterator[None]:
    """A value a strategy cannot write (a date shifted past 9999-12-31, ...) stops the run."""
    try:
        yield
    except SubsetterError:
        raise
    except Exception as exc:
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MaskError(
            f"masking {label} with {rule.describe()} failed: {problem}. Nothing was loaded."
        ) from exc


def _mask_column(m: ColumnMask, masks: MaskPlan, masker: Masker, staging: Staging) -> int:
    rule = m.rule
    if rule.hook is not None:
        masked = {c.column.name for c in masks.columns if c.table == m.table} | {
            c.column.name for g in masks.groups for c in g.members if c.table == m.table
        }
        compute = _hook_batch(m, masks.hooks[rule.hook], staging, masked)
        return staging.rewrite_column(m.table, m.column.name, compute)
    if rule.json_paths is not None:
        paths = [(_json_path(p, m.label), r) for p, r in rule.json_paths.items()]
        compute = _python_batch(lambda v, s: _mask_json(s, paths, masker, m.label))
        return _via_mapping(m, staging, compute=compute)
    strategy = STRATEGIES[rule.strategy or "keep"]
    sql = sql_form(strategy, rule.options, m.column, masker.key)
    if sql is not None:
        return staging.update_column(m.table, m.column.name, *sql)
    compute = _python_batch(lambda v, s: masker.value(strategy, rule.options, m.column, v, s))
    return _via_mapping(m, staging, compute=compute)


def _via_mapping(m: ColumnMask, staging: Staging, compute: Callable[[list[Row]], list[Any]]) -> int:
    mapping = staging.build_mapping([(m.table, m.column.name)], compute=compute)
    try:
        return staging.apply_mapping(mapping, m.table, m.column.name)
    finally:
        staging.drop_mapping(mapping)


def _python_batch(fn: Callable[[Any, str], Any]) -> Callable[[list[Row]], list[Any]]:
    return lambda rows: [fn(o, s) for o, s in rows]


def _mask_group(group: KeyGroup, masker: Masker, staging: Staging, stats: MaskStats) -> None:
    """One mapping for all the group's columns; collisions get fresh digests, or fail."""
    first = group.members[0]
    rule = group.rule
    strategy = STRATEGIES[rule.strategy or "keep"]
    columns = [(m.table, m.column.name) for m in group.members]

    def value(o: Any, s: str, attempt: int = 0) -> Any:
        return masker.value(strategy, rule.options, first.column, o, s, attempt)

    sql = sql_form(strategy, rule.options, first.column, masker.key)
    mapping = staging.build_mapping(
        columns, compute=None if sql else _python_batch(value), expr=sql
    )
    try:
        how = staging.staged_type(*columns[0])
        attempts: dict[str, int] = {}
        while collided := staging.mapping_collisions(mapping):
            retry = [row for group_rows in collided for row in group_rows[1:]]
            for _, s in retry:
                attempts[s] = attempts.get(s, 0) + 1
            worst = max(attempts[s] for _, s in retry)
            if worst > MAX_ATTEMPTS:
                raise MaskError(
                    f"masking {first.label} with {rule.describe()} keeps giving equal values to "
                    f"different keys ({len(retry)} value(s) still collide after {MAX_ATTEMPTS} "
                    "tries); the column is too narrow for its values. Use hash with a longer "
                    "column, or another strategy."
                )
            staging.remap(mapping, how, retry, [value(o, s, attempts[s]) for o, s in retry])
        stats.collisions[first.label] = len(attempts)
        for m in group.members:
            stats.values[m.label] = staging.apply_mapping(mapping, m.table, m.column.name)
    finally:
        staging.drop_mapping(mapping)


def _hook_batch(
    m: ColumnMask, hook: Hook, staging: Staging, masked: set[str]
) -> Callable[[list[Row]], list[Any]]:
    """Call the hook on a batch of rows; errors name the row's key (never its values).

    ``masked`` are the table's masked columns: a key made of them is personal itself, so such
    rows (and rows of tables without a key) are named by their position instead.
    """
    table = staging.table(m.table)
    names = table.column_names
    i = names.index(m.column.name)
    key = table.identity if table.has_key and not set(table.identity) & masked else ()
    done = [0]  # rows of earlier batches

    def name_row(row: Row, position: int) -> str:
        if not key:
            return f"row {done[0] + position + 1} of {m.table}"
        return "row " + ", ".join(f"{c}={row[names.index(c)]!r}" for c in key)

    def call(rows: list[Row], contexts: list[dict[str, Any]]) -> list[Any]:
        if hook.batch:
            try:
                out = list(hook.function([r[i] for r in rows], contexts))
            except Exception as exc:
                raise _hook_error(hook, m, "", exc) from None
            if len(out) != len(rows):
                raise MaskError(f"hook {hook.spec} returned {len(out)} values for {len(rows)} rows")
            return out
        out = []
        for n, (row, context) in enumerate(zip(rows, contexts, strict=True)):
            try:
                out.append(None if row[i] is None else hook.function(row[i], context))
            except Exception as exc:
                raise _hook_error(hook, m, f" on the {name_row(row, n)}", exc) from None
        return out

    def compute(rows: list[Row]) -> list[Any]:
        out = call(rows, [dict(zip(names, r, strict=True)) for r in rows])
        if not m.column.nullable:
            for n, (row, v) in enumerate(zip(rows, out, strict=True)):
                if v is None:
                    raise MaskError(
                        f"hook {hook.spec} returned None for NOT NULL {m.label} "
                        f"on the {name_row(row, n)}"
                    )
        done[0] += len(rows)
        return out

    return compute


def _hook_error(hook: Hook, m: ColumnMask, where: str, exc: Exception) -> MaskError:
    return MaskError(
        f"hook {hook.spec} failed masking {m.label}{where}: {type(exc).__name__}. "
        "Nothing was loaded."
    )


def _mask_json(
    text: str, paths: list[tuple[list[str | int], MaskRule]], masker: Masker, label: str
) -> str:
    try:
        doc = json.loads(text)
    except ValueError:
        raise MaskError(
            f"{label} holds a value that is not JSON, so its json rules cannot apply; "
            "mask the whole column instead"
        ) from None
    for parts, rule in paths:
        doc = _at_path(doc, parts, functools.partial(_mask_leaf, rule=rule, masker=masker))
    return json.dumps(doc, ensure_ascii=False)


def _at_path(node: Any, parts: list[str | int], fn: Callable[[Any], Any]) -> Any:
    if not parts:
        return fn(node) if node is not None else None
    head, rest = parts[0], parts[1:]
    if head == "*" and isinstance(node, list):
        return [_at_path(item, rest, fn) for item in node]
    in_list = isinstance(head, int) and isinstance(node, list) and -len(node) <= head < len(node)
    if in_list or (isinstance(head, str) and isinstance(node, dict) and head in node):
        node[head] = _at_path(node[head], rest, fn)
    return node


_LEAF_KINDS = {bool: "boolean", int: "integer", float: "float", str: "text"}


def _mask_leaf(leaf: Any, rule: MaskRule, masker: Masker) -> Any:
    """A JSON leaf masked like a column of its JSON type (dates inside strings shift too)."""
    if isinstance(leaf, dict | list):
        return None if rule.strategy == "null" else masker.value(
            STRATEGIES[rule.strategy or "keep"], rule.options, _leaf_column("text"),
            json.dumps(leaf), json.dumps(leaf, sort_keys=True),
        )  # fmt: skip
    strategy = STRATEGIES[rule.strategy or "keep"]
    text = leaf if isinstance(leaf, str) else json.dumps(leaf)
    if strategy.name == "date_shift" and isinstance(leaf, str):
        try:
            parsed: Any = dt.datetime.fromisoformat(leaf)
            if len(leaf) == 10:
                parsed = parsed.date()
        except ValueError:
            return leaf
        return masker.value(strategy, rule.options, _leaf_column("date"), parsed, text).isoformat()
    return masker.value(strategy, rule.options, _leaf_column(_LEAF_KINDS[type(leaf)]), leaf, text)


def _leaf_column(kind: str) -> Column:
    return Column("json leaf", ColumnType(kind))
