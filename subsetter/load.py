"""Stage 5: staging -> target. Create tables, bulk-load rows, then add keys and indexes.

Modes ``create`` and ``replace``: like pg_restore, rows go in before primary keys, unique keys,
foreign keys and indexes (where the engine can add them afterwards), so load order never
matters and cycles need no special case. Where DDL is transactional the whole load is one
transaction; elsewhere the tables this run created are dropped again on failure, so a failed run
leaves no half-loaded table.

Modes ``truncate`` and ``append`` load into tables that exist with their keys in place: rows go
in the plan's ``LoadPlan.order`` (parents first), each cycle by its strategy (deferred keys,
NULL then UPDATE, checks off), all in one transaction on every engine (no DDL happens).
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from subsetter.catalog import Catalog, Column, ForeignKey, Table, TableRef
from subsetter.dialects import Dialect, TypeChoice
from subsetter.dialects.base import ArrowUnfit, InlineForeignKey
from subsetter.errors import IntegrityError, LoadError, SubsetterError, TargetError
from subsetter.plan import LoadPlan, Plan
from subsetter.reporting import Reporter
from subsetter.staging import Staging
from subsetter.verify import FkCheck, VerifyResult, verify_target


@dataclass(frozen=True)
class TargetTable:
    """A source table as the target will hold it: its name there and each column's type."""

    source: Table
    ref: TableRef
    types: tuple[TypeChoice, ...]


@dataclass
class LoadStats:
    """Rows and seconds per table."""

    rows: dict[TableRef, int] = field(default_factory=dict)
    seconds: dict[TableRef, float] = field(default_factory=dict)


def map_tables(plan: Plan, catalog: Catalog, target: Dialect) -> dict[TableRef, TargetTable]:
    """Name each planned table on the target and choose its column types."""
    out: dict[TableRef, TargetTable] = {}
    for ref in plan.tables:
        table = catalog.table(ref)
        if ref.schema in (None, catalog.default_schema):
            name = TableRef(None, ref.name)  # the source's default schema -> the target's
        elif target.supports_schemas:
            name = TableRef(ref.schema, ref.name)
        else:
            name = TableRef(None, f"{ref.schema}_{ref.name}")
        types = tuple(target.type_sql(c.type, catalog.dialect) for c in table.columns)
        out[ref] = TargetTable(table, name, types)
    if target.name != catalog.dialect:
        _align_key_types(plan, out)
    return out


def _align_key_types(plan: Plan, tables: dict[TableRef, TargetTable]) -> None:
    """Give each foreign-key column its parent column's target type.

    Sources may pair a SMALLINT key with an INTEGER parent (Pagila does); MySQL refuses such a
    foreign key, so across engines the child takes the parent's type.
    """
    changed = True
    while changed:
        changed = False
        for fk in plan.upstream:
            if fk.virtual or fk.child not in tables or fk.parent not in tables:
                continue
            child, parent = tables[fk.child], tables[fk.parent]
            types = list(child.types)
            for col, ref_col in zip(fk.columns, fk.ref_columns, strict=True):
                i = child.source.column_names.index(col)
                j = parent.source.column_names.index(ref_col)
                same_kind = child.source.columns[i].type.kind == parent.source.columns[j].type.kind
                if same_kind and types[i].sql != parent.types[j].sql:
                    types[i] = parent.types[j]
                    changed = True
            tables[fk.child] = TargetTable(child.source, child.ref, tuple(types))


def type_notes(tables: dict[TableRef, TargetTable]) -> list[str]:
    """Every lossy type mapping, as ``table.column: note``."""
    return [
        f"{t.ref}.{col.name}: {choice.note}"
        for t in tables.values()
        for col, choice in zip(t.source.columns, t.types, strict=True)
        if choice.note
    ]


def fk_checks(plan: Plan, tables: dict[TableRef, TargetTable]) -> list[FkCheck]:
    """The foreign keys (declared and virtual) between planned tables, named as on the target."""
    return [
        FkCheck(
            str(fk),
            tables[fk.child].ref,
            fk.columns,
            tables[fk.parent].ref,
            fk.ref_columns,
            fk.condition,
        )
        for fk in plan.upstream
        if fk.child in tables and fk.parent in tables
    ]


def check_target_free(
    dialect: Dialect, conn: Any, tables: dict[TableRef, TargetTable], replace: bool
) -> list[TableRef]:
    """Fail when subset tables already exist (unless replacing); return those that do."""
    existing = dialect.existing_tables(conn, [t.ref for t in tables.values()])
    if existing and not replace:
        names = ", ".join(str(r) for r in sorted(existing))
        raise TargetError(
            f"the target {dialect.describe()} already has table(s) {names}; "
            "pass --replace to drop and recreate the subset's tables, or choose an empty target"
        )
    return existing


def existing_schema(
    plan: Plan, tables: dict[TableRef, TargetTable], target: Catalog, dialect: Dialect
) -> tuple[list[ForeignKey], dict[TableRef, Table]]:
    """The target's own tables and keys for the subset's tables, named as in the source.

    Fails, naming the table or column, when the target lacks a table or a source column, or
    has a NOT NULL column without a default that the source cannot fill (schema drift).
    """
    by_target: dict[TableRef, TableRef] = {}
    found: dict[TableRef, Table] = {}
    default = target.default_schema
    for ref in plan.tables:
        name = tables[ref].ref
        there = target.tables.get(TableRef(name.schema or default, name.name))
        if there is None:
            raise TargetError(
                f"the target {dialect.describe()} has no table {name}; truncate and append load "
                "into existing tables (create them with your migrations), or use mode create"
            )
        columns = set(there.column_names)
        for column in tables[ref].source.columns:
            if column.name not in columns:
                raise TargetError(
                    f"the target's table {name} has no column {column.name}, which the source's "
                    f"{ref} has; add it to the target (a migration) or exclude the table"
                )
        source_columns = set(tables[ref].source.column_names)
        for column in there.columns:
            if column.name in source_columns or column.nullable:
                continue
            if column.default is None and not column.autoincrement:
                raise TargetError(
                    f"the target's table {name} has a NOT NULL column {column.name} without a "
                    f"default, and the source's {ref} has no such column to fill it"
                )
        by_target[there.ref] = ref
        found[ref] = there
    fks = [
        ForeignKey(
            by_target[fk.child],
            fk.columns,
            by_target[fk.parent],
            fk.ref_columns,
            fk.name,
            deferrable=fk.deferrable,
        )
        for fk in target.foreign_keys
        if fk.child in by_target and fk.parent in by_target
    ]
    return fks, found


def load(
    plan: Plan,
    tables: dict[TableRef, TargetTable],
    staging: Staging,
    dialect: Dialect,
    conn: Any,
    reporter: Reporter,
    *,
    replace: bool,
    source_dialect: str,
) -> tuple[LoadStats, VerifyResult]:
    """Load every planned table, add constraints, verify, and commit (or undo everything)."""
    if plan.load is not None and plan.load.mode in ("truncate", "append"):
        return _load_existing(plan, plan.load, tables, staging, dialect, conn, reporter)
    stats = LoadStats()
    created: list[TableRef] = []
    loading: TableRef | None = None  # named in the error when rows of one table are refused
    try:
        dialect.begin_load(conn)
        existing = check_target_free(dialect, conn, tables, replace)
        _drop(
            dialect, conn, [t for t in reversed(plan.tables) if tables[t].ref in existing], tables
        )
        _create_tables(plan, tables, dialect, conn, created, source_dialect)
        for ref in plan.tables:
            loading = tables[ref].ref
            started = time.perf_counter()
            stats.rows[ref] = _copy_rows(ref, tables[ref], staging, dialect, conn, reporter)
            stats.seconds[ref] = time.perf_counter() - started
            reporter.table_loaded(str(tables[ref].ref), stats.rows[ref], stats.seconds[ref])
        loading = None
        enforced = _add_constraints(plan, tables, dialect, conn)
        checks = fk_checks(plan, tables)
        # A foreign key the engine validated as it was added needs no second anti-join.
        result = verify_target(dialect, conn, [c for c in checks if c.label not in enforced])
        result.checked = len(checks)
        if not result.ok:
            raise IntegrityError(result.describe() + "; nothing was loaded")
        conn.commit()
        return stats, result
    except BaseException as exc:
        left = _undo(dialect, conn, created)
        kept = ""
        if left:
            names = ", ".join(str(r) for r in left)
            kept = f"; the partly loaded table(s) {names} could not be dropped: drop them by hand"
        if isinstance(exc, SubsetterError):
            exc.args = (f"{exc}{kept}",) if kept else exc.args
            raise
        if not dialect.is_driver_error(exc):
            raise
        outcome = kept or "; nothing was committed"
        raise _load_error(dialect, exc, loading, "", outcome, retry=not left) from None


def _load_error(
    dialect: Dialect, exc: BaseException, loading: TableRef | None, mode: str, outcome: str,
    retry: bool = True,
) -> LoadError:  # fmt: skip
    """The one-line error for a driver error while loading: a lost connection, or a failure."""
    table = f" table {loading}" if loading else ""
    transient = dialect.is_transient(exc)
    what = "lost its connection" if transient else "failed"
    return LoadError(
        f"loading{table} into {dialect.describe()}{mode} {what}: {dialect.wrap_error(exc)}"
        + outcome,
        transient=transient and retry,
    )


def _load_existing(
    plan: Plan,
    how: LoadPlan,
    tables: dict[TableRef, TargetTable],
    staging: Staging,
    dialect: Dialect,
    conn: Any,
    reporter: Reporter,
) -> tuple[LoadStats, VerifyResult]:
    """Truncate/append into existing tables, in one transaction; verify before committing."""
    stats = LoadStats()
    nulled: dict[TableRef, list[ForeignKey]] = {}
    for cycle in how.cycles:
        for fk in cycle.nulled:
            nulled.setdefault(fk.child, []).append(fk)
    loading: TableRef | None = None
    try:
        dialect.begin_existing_load(conn)
        if any(c.strategy == "checks_disabled" for c in how.cycles):
            dialect.disable_fk_checks(conn)
        if any(c.deferred for c in how.cycles):
            dialect.defer_constraints(conn)
        if how.mode == "truncate":
            if not dialect.truncates_together:
                # Row-by-row deletes inside a cycle need its nullable edge cut first.
                for ref, fks in nulled.items():
                    cols = [c for fk in fks for c in fk.columns]
                    sets = ", ".join(f"{dialect.quote(c)} = NULL" for c in dict.fromkeys(cols))
                    dialect.execute(conn, f"UPDATE {dialect.table_sql(tables[ref].ref)} SET {sets}")
            dialect.empty_tables(conn, [tables[r].ref for r in reversed(how.order)])
        for ref in how.order:
            loading = tables[ref].ref
            started = time.perf_counter()
            blank = [c for fk in nulled.get(ref, []) for c in fk.columns]
            stats.rows[ref] = _copy_rows(
                ref, tables[ref], staging, dialect, conn, reporter,
                blank, how.on_conflict, how.keys[ref],
            )  # fmt: skip
            stats.seconds[ref] = time.perf_counter() - started
            reporter.table_loaded(str(tables[ref].ref), stats.rows[ref], stats.seconds[ref])
        for ref, fks in nulled.items():
            loading = tables[ref].ref
            _set_nulled(ref, tables[ref], staging, dialect, conn, fks, how.keys[ref])
        loading = None
        for ref in how.order:
            for column in tables[ref].source.columns:
                if column.autoincrement and column.type.kind == "integer":
                    dialect.reset_autoincrement(conn, tables[ref].ref, column.name)
        checks = fk_checks(plan, tables)
        known = {(c.child, c.columns, c.parent) for c in checks}
        for fk in how.foreign_keys:
            check = FkCheck(
                str(fk), tables[fk.child].ref, fk.columns, tables[fk.parent].ref, fk.ref_columns
            )
            if (check.child, check.columns, check.parent) not in known:
                checks.append(check)
        result = verify_target(dialect, conn, checks)
        if not result.ok:
            raise IntegrityError(result.describe() + "; nothing was loaded")
        conn.commit()
        return stats, result
    except BaseException as exc:
        with contextlib.suppress(Exception):
            conn.rollback()
        if isinstance(exc, SubsetterError) or not dialect.is_driver_error(exc):
            raise
        mode = f" (mode {how.mode})"
        raise _load_error(dialect, exc, loading, mode, "; nothing was changed") from None


def _set_nulled(
    ref: TableRef,
    target: TargetTable,
    staging: Staging,
    dialect: Dialect,
    conn: Any,
    fks: list[ForeignKey],
    key: tuple[str, ...],
) -> None:
    """UPDATE the keys written as NULL to their real values, now that every row is in."""
    names = target.source.column_names
    converters = _converters(target, dialect)
    columns = list(dict.fromkeys(c for fk in fks for c in fk.columns))
    picks = [names.index(c) for c in (*key, *columns)]
    for rows in staging.read(ref):
        values = [
            tuple(_convert(row[i], converters[i]) for i in picks)
            for row in rows
            if any(row[names.index(c)] is not None for c in columns)
        ]
        if values:
            dialect.update_rows(conn, target.ref, key, columns, values)


def _undo(dialect: Dialect, conn: Any, created: list[TableRef]) -> list[TableRef]:
    """Roll back; where DDL is not transactional, drop the tables this run created.

    The connection may be what failed (killed, network gone): the drops then go through a new
    one. Returns the tables that could not be dropped, for the error message.
    """
    with contextlib.suppress(Exception):
        conn.rollback()
    if dialect.transactional_ddl or not created:
        return []
    fresh = None
    if not dialect.is_alive(conn):
        try:
            conn = fresh = dialect.connect_retrying()
            dialect.begin_load(conn)  # the same session settings (MySQL: no FK checks on DROP)
        except Exception:
            return list(created)
    left = []
    for ref in reversed(created):
        try:
            dialect.execute(conn, dialect.drop_table_sql(ref))
        except Exception:
            left.append(ref)
    if fresh is not None:
        with contextlib.suppress(Exception):
            fresh.close()
    return left


def _drop(
    dialect: Dialect, conn: Any, refs: Sequence[TableRef], tables: dict[TableRef, TargetTable]
) -> None:
    for ref in refs:
        dialect.execute(conn, dialect.drop_table_sql(tables[ref].ref))


def _create_tables(
    plan: Plan,
    tables: dict[TableRef, TargetTable],
    dialect: Dialect,
    conn: Any,
    created: list[TableRef],
    source_dialect: str,
) -> None:
    for schema in sorted({t.ref.schema for t in tables.values() if t.ref.schema}):
        statement = dialect.create_schema_sql(schema)
        if statement:
            dialect.execute(conn, statement)
    columns: list[tuple[TableRef, Column]] = [
        (t.ref, c) for t in tables.values() for c in t.source.columns
    ]
    dialect.prepare_types(conn, columns, source_dialect)
    inline = not dialect.can_alter_constraints
    declared = _declared_fks(plan, tables, dialect) if inline else []
    for ref in plan.tables:
        target = tables[ref]
        fks = [key for child, key in declared if child == target.ref]
        for statement in dialect.create_table_sql(
            target.source, target.ref, target.types, inline, fks
        ):
            dialect.execute(conn, statement)
        created.append(target.ref)


def _declared_fks(
    plan: Plan, tables: dict[TableRef, TargetTable], dialect: Dialect
) -> list[tuple[TableRef, InlineForeignKey]]:
    """The declared (not virtual) foreign keys between planned tables: (child, key) on target."""
    return [
        (
            tables[fk.child].ref,
            (_fk_name(fk, tables, dialect), fk.columns, tables[fk.parent].ref, fk.ref_columns),
        )
        for fk in plan.upstream
        if _declares(fk, tables)
    ]


def _converters(target: TargetTable, dialect: Dialect) -> list[Callable[[Any], Any] | None]:
    return [
        dialect.target_converter(c.type, choice)
        for c, choice in zip(target.source.columns, target.types, strict=True)
    ]


def _convert(value: Any, converter: Callable[[Any], Any] | None) -> Any:
    return value if converter is None or value is None else converter(value)


def _declares(fk: ForeignKey, tables: dict[TableRef, TargetTable]) -> bool:
    """Whether ``fk`` becomes a constraint on the target: declared, between planned tables."""
    return not fk.virtual and fk.child in tables and fk.parent in tables


def _copy_rows(
    ref: TableRef,
    target: TargetTable,
    staging: Staging,
    dialect: Dialect,
    conn: Any,
    reporter: Reporter,
    blank: Sequence[str] = (),
    on_conflict: str = "error",
    key: Sequence[str] = (),
) -> int:
    """Copy a table's staged rows; ``blank`` columns go in as NULL (set later by UPDATE)."""
    converters = _converters(target, dialect)
    columns = target.source.column_names
    expected = staging.count(ref)
    name = str(target.ref)
    reporter.progress(name, 0, expected)
    plain = not blank and on_conflict == "error"
    if plain and dialect.loads_arrow([c.type for c in target.source.columns], converters):
        batches = _counted(staging.read_arrow(ref), name, expected, reporter)
        with contextlib.suppress(ArrowUnfit):  # then row by row, below
            return dialect.load_arrow(conn, target.ref, columns, batches)
    blanked = {columns.index(c) for c in blank}
    total = 0
    for rows in staging.read(ref):
        if any(converters) or blanked:
            rows = [
                tuple(
                    None if i in blanked else _convert(v, conv)
                    for i, (v, conv) in enumerate(zip(row, converters, strict=True))
                )
                for row in rows
            ]
        if on_conflict == "error" or not key:  # without a key nothing can conflict
            dialect.insert_rows(conn, target.ref, columns, rows)
        else:
            dialect.insert_rows_on_conflict(conn, target.ref, columns, key, rows, on_conflict)
        total += len(rows)
        reporter.progress(name, total, expected)
    return total


def _counted(
    batches: Iterator[pa.RecordBatch], name: str, expected: int, reporter: Reporter
) -> Iterator[pa.RecordBatch]:
    """Pass batches through, reporting the rows handed to the loader so far."""
    done = 0
    for batch in batches:
        yield batch
        done += batch.num_rows
        reporter.progress(name, done, expected)


def _add_constraints(
    plan: Plan, tables: dict[TableRef, TargetTable], dialect: Dialect, conn: Any
) -> set[str]:
    """Add keys and indexes; return the foreign keys the engine checked as it added them."""
    enforced: set[str] = set()
    if dialect.can_alter_constraints:
        added = _add_keys(plan, tables, dialect, conn)
        if dialect.validates_added_foreign_keys:
            enforced = added
    statements = []
    for ref in plan.tables:
        target = tables[ref]
        for index in target.source.indexes:
            name = _name(dialect, f"{target.ref.name}_{index.name}")
            statements.append(dialect.create_index_sql(target.ref, index, name))
    dialect.execute_all(conn, statements)
    for ref in plan.tables:
        target = tables[ref]
        for column in target.source.columns:
            if column.autoincrement and column.type.kind == "integer":
                dialect.reset_autoincrement(conn, target.ref, column.name)
    return enforced


def _add_keys(
    plan: Plan, tables: dict[TableRef, TargetTable], dialect: Dialect, conn: Any
) -> set[str]:
    """Primary keys, unique keys, then foreign keys, by ALTER TABLE after the rows are in.

    Returns the labels of the foreign keys added.
    """
    statements = []
    for ref in plan.tables:
        target, source = tables[ref], tables[ref].source
        if source.primary_key and not dialect.primary_key_in_create:
            name = _name(dialect, f"{target.ref.name}_pkey")
            statements.append(dialect.add_primary_key_sql(target.ref, source.primary_key, name))
        for key in source.unique_keys:
            name = _name(dialect, f"{target.ref.name}_{'_'.join(key)}_key")
            statements.append(dialect.add_unique_sql(target.ref, key, name))
    for child, (name, columns, parent, ref_columns) in _declared_fks(plan, tables, dialect):
        statements.append(dialect.add_foreign_key_sql(child, columns, parent, ref_columns, name))
    dialect.execute_all(conn, statements)
    return {str(fk) for fk in plan.upstream if _declares(fk, tables)}


def _fk_name(fk: ForeignKey, tables: dict[TableRef, TargetTable], dialect: Dialect) -> str:
    return _name(dialect, f"{tables[fk.child].ref.name}_{'_'.join(fk.columns)}_fkey")


def _name(dialect: Dialect, text: str) -> str:
    """A constraint or index name that fits the engine's identifier limit, stable across runs."""
    limit = dialect.max_identifier_length
    if len(text) <= limit:
        return text
    digest = hashlib.sha1(text.encode()).hexdigest()[:8]
    return f"{text[: limit - 9]}_{digest}"
