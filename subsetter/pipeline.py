"""Runs the stages in order; owns the connections, the staging file and their cleanup.

``run`` is what ``subset run`` calls: reflect -> plan -> extract -> load -> verify. The source is
only ever read, inside one read-only snapshot; the target is refused when it is the source.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import itertools
import os
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from subsetter.audit import SAMPLE_ROWS, AuditResult, Samples, audit_config, suggest_masks
from subsetter.budget import budget_warnings, check_budget
from subsetter.catalog import Catalog, TableRef
from subsetter.config import Config, LoadMode, OnConflict, resolve_file_url
from subsetter.diagram import render_diagram
from subsetter.dialects import Dialect, dialect_for
from subsetter.dialects.base import retry_transient
from subsetter.errors import (
    ConfigError,
    ConfirmationNeeded,
    SourceError,
    SubsetterError,
    TargetError,
)
from subsetter.estimate import Estimates, row_bytes
from subsetter.estimate import estimate as estimate_sizes
from subsetter.explain import Step, explain_row
from subsetter.extract import ExtractStats, extract
from subsetter.init import starter_config
from subsetter.load import (
    LEFTOVER_PREFIXES,
    EarlyLoad,
    LoadStats,
    TargetTable,
    check_target_free,
    existing_schema,
    fk_checks,
    load,
    map_tables,
    type_notes,
)
from subsetter.mask import mask, plan_masks
from subsetter.plan import Plan, build_plan, plan_load
from subsetter.reflect import reflect_source
from subsetter.render import cycle_entries, load_entry, plan_document, render_plan
from subsetter.reporting import NullReporter, Reporter
from subsetter.staging import KeptStaging, Staging
from subsetter.verify import VerifyResult, verify_target


@dataclass(frozen=True)
class RunOptions:
    """How ``run`` should treat the target and staging."""

    target: str | None = None
    """Name of a target in the config."""
    target_url: str | None = None
    """A URL that overrides ``target``."""
    replace: bool = False
    """The same as ``mode="replace"`` (the ``--replace`` flag)."""
    mode: LoadMode | None = None
    """Overrides the target's ``mode`` in the config (default there: create)."""
    on_conflict: OnConflict | None = None
    """Overrides the target's ``on_conflict`` (append only)."""
    allow_disabling_fk_checks: bool | None = None
    """Overrides the target's ``allow_disabling_fk_checks``."""
    dry_run: bool = False
    keep_staging: str | None = None
    batch_size: int = 10_000
    allow_random_masks: bool = False
    """Mask with a random key when the config has no mask_key (output differs every run)."""
    readers: int = 2
    """Source connections reading at once, in one shared snapshot (where the engine can)."""
    yes: bool = False
    """Replace or truncate even where the target holds tables the config does not name."""


REPORT_VERSION = 1
"""Bumped when a key of the ``--report`` document changes meaning or goes away."""


@dataclass
class RunResult:
    """What a run did: the plan, rows per table, timings, verification. JSON-ready via to_dict."""

    plan: Plan
    source: str
    target: str
    dry_run: bool = False
    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    table_seconds: dict[str, float] = field(default_factory=dict)
    table_bytes: dict[str, int] = field(default_factory=dict)
    """Estimated bytes per loaded table: rows times the source's average row size."""
    verification: VerifyResult | None = None
    warnings: list[str] = field(default_factory=list)
    type_notes: list[str] = field(default_factory=list)
    rounds: int = 0
    queries: int = 0
    config_sha256: str = ""
    config_path: str | None = None
    started_at: str = ""
    finished_at: str = ""
    masked: dict[str, str] = field(default_factory=dict)
    """Every masked column (``table.column``) and its rule; key-group members say whose."""

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    def to_dict(self) -> dict[str, Any]:
        """The ``--report`` JSON document (its JSON Schema: docs/report.schema.json)."""
        return {
            "report_version": REPORT_VERSION,
            "subsetter_version": _version(),
            "status": "dry_run" if self.dry_run else "ok",
            "exit_code": 0,
            "config": {"path": self.config_path, "sha256": self.config_sha256},
            "source": self.source,
            "target": self.target,
            "dry_run": self.dry_run,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "tables": {
                name: {
                    "rows": n,
                    "bytes": self.table_bytes.get(name, 0),
                    "seconds": round(self.table_seconds.get(name, 0.0), 4),
                }
                for name, n in sorted(self.rows.items())
            },
            "total_rows": self.total_rows,
            "total_bytes": sum(self.table_bytes.values()),
            "stages": {k: round(v, 4) for k, v in self.seconds.items()},
            "closure_rounds": self.rounds,
            "source_queries": self.queries,
            "cycles": cycle_entries(self.plan),
            "relations": [
                {"relation": str(r.fk), "follow": r.follow, "reason": r.reason}
                for r in sorted(self.plan.relations, key=lambda r: str(r.fk))
            ],
            "load": None if self.plan.load is None else load_entry(self.plan),
            "verification": None
            if self.verification is None
            else {
                "ok": self.verification.ok,
                "foreign_keys_checked": self.verification.checked,
                "orphans": self.verification.orphans,
            },
            "warnings": self.warnings,
            "type_notes": self.type_notes,
            "masked": self.masked,
        }


def failure_report(config: Config | None, error: BaseException, code: int) -> dict[str, Any]:
    """The ``--report`` document of a run that stopped: what failed and the exit code."""
    return {
        "report_version": REPORT_VERSION,
        "subsetter_version": _version(),
        "status": "failed",
        "exit_code": code,
        "error": str(error) or type(error).__name__,
        "error_type": type(error).__name__,
        "config": {
            "path": str(config.path) if config and config.path else None,
            "sha256": config.sha256 if config else None,
        },
        "finished_at": _now(),
    }


def _version() -> str:
    from subsetter import __version__

    return __version__


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class TargetPolicy:
    """How a run treats its target: mode, on_conflict, and whether checks may be turned off."""

    mode: LoadMode
    on_conflict: OnConflict
    allow_disabling_fk_checks: bool

    @property
    def existing(self) -> bool:
        """Whether the run loads into tables that exist already (truncate, append)."""
        return self.mode in ("truncate", "append")


def target_policy(config: Config, options: RunOptions) -> TargetPolicy:
    """The target's mode and conflict handling: options first, then the config's target."""
    named = config.targets.get(options.target) if options.target else None
    if options.replace and options.mode not in (None, "replace"):
        raise ConfigError(f"--replace and --mode {options.mode} contradict each other; pick one")
    mode: LoadMode = (
        options.mode
        or ("replace" if options.replace else None)
        or (named.mode if named else "create")
    )
    on_conflict: OnConflict = options.on_conflict or (named.on_conflict if named else "error")
    if on_conflict != "error" and mode != "append":
        raise ConfigError(f"on_conflict {on_conflict} only applies to mode append (mode is {mode})")
    allow = options.allow_disabling_fk_checks
    if allow is None:
        allow = named.allow_disabling_fk_checks if named else False
    return TargetPolicy(mode, on_conflict, allow)


def with_load_plan(
    plan: Plan,
    catalog: Catalog,
    tables: dict[TableRef, TargetTable],
    tgt: Dialect,
    policy: TargetPolicy,
    target_catalog: Catalog | None,
) -> Plan:
    """The plan with its LoadPlan: the target's keys decide the order and cycle strategies."""
    if target_catalog is not None:
        fks, described = existing_schema(plan, tables, target_catalog, tgt)
    else:
        fks = [fk for fk in plan.upstream if not fk.virtual]
        described = {ref: catalog.table(ref) for ref in plan.tables}
    how = plan_load(plan, fks, described, tgt, policy.mode, policy.on_conflict,
                    policy.allow_disabling_fk_checks)  # fmt: skip
    return replace(plan, load=how)


def _reflect_target(
    tgt: Dialect, policy: TargetPolicy, tables: dict[TableRef, TargetTable]
) -> Catalog | None:
    """The existing target's catalog, for truncate and append (None for the other modes).

    Reads the target's default schema and every other schema the mapping names (a source
    table outside the source's default schema keeps its schema on the target), so keys
    between schemas are known too.
    """
    if not policy.existing:
        return None
    if not tgt.exists():
        raise TargetError(
            f"the target {tgt.describe()} does not exist; mode {policy.mode} loads into "
            "existing tables (use mode create to make them)"
        )
    catalog = tgt.reflect(None)
    named = {t.ref.schema for t in tables.values()} - {None, catalog.default_schema}
    if not named:
        return catalog
    more = tgt.reflect(sorted(s for s in named if s is not None))
    return Catalog(
        {**catalog.tables, **more.tables},
        catalog.foreign_keys + more.foreign_keys,
        catalog.default_schema,
        catalog.dialect,
    )


@contextlib.contextmanager
def _timed(seconds: dict[str, float], name: str, reporter: Reporter) -> Iterator[None]:
    reporter.stage(name)
    started = time.perf_counter()
    try:
        yield
    finally:
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started


def _freeze_heap() -> bool:
    """Move every object alive now (modules, the catalog, the plan) out of the GC's full scans.

    Rows pass through short-lived containers by the hundred thousand, which set off full
    collections of the cyclic garbage collector; each one walked the ~100,000 objects the
    imports and reflection left behind: 40-60 ms each, 0.15-0.25 s of CPU in a TPC-H SF1 run,
    holding the GIL the reader threads need. Frozen objects are never collected, so the run
    unfreezes them when it ends (``gc.unfreeze``). Returns False when the heap was frozen
    already (by the caller), which the run then leaves as it is.
    """
    if gc.get_freeze_count():
        return False
    gc.freeze()
    return True


def _close(conn: Any) -> None:
    with contextlib.suppress(Exception):
        conn.close()


def source_dialect(config: Config) -> Dialect:
    return dialect_for(config.source_url, config.locate("source", "url").rstrip(": "))


def target_dialect(config: Config, options: RunOptions) -> Dialect:
    if options.target_url:
        return dialect_for(config.resolve_url(options.target_url), "--target-url")
    if not options.target:
        raise ConfigError(
            "no target: pass --target NAME (one of the config's targets) or --target-url"
        )
    return dialect_for(
        config.target_url(options.target), config.locate("targets", options.target).rstrip(": ")
    )


def plan_subset(config: Config) -> tuple[Plan, Catalog]:
    """Reflect the source and build the plan; moves no data."""
    dialect = source_dialect(config)
    catalog = reflect_source(dialect, config)
    return build_plan(catalog, config, dialect), catalog


@dataclass(frozen=True)
class PlanResult:
    """What ``plan`` found: the Plan, the catalog it was built from, and expected sizes."""

    plan: Plan
    catalog: Catalog
    estimates: Estimates | None = None
    """Expected rows and bytes (None when ``estimate=False``)."""
    type_notes: list[str] | None = None
    """How the target would create columns whose type changes (None without a target)."""

    def document(self) -> dict[str, Any]:
        """The plan as plain data: what ``subset plan --format json|yaml`` prints."""
        return plan_document(self.plan, self.estimates, self.type_notes)

    def render(self, fmt: str = "text") -> str:
        """The plan as ``text``, ``json`` or ``yaml``, stable and sorted for review."""
        return render_plan(self.document(), fmt)

    def diagram(self, fmt: str = "mermaid", collapse_passthrough: bool = True) -> str:
        """The plan's foreign-key graph as ``mermaid`` or ``dot`` (``subset graph``)."""
        return render_diagram(self.plan, fmt, collapse_passthrough)


def plan(config: Config, options: RunOptions | None = None, *, estimate: bool = True) -> PlanResult:
    """Reflect the source, build the plan and estimate its size; moves no data.

    Estimating reads the source's statistics and counts small tables and seed conditions; it
    never scans a large table. With ``options`` naming a target, the type mapping is added
    (without connecting to the target).
    """
    src = source_dialect(config)
    catalog = reflect_source(src, config)
    made = build_plan(catalog, config, src)
    budget_notes: list[str] = []
    estimates = None
    if estimate:
        conn = src.connect(read_only=True)
        try:
            estimates = estimate_sizes(made, catalog, src, conn, config.budget.warn_percent)
        finally:
            _close(conn)
        budget_notes = budget_warnings(config, catalog, estimates)
        estimates = replace(estimates, warnings=estimates.warnings + tuple(budget_notes))
    notes = None
    if options is not None and (options.target or options.target_url):
        made = plan_for_target(config, options, made, catalog)
        notes = type_mapping(config, options, made, catalog)
    return PlanResult(made, catalog, estimates, notes)


def explain(config: Config, staging_path: str | Path, table: str, key: Sequence[str]) -> list[Step]:
    """Why a row is in a subset: the chain from a seed row, read from a kept staging file."""
    made = plan(config, estimate=False)
    ref = made.catalog.resolve(table, "")
    staging = KeptStaging(staging_path)
    try:
        return explain_row(made.plan, made.catalog, staging, ref, key)
    finally:
        staging.close()


def init_config(
    source_url: str, schemas: list[str] | None = None, out_dir: str | Path = "."
) -> str:
    """A commented starter config for ``source_url`` (``subset init``); file paths relative
    to ``out_dir``, where the config will be written."""
    dialect = dialect_for(resolve_file_url(source_url, Path.cwd()), "--source")
    catalog = dialect.reflect(schemas)
    masks = suggest_masks(catalog, sample_source(dialect, catalog))
    return starter_config(dialect, catalog, schemas, Path(out_dir), masks)


def type_mapping(config: Config, options: RunOptions, plan: Plan, catalog: Catalog) -> list[str]:
    """How the target would create each column whose type changes meaning (no connection)."""
    return type_notes(map_tables(plan, catalog, target_dialect(config, options)))


def plan_for_target(config: Config, options: RunOptions, plan: Plan, catalog: Catalog) -> Plan:
    """The plan with how it would load into the chosen target (its order, cycle strategies).

    For truncate and append this reads the target's schema (read only); raises PlanError when a
    cycle cannot be loaded there.
    """
    tgt = target_dialect(config, options)
    policy = target_policy(config, options)
    tables = map_tables(plan, catalog, tgt)
    return with_load_plan(plan, catalog, tables, tgt, policy, _reflect_target(tgt, policy, tables))


def refuse_protected(config: Config, options: RunOptions) -> None:
    """Stop before connecting when the chosen target is marked ``protected: true``."""
    if options.target_url or not options.target or options.dry_run:
        return
    named = config.targets.get(options.target)
    if named is not None and named.protected:
        raise TargetError(
            f"{config.locate('targets', options.target, 'protected')}the target "
            f'"{options.target}" is protected: subsetter never writes to it. Choose another '
            "target (remove protected: true only if this database may receive subsets)."
        )


def refuse_protected_behind(config: Config, options: RunOptions, tgt: Dialect, conn: Any) -> None:
    """Stop when the connected target is a ``protected: true`` target reached by another URL.

    ``--target-url`` (or another target's URL) may spell a protected database differently
    (a host alias, the default port, a relative path): like the source check, this compares
    what the databases say about themselves. A protected server that does not answer is not
    the one connected to.
    """
    if options.dry_run:
        return
    mine = tgt.database_identity(conn)
    for name, named in sorted(config.targets.items()):
        if not named.protected or name == options.target:
            continue
        try:
            other = dialect_for(
                config.target_url(name), config.locate("targets", name).rstrip(": ")
            )
        except SubsetterError:
            continue  # an engine this install cannot reach: not the connected database
        if other.name == tgt.name and other.identity_if_reachable() == mine:
            where = config.locate("targets", name, "protected").rstrip(": ")
            raise TargetError(
                f'the target {tgt.describe()} is the protected target "{name}" ({where}) '
                "under another URL: subsetter never writes to it. Choose another target."
            )


def confirm_destructive(
    tgt: Dialect, conn: Any, ours: set[TableRef], mode: LoadMode, options: RunOptions
) -> None:
    """Ask for ``--yes`` before replacing or emptying tables in a database that holds others.

    A target holding tables the config does not name may be somebody's real database (a
    mistyped URL, the wrong named target); dropping or emptying the subset's tables there is
    what a run in CI must not do unasked.
    """
    if options.yes or mode not in ("replace", "truncate"):
        return
    # Shadow tables a killed run left behind are subsetter's own: the run drops them.
    present = {t for t in tgt.all_tables(conn) if not t.name.startswith(LEFTOVER_PREFIXES)}
    touched = ours & present
    others = sorted(present - ours)
    if not touched or not others:
        return
    shown = ", ".join(str(t) for t in others[:5]) + (", ..." if len(others) > 5 else "")
    action = "drop and recreate" if mode == "replace" else "empty"
    raise ConfirmationNeeded(
        f"the target {tgt.describe()} holds {len(others)} table(s) the config does not name "
        f"({shown}); mode {mode} would {action} {len(touched)} table(s) of a database that "
        "looks in use. Pass --yes if this is the right target."
    )


def refuse_same_database(
    source: Dialect, source_conn: Any, target: Dialect, target_conn: Any
) -> None:
    """Stop when the target is the source, however the two URLs are spelled."""
    if source.database_identity(source_conn) == target.database_identity(target_conn):
        raise TargetError(
            f"the target {target.describe()} is the source database; "
            "subsetter never writes to the source. Choose another target."
        )


def _refuse_staging_over(
    path: str, src: Dialect, source_conn: Any, tgt: Dialect, target_conn: Any
) -> None:
    """--keep-staging replaces its file: never let that file be the source or the target."""
    kept = ("file", os.path.realpath(path))
    if kept in (src.database_identity(source_conn), tgt.database_identity(target_conn)):
        raise ConfigError(
            f"--keep-staging {path} is the source or target database; choose another file"
        )


def _snapshot_readers(src: Dialect, conn: Any, readers: int) -> list[Any]:
    """Further source connections that see ``conn``'s snapshot (none where it cannot be shared)."""
    if readers < 2:
        return []
    snapshot = src.share_snapshot(conn)
    if snapshot is None:
        return []
    conns: list[Any] = []
    try:
        for _ in range(readers - 1):
            conns.append(src.connect_retrying(read_only=True))
            src.join_snapshot(conns[-1], snapshot)
    except BaseException as exc:
        for extra in conns:
            _close(extra)
        if isinstance(exc, SubsetterError) or not src.is_driver_error(exc):
            raise
        raise SourceError(
            f"joining the read snapshot on {src.describe()} failed: {src.wrap_error(exc)}",
            transient=src.is_transient(exc),
        ) from None
    return conns


def run(config: Config, options: RunOptions, reporter: Reporter | None = None) -> RunResult:
    """Cut the subset the config describes and load it into the chosen target.

    A transient failure (a lost connection) while extracting starts the extraction again from
    a new snapshot; while loading, it loads the staged rows again through a new connection.
    Both are retried ``retry_delays`` times, and each retry is reported.
    """
    reporter = reporter or NullReporter()
    started_at = _now()
    seconds: dict[str, float] = {}
    src = source_dialect(config)
    tgt = target_dialect(config, options)
    refuse_protected(config, options)
    policy = target_policy(config, options)
    src.notify = tgt.notify = reporter.warning
    source_conn = src.connect_retrying(read_only=True)
    target_conn: Any = None
    more_conns: list[Any] = []
    staging: Staging | None = None
    early: EarlyLoad | None = None
    finished = False
    frozen = False

    def extract_once(attempt: int) -> tuple[ExtractStats, dict[Any, float]]:
        nonlocal source_conn, staging, more_conns, early
        for conn in more_conns:
            _close(conn)
        more_conns = []
        if attempt > 1:  # a snapshot cannot be resumed: start again from a new one
            if early is not None:  # and load after extracting, from scratch
                early.abandon()
                early = None
            _close(source_conn)
            if staging is not None:
                staging.close(discard=True)
            source_conn = src.connect_retrying(read_only=True)
        staging = Staging(options.keep_staging, options.batch_size)
        _begin_snapshot(src, source_conn)
        more_conns = _snapshot_readers(src, source_conn, options.readers)
        if attempt == 1 and masks.empty and not policy.existing and tgt.loads_while_extracting:
            early = EarlyLoad(
                plan, tables, staging, tgt, target_conn,
                replace=replacing, source_dialect=catalog.dialect,
            )  # fmt: skip
        on_round = early.round_staged if early is not None else None
        stats = extract(plan, catalog, src, source_conn, staging, reporter, more_conns, on_round)
        per_row = _bytes_per_row(plan, catalog, src, source_conn)
        _check_budget(config, catalog, plan, staging, per_row)
        return stats, per_row

    def load_once(attempt: int) -> tuple[LoadStats, VerifyResult]:
        nonlocal target_conn, early
        assert staging is not None
        started, early = early, None  # used once: a retry loads from scratch
        if started is not None and attempt == 1:
            pass  # busy since extraction began; load sees whether it still works
        elif attempt > 1 or not tgt.is_alive(target_conn):
            _close(target_conn)  # closed by the server while the source was read, or lost
            target_conn = tgt.connect_retrying()
        return load(
            plan, tables, staging, tgt, target_conn, reporter,
            replace=replacing, source_dialect=catalog.dialect,
            early=started, rewritten=stats.rewritten,
        )  # fmt: skip

    try:
        with _timed(seconds, "reflect", reporter):
            catalog = reflect_source(src, config)
        with _timed(seconds, "plan", reporter):
            plan = build_plan(catalog, config, src)
            tables = map_tables(plan, catalog, tgt)
            # Before the target connection: a DuckDB file takes one connection configuration
            # at a time, and reflecting opens its own.
            target_catalog = _reflect_target(tgt, policy, tables)
            plan = with_load_plan(plan, catalog, tables, tgt, policy, target_catalog)
            # A dry run checks every rule but moves no data: it needs no key.
            masks = plan_masks(
                catalog, plan, config, options.allow_random_masks, need_key=not options.dry_run
            )
        # A dry run against a database file that does not exist yet must not create it.
        if not (options.dry_run and not tgt.exists()):
            target_conn = tgt.connect_retrying()
            refuse_same_database(src, source_conn, tgt, target_conn)
            refuse_protected_behind(config, options, tgt, target_conn)
            if options.keep_staging:
                _refuse_staging_over(options.keep_staging, src, source_conn, tgt, target_conn)
        result = RunResult(plan, src.describe(), tgt.describe(), dry_run=options.dry_run)
        result.started_at = started_at
        result.config_sha256 = config.sha256
        result.config_path = str(config.path) if config.path else None
        result.type_notes = type_notes(tables)
        result.masked = masks.masked()
        if masks.random_key:
            result.warnings.append(
                "no mask_key: masking with a random key (output differs per run)"
            )
            reporter.warning(result.warnings[-1])
        replacing = policy.mode == "replace"
        if target_conn is not None and not policy.existing:
            # Fail before extracting; load checks again in its transaction.
            check_target_free(tgt, target_conn, tables, replacing)
        if options.dry_run:
            result.seconds = seconds
            return result
        ours = {t.ref for t in tables.values()}
        confirm_destructive(tgt, target_conn, ours, policy.mode, options)
        frozen = _freeze_heap()
        with _timed(seconds, "extract", reporter):
            stats, per_row = retry_transient(
                src.retry_delays, reporter.warning, "extracting again", extract_once
            )
        _close(source_conn)
        for conn in more_conns:
            _close(conn)
        result.warnings += stats.warnings
        for warning in stats.warnings:
            reporter.warning(warning)
        assert staging is not None  # extract_once made it
        if not masks.empty:  # before load: the target never sees an original masked value
            with _timed(seconds, "mask", reporter):
                mask(masks, staging, reporter)
        with _timed(seconds, "load", reporter):
            loaded, verification = retry_transient(
                tgt.retry_delays, reporter.warning, "loading again", load_once
            )
        result.rows = {str(tables[ref].ref): n for ref, n in loaded.rows.items()}
        result.table_seconds = {str(tables[ref].ref): s for ref, s in loaded.seconds.items()}
        result.table_bytes = {
            str(tables[ref].ref): round(n * per_row[ref]) for ref, n in loaded.rows.items()
        }
        result.verification = verification
        result.rounds, result.queries = stats.rounds, stats.queries
        result.seconds = seconds
        result.finished_at = _now()
        finished = True
        return result
    finally:
        if early is not None:  # before the connection and staging it uses close
            early.abandon()
        if frozen:
            gc.unfreeze()
        _close(source_conn)
        for conn in more_conns:
            _close(conn)
        if target_conn is not None:
            _close(target_conn)
        if staging is not None:
            staging.close(discard=not finished)


def _bytes_per_row(plan: Plan, catalog: Catalog, src: Dialect, conn: Any) -> dict[Any, float]:
    """Average row size per table: the source's statistics, else the column types' widths."""
    try:
        stats = src.table_stats(conn, plan.tables)
    except Exception as exc:  # statistics only size the report: never fail a run over them
        if not src.is_driver_error(exc):
            raise
        stats = {}
    out: dict[Any, float] = {}
    for ref in plan.tables:
        known = stats.get(ref)
        if known and known.rows and known.bytes:
            out[ref] = known.bytes / known.rows
        else:
            out[ref] = float(row_bytes(catalog, ref))
    return out


def _check_budget(
    config: Config, catalog: Catalog, plan: Plan, staging: Staging, per_row: dict[Any, float]
) -> None:
    """Stop before loading when the staged subset exceeds ``budget:`` (BudgetError, exit 4)."""
    budget = config.budget
    if budget.max_rows is None and budget.max_bytes is None and not budget.tables:
        return
    rows = {ref: staging.count(ref) for ref in plan.tables}
    check_budget(config, catalog, plan, rows, per_row)


def _begin_snapshot(src: Dialect, conn: Any) -> None:
    try:
        src.begin_snapshot(conn)
    except Exception as exc:
        if not src.is_driver_error(exc):
            raise
        raise SourceError(
            f"starting the read snapshot on {src.describe()} failed: {src.wrap_error(exc)}",
            transient=src.is_transient(exc),
        ) from None


def verify(config: Config, options: RunOptions) -> VerifyResult:
    """Check an already loaded target: every foreign key of the subset's tables resolves."""
    plan, catalog = plan_subset(config)
    tgt = target_dialect(config, options)
    tables = map_tables(plan, catalog, tgt)
    conn = tgt.connect_retrying(read_only=True)  # verifying never creates or changes the target
    try:
        present = set(tgt.existing_tables(conn, [t.ref for t in tables.values()]))
        checks = [c for c in fk_checks(plan, tables) if c.child in present and c.parent in present]
        if not present:
            raise TargetError(f"the target {tgt.describe()} holds none of the subset's tables")
        return verify_target(tgt, conn, checks)
    except SubsetterError:
        raise
    except Exception as exc:
        if tgt.is_driver_error(exc):
            raise TargetError(f"verifying {tgt.describe()} failed: {tgt.wrap_error(exc)}") from None
        raise
    finally:
        _close(conn)


def audit(config: Config, sample_rows: int = SAMPLE_ROWS) -> AuditResult:
    """List the source's personal-looking columns and whether the config masks each one.

    Reads the schema and at most ``sample_rows`` rows per table (``LIMIT``, never a full scan),
    inside one read-only snapshot.
    """
    dialect = source_dialect(config)
    catalog = reflect_source(dialect, config)
    samples = sample_source(dialect, catalog, sample_rows)
    return audit_config(config, catalog, samples, dialect.describe(), sample_rows)


def sample_source(dialect: Dialect, catalog: Catalog, sample_rows: int = SAMPLE_ROWS) -> Samples:
    """At most ``sample_rows`` rows of every table, for the personal-data detector."""
    conn = dialect.connect(read_only=True)
    samples: dict[TableRef, dict[str, list[Any]]] = {}
    try:
        dialect.begin_snapshot(conn)
        for ref, table in catalog.tables.items():
            sql = f"{dialect.select_sql(table)} {dialect.limit_sql(sample_rows)}"
            # Batches are sized by bytes: the sample may take several. Closed here, while
            # the connection is still open, not whenever the generator is collected.
            batches = dialect.stream(conn, sql, [], sample_rows)
            try:
                rows = list(itertools.islice(itertools.chain.from_iterable(batches), sample_rows))
            finally:
                if isinstance(batches, Generator):
                    batches.close()
            samples[ref] = {c: [r[i] for r in rows] for i, c in enumerate(table.column_names)}
    except SubsetterError:
        raise
    except Exception as exc:
        if not dialect.is_driver_error(exc):
            raise
        raise SourceError(
            f"sampling {dialect.describe()} failed: {dialect.wrap_error(exc)}"
        ) from None
    finally:
        _close(conn)
    return samples
