"""Stage 5: staging -> target. Create tables, bulk-load rows, then add keys and indexes.

Modes ``create`` and ``replace``: like pg_restore, rows go in before primary keys, unique keys,
foreign keys and indexes (where the engine can add them afterwards), so load order never
matters and cycles need no special case. Where DDL is transactional the whole load is one
transaction. Elsewhere (MySQL/MariaDB) the new tables are created, loaded, keyed and verified
under shadow names (``_subsetter_new_<name>``) and swapped in by one atomic rename, the previous
tables dropped after; a failure before the swap drops the shadow tables. Either way a failed run
leaves the target as it was: no half-loaded table, no lost previous subset.

Modes ``truncate`` and ``append`` load into tables that exist with their keys in place: rows go
in the plan's ``LoadPlan.order`` (parents first), each cycle by its strategy (deferred keys,
NULL then UPDATE, checks off), all in one transaction on every engine (no DDL happens).
"""

from __future__ import annotations

import contextlib
import hashlib
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence, Set
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from subsetter.catalog import Catalog, Column, ForeignKey, Index, Table, TableRef
from subsetter.dialects import Dialect, TypeChoice
from subsetter.dialects.base import ArrowUnfit, InlineForeignKey, ValueTooLarge
from subsetter.errors import IntegrityError, LoadError, SubsetterError, TargetError
from subsetter.plan import LoadPlan, Plan
from subsetter.reporting import NullReporter, Reporter
from subsetter.staging import StagedRound, Staging
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


SHADOW_PREFIX = "_subsetter_new_"
"""Where DDL commits, a run's new tables are loaded under this prefix, then swapped in."""
RETIRED_PREFIX = "_subsetter_old_"
"""A replaced table's name between the swap and its drop."""
LEFTOVER_PREFIXES = (SHADOW_PREFIX, RETIRED_PREFIX)


def shadow_ref(dialect: Dialect, ref: TableRef, prefix: str) -> TableRef:
    """``ref`` under ``prefix``: stable across runs, so a run killed outright (no cleanup) leaves
    names the next run recognises and drops; short enough that ``<name>_ibfk_<n>`` (MySQL's
    foreign-key names, which follow a rename) still fits the identifier limit."""
    return TableRef(
        ref.schema, _name(dialect, prefix + ref.name, dialect.max_identifier_length - 11)
    )


@dataclass
class _Attempt:
    """What a create/replace load has done so far: for its cleanup and its error message."""

    created: list[TableRef] = field(default_factory=list)
    loading: TableRef | None = None
    """The table whose rows are going in (named in the error when they are refused)."""


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
    early: EarlyLoad | None = None,
    rewritten: Set[TableRef] = frozenset(),
) -> tuple[LoadStats, VerifyResult]:
    """Load every planned table, add constraints, verify, and commit (or undo everything).

    With ``early``, the tables it loaded while the source was read keep their rows, except
    those in ``rewritten`` (changed in staging since), which load again from scratch.
    """
    if plan.load is not None and plan.load.mode in ("truncate", "append"):
        return _load_existing(plan, plan.load, tables, staging, dialect, conn, reporter)
    if not dialect.transactional_ddl:
        return _load_shadowed(
            plan, tables, staging, dialect, conn, reporter, replace, source_dialect
        )
    attempt = _Attempt()
    try:
        if early is not None and early.finish(staging, rewritten):
            done = _fill(
                plan, tables, tables, staging, dialect, conn, reporter, source_dialect, attempt,
                early=early,
            )  # fmt: skip
        else:
            _prepare_tables(plan, tables, dialect, conn, replace)
            done = _fill(
                plan, tables, tables, staging, dialect, conn, reporter, source_dialect, attempt
            )
        conn.commit()
        return done
    except BaseException as exc:
        if early is not None:
            early.abandon()  # its thread must be done with the connection first
        with contextlib.suppress(Exception):
            conn.rollback()
        error = _failure(dialect, exc, attempt.loading, [], "; nothing was committed")
        if error is None:
            raise
        raise error from None


def _prepare_tables(
    plan: Plan, tables: dict[TableRef, TargetTable], dialect: Dialect, conn: Any, replace: bool
) -> None:
    """Begin the load's transaction and drop the tables being replaced (DDL transactional)."""
    dialect.begin_load(conn)
    existing = check_target_free(dialect, conn, tables, replace)
    _drop(
        dialect, conn, [tables[t].ref for t in reversed(plan.tables) if tables[t].ref in existing]
    )


class EarlyLoad:
    """Copies rows into the target while the source is still read, on a worker thread.

    Extraction works in closure rounds, and a row, once staged, never changes (masking and
    keys set to NULL aside: runs with masks do not load early, and ``load`` copies a table
    whose keys were nulled again). So each round's new rows can go into the target while the
    next rounds read the source: the target's work (parsing, inserting) overlaps the source's
    instead of following it. Only where the whole load is one transaction, DDL included
    (``Dialect.loads_while_extracting``): nothing is visible before ``load`` commits, and a
    failure rolls everything back. Should anything go wrong here, the transaction is rolled
    back and ``load`` starts from scratch, so errors read as they do without loading early.
    """

    def __init__(
        self,
        plan: Plan,
        tables: dict[TableRef, TargetTable],
        staging: Staging,
        dialect: Dialect,
        conn: Any,
        *,
        replace: bool,
        source_dialect: str,
    ) -> None:
        self.plan, self.tables, self.dialect, self.conn = plan, tables, dialect, conn
        self.created: list[TableRef] = []
        self.rows: dict[TableRef, int] = {}
        """Rows copied per table so far."""
        self.seconds: dict[TableRef, float] = {}
        self.failed: BaseException | None = None
        self._rounds: queue.Queue[tuple[int, list[TableRef]] | None] = queue.Queue()
        self._stop = threading.Event()
        self._cursor = staging.cursor()
        self._staging = staging
        self._thread = threading.Thread(
            target=self._work, args=(replace, source_dialect), name="subsetter-load", daemon=True
        )
        self._thread.start()

    def round_staged(self, gen: int, refs: list[TableRef]) -> None:
        """Round ``gen``'s rows of ``refs`` are staged (``extract``'s ``on_round``)."""
        self._rounds.put((gen, [r for r in refs if r in self.tables]))

    def _work(self, replace: bool, source_dialect: str) -> None:
        try:
            _prepare_tables(self.plan, self.tables, self.dialect, self.conn, replace)
            _create_tables(
                self.plan, self.tables, self.dialect, self.conn, self.created, source_dialect
            )
            while (item := self._rounds.get()) is not None and not self._stop.is_set():
                gen, refs = item
                rows = self._staging.round_rows(gen, self._cursor, self._stop)
                for ref in refs:
                    if self._stop.is_set():
                        return
                    started = time.perf_counter()
                    copied = _copy_rows(
                        ref, self.tables[ref], rows, self.dialect, self.conn, NullReporter()
                    )
                    self.rows[ref] = self.rows.get(ref, 0) + copied
                    self.seconds[ref] = self.seconds.get(ref, 0.0) + time.perf_counter() - started
        except BaseException as exc:  # reported by load, which starts from scratch
            self.failed = exc

    def _join(self) -> None:
        self._rounds.put(None)
        self._thread.join()
        with contextlib.suppress(Exception):
            self._cursor.close()

    def finish(self, staging: Staging, rewritten: Set[TableRef]) -> bool:
        """Wait for the worker; True when its rows stand, else the target is rolled back.

        A table whose staged rows changed since (``rewritten``), or whose row count differs
        from staging's, is emptied so that ``load`` copies it whole.
        """
        self._join()
        if self.failed is not None:
            self.abandon()
            return False
        redo = [
            ref for ref in self.rows if ref in rewritten or self.rows[ref] != staging.count(ref)
        ]
        if redo:
            self.dialect.empty_tables(self.conn, [self.tables[r].ref for r in redo])
            for ref in redo:
                del self.rows[ref]
        return True

    def abandon(self) -> None:
        """Stop the worker and roll back what it did (the run failed or starts over)."""
        self._stop.set()
        self._join()
        with contextlib.suppress(Exception):
            self.conn.rollback()


def _load_shadowed(
    plan: Plan,
    tables: dict[TableRef, TargetTable],
    staging: Staging,
    dialect: Dialect,
    conn: Any,
    reporter: Reporter,
    replace: bool,
    source_dialect: str,
) -> tuple[LoadStats, VerifyResult]:
    """Create/replace where DDL commits: load shadow tables, then swap them in at once.

    The new tables are created, loaded, keyed and verified as ``_subsetter_new_<name>``. One
    ``Dialect.rename_tables_sql`` statement (MySQL's RENAME TABLE, atomic) then moves each
    previous table to ``_subsetter_old_<name>`` and each new one to its name; the previous
    ones are dropped after. Until the swap the previous tables are untouched, so a failure
    (a refused row, a lost connection, a signal) drops the shadow tables and leaves the
    target exactly as it was. Foreign keys between shadow tables follow the rename.
    """
    work = {ref: TargetTable(t.source, shadow_ref(dialect, t.ref, SHADOW_PREFIX), t.types)
            for ref, t in tables.items()}  # fmt: skip
    retired = {ref: shadow_ref(dialect, t.ref, RETIRED_PREFIX) for ref, t in tables.items()}
    attempt = _Attempt()
    existing: set[TableRef] = set()
    old: list[TableRef] = []  # the previous tables, under their retired names after the swap
    repoint: list[str] = []
    swapping = False
    try:
        dialect.begin_load(conn)
        existing = set(check_target_free(dialect, conn, tables, replace))
        old = [retired[t] for t in plan.tables if tables[t].ref in existing]
        # Leftovers of a run of this plan that was killed outright (no cleanup ran).
        _drop(dialect, conn, [work[t].ref for t in plan.tables] + list(retired.values()))
        done = _fill(plan, tables, work, staging, dialect, conn, reporter, source_dialect, attempt)
        replaced = [tables[t].ref for t in plan.tables if tables[t].ref in existing]
        repoint = dialect.repoint_foreign_keys_sql(conn, replaced)
        renames = [(tables[t].ref, retired[t]) for t in plan.tables if tables[t].ref in existing]
        renames += [(work[t].ref, tables[t].ref) for t in plan.tables]
        swapping = True
        dialect.execute_all(conn, dialect.rename_tables_sql(renames))
    except BaseException as exc:
        usable = _usable(dialect, conn)
        try:
            if swapping and usable is not None and _swapped(dialect, usable, work):
                _retire(dialect, usable, repoint, old, reporter)
                return done
            left = _drop_all(dialect, usable, attempt.created)
        finally:
            if usable is not None and usable is not conn:
                with contextlib.suppress(Exception):
                    usable.close()
        error = _failure(dialect, exc, attempt.loading, left, "; nothing was committed")
        if error is None:
            raise
        raise error from None
    _retire(dialect, conn, repoint, old, reporter)
    return done


def _retire(
    dialect: Dialect, conn: Any, repoint: list[str], old: list[TableRef], reporter: Reporter
) -> None:
    """After the swap: point other tables' keys at the new tables, drop the previous ones.

    Neither can undo the swap any more: what fails is said as a warning.
    """
    for statement in repoint:
        try:
            dialect.execute(conn, statement)
        except Exception as exc:
            if not dialect.is_driver_error(exc):
                raise
            reporter.warning(
                f"re-pointing a foreign key of another table at the new subset failed "
                f"({dialect.wrap_error(exc)}): {statement}"
            )
    left = _drop_all(dialect, conn, old)
    if left:
        reporter.warning(
            f"the previous table(s) {', '.join(str(r) for r in left)} could not be dropped after "
            "the new ones took their names: drop them by hand (the next run into this target "
            "drops them too)"
        )


def _fill(
    plan: Plan,
    tables: dict[TableRef, TargetTable],
    work: dict[TableRef, TargetTable],
    staging: Staging,
    dialect: Dialect,
    conn: Any,
    reporter: Reporter,
    source_dialect: str,
    attempt: _Attempt,
    early: EarlyLoad | None = None,
) -> tuple[LoadStats, VerifyResult]:
    """Create the tables under their ``work`` names, copy the rows, add keys and verify.

    Constraint and index names come from ``tables``, the names the tables end up with. With
    ``early`` (finished), the tables exist and the rows it copied are in.
    """
    stats = LoadStats()
    if early is None:
        _create_tables(plan, work, dialect, conn, attempt.created, source_dialect)
    else:
        attempt.created = list(early.created)
        stats.seconds.update(early.seconds)
    for ref in plan.tables:
        attempt.loading = tables[ref].ref
        started = time.perf_counter()
        if early is not None and ref in early.rows:
            stats.rows[ref] = early.rows[ref]
        else:
            stats.rows[ref] = _copy_rows(
                ref, work[ref], staging, dialect, conn, reporter, shown=tables[ref].ref
            )
        stats.seconds[ref] = stats.seconds.get(ref, 0.0) + time.perf_counter() - started
        reporter.table_loaded(str(tables[ref].ref), stats.rows[ref], stats.seconds[ref])
    attempt.loading = None
    enforced = _add_constraints(plan, work, tables, dialect, conn)
    checks = fk_checks(plan, work)
    # A foreign key the engine validated as it was added needs no second anti-join.
    result = verify_target(dialect, conn, [c for c in checks if c.label not in enforced])
    result.checked = len(checks)
    if not result.ok:
        raise IntegrityError(result.describe() + "; nothing was loaded")
    return stats, result


def _failure(
    dialect: Dialect,
    exc: BaseException,
    loading: TableRef | None,
    left: list[TableRef],
    outcome: str,
) -> BaseException | None:
    """The error to raise for a failed create/replace load; None to raise ``exc`` itself."""
    kept = ""
    if left:
        names = ", ".join(str(r) for r in left)
        kept = f"; the partly loaded table(s) {names} could not be dropped: drop them by hand"
    if isinstance(exc, SubsetterError):
        exc.args = (f"{exc}{kept}",) if kept else exc.args
        return None
    if not dialect.is_driver_error(exc):
        return None
    return _load_error(dialect, exc, loading, "", kept or outcome, retry=not left)


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


def _usable(dialect: Dialect, conn: Any) -> Any | None:
    """``conn`` rolled back, or a new connection where it died (killed, network gone).

    The new one gets the load's session settings (MySQL: no FK checks on DROP). None when no
    connection can be had.
    """
    with contextlib.suppress(Exception):
        conn.rollback()
    if dialect.is_alive(conn):
        return conn
    try:
        fresh = dialect.connect_retrying()
        dialect.begin_load(fresh)
    except Exception:
        return None
    return fresh


def _drop_all(dialect: Dialect, conn: Any | None, refs: Sequence[TableRef]) -> list[TableRef]:
    """Drop ``refs`` (last first), if they exist; return those that could not be dropped."""
    left = []
    for ref in reversed(refs):
        try:
            if conn is None:
                raise LoadError("no connection")
            dialect.execute(conn, dialect.drop_table_sql(ref))
        except Exception:
            left.append(ref)
    return left


def _swapped(dialect: Dialect, conn: Any, work: dict[TableRef, TargetTable]) -> bool:
    """Whether a rename that failed to answer went through (it is all or nothing)."""
    try:
        return not dialect.existing_tables(conn, [t.ref for t in work.values()])
    except Exception:
        return False


def _drop(dialect: Dialect, conn: Any, refs: Sequence[TableRef]) -> None:
    for ref in refs:
        dialect.execute(conn, dialect.drop_table_sql(ref))


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
    """The declared (not virtual) foreign keys between planned tables: (child, key) on target.

    Each is named by ``Dialect.foreign_key_name`` after the table it is created on.
    """
    out: list[tuple[TableRef, InlineForeignKey]] = []
    ordinal: dict[TableRef, int] = {}
    for fk in plan.upstream:
        if not _declares(fk, tables):
            continue
        child = tables[fk.child].ref
        ordinal[child] = ordinal.get(child, 0) + 1
        name = _name(dialect, dialect.foreign_key_name(child.name, fk.columns, ordinal[child]))
        out.append((child, (name, fk.columns, tables[fk.parent].ref, fk.ref_columns)))
    return out


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
    staging: Staging | StagedRound,
    dialect: Dialect,
    conn: Any,
    reporter: Reporter,
    blank: Sequence[str] = (),
    on_conflict: str = "error",
    key: Sequence[str] = (),
    shown: TableRef | None = None,
) -> int:
    """Copy a table's staged rows; ``blank`` columns go in as NULL (set later by UPDATE).

    Progress is reported under ``shown`` (the final name of a shadow table), else the table's.
    """
    converters = _converters(target, dialect)
    columns = target.source.column_names
    expected = staging.count(ref)
    name = str(shown or target.ref)
    reporter.progress(name, 0, expected)
    plain = not blank and on_conflict == "error"
    if plain and dialect.loads_arrow([c.type for c in target.source.columns], converters):
        batches = _counted(staging.read_arrow(ref), name, expected, reporter)
        with contextlib.suppress(ArrowUnfit):  # then row by row, below
            return dialect.load_arrow(conn, target.ref, columns, batches)
    blanked = {columns.index(c) for c in blank}
    try:
        return _insert_rows(ref, target, staging, dialect, conn, reporter, blanked, on_conflict,
                            key, name, expected)  # fmt: skip
    except ValueTooLarge as exc:
        raise LoadError(f"table {name}, {exc}") from None


def _insert_rows(
    ref: TableRef,
    target: TargetTable,
    staging: Staging | StagedRound,
    dialect: Dialect,
    conn: Any,
    reporter: Reporter,
    blanked: set[int],
    on_conflict: str,
    key: Sequence[str],
    name: str,
    expected: int,
) -> int:
    """The row path of ``_copy_rows``: batches of rows through the dialect's INSERT."""
    converters = _converters(target, dialect)
    columns = target.source.column_names
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
    plan: Plan,
    work: dict[TableRef, TargetTable],
    tables: dict[TableRef, TargetTable],
    dialect: Dialect,
    conn: Any,
) -> set[str]:
    """Add keys and indexes to the ``work`` tables, named after ``tables`` (their final names).

    Returns the foreign keys the engine checked as it added them.
    """
    enforced: set[str] = set()
    indexes = [
        dialect.create_index_sql(
            work[ref].ref, index, _name(dialect, f"{tables[ref].ref.name}_{index.name}")
        )
        for ref in plan.tables
        for index in tables[ref].source.indexes
    ]
    if dialect.can_alter_constraints:
        if dialect.foreign_keys_need_index:
            # Before the foreign keys, so the engine does not make its own index for one.
            dialect.execute_all(conn, indexes)
            indexes = []
        added = _add_keys(plan, work, tables, dialect, conn)
        if dialect.validates_added_foreign_keys:
            enforced = added
    dialect.execute_all(conn, indexes)
    for ref in plan.tables:
        for column in work[ref].source.columns:
            if column.autoincrement and column.type.kind == "integer":
                dialect.reset_autoincrement(conn, work[ref].ref, column.name)
    return enforced


def _add_keys(
    plan: Plan,
    work: dict[TableRef, TargetTable],
    tables: dict[TableRef, TargetTable],
    dialect: Dialect,
    conn: Any,
) -> set[str]:
    """Primary keys, unique keys, then foreign keys, by ALTER TABLE after the rows are in.

    Returns the labels of the foreign keys added.
    """
    statements = []
    for ref in plan.tables:
        target, source, final = work[ref].ref, work[ref].source, tables[ref].ref.name
        if source.primary_key and not dialect.primary_key_in_create:
            name = _name(dialect, f"{final}_pkey")
            statements.append(dialect.add_primary_key_sql(target, source.primary_key, name))
        for key in source.unique_keys:
            name = _name(dialect, f"{final}_{'_'.join(key)}_key")
            statements.append(dialect.add_unique_sql(target, key, name))
    if dialect.foreign_keys_need_index:
        statements += _foreign_key_indexes(plan, work, tables, dialect)
    for child, (name, columns, parent, ref_columns) in _declared_fks(plan, work, dialect):
        statements.append(dialect.add_foreign_key_sql(child, columns, parent, ref_columns, name))
    dialect.execute_all(conn, statements)
    return {str(fk) for fk in plan.upstream if _declares(fk, tables)}


def _foreign_key_indexes(
    plan: Plan,
    work: dict[TableRef, TargetTable],
    tables: dict[TableRef, TargetTable],
    dialect: Dialect,
) -> list[str]:
    """An index for each declared foreign key whose columns lead no key or index already.

    Named ``<table>_<columns>_fkey`` (after the final table name), as InnoDB would otherwise
    make one named after the constraint.
    """
    leading: set[tuple[TableRef, tuple[str, ...]]] = set()
    for ref in plan.tables:
        source = tables[ref].source
        for cols in (source.primary_key, *source.unique_keys, *(i.columns for i in source.indexes)):
            leading.update((ref, tuple(cols[:n])) for n in range(1, len(cols) + 1))
    statements = []
    for fk in plan.upstream:
        if not _declares(fk, tables) or (fk.child, fk.columns) in leading:
            continue
        leading.add((fk.child, fk.columns))
        name = _name(dialect, f"{tables[fk.child].ref.name}_{'_'.join(fk.columns)}_fkey")
        index = Index(name, fk.columns, False)
        statements.append(dialect.create_index_sql(work[fk.child].ref, index, name))
    return statements


def _name(dialect: Dialect, text: str, limit: int | None = None) -> str:
    """A constraint or index name that fits the engine's identifier limit, stable across runs."""
    limit = limit or dialect.max_identifier_length
    if len(text) <= limit:
        return text
    digest = hashlib.sha1(text.encode()).hexdigest()[:8]
    return f"{text[: limit - 9]}_{digest}"
