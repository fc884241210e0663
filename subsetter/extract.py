"""Stage 3: run the plan on the source and compute the closure in staging, to a fixpoint.

Round 0 stages the seed rows. Each later round (1) fetches the parents of the rows the previous
round added that are not staged yet, and (2) fetches the children of rows that started pulling
children in the previous round, along the plan's downstream foreign keys. Rows reached only as
parents never pull children, except through a relation the config marks ``follow: always``.
The loop ends when a round adds nothing: cycles end there too, because a row is staged once and
each row's parents and children are asked for once.

A relation with a ``limit`` fetches at most that many children per parent row: the source ranks
the children of the batch's parent keys with ``ROW_NUMBER() OVER (PARTITION BY key ORDER BY
...)`` (or the dialect's faster form) and only the first ones travel.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from subsetter.catalog import Catalog, ColumnType, ForeignKey, TableRef
from subsetter.dialects import Dialect
from subsetter.dialects.base import ArrowUnfit
from subsetter.errors import IntegrityError, SourceError, SubsetterError
from subsetter.plan import ChildLimit, Plan
from subsetter.reporting import Reporter
from subsetter.staging import Staging

Row = tuple[Any, ...]


@dataclass
class ExtractStats:
    """What extraction did: rounds, queries, and warnings for the report."""

    rounds: int = 0
    queries: int = 0
    warnings: list[str] = field(default_factory=list)
    rewritten: set[TableRef] = field(default_factory=set)
    """Tables whose staged rows changed after their round (keys set to NULL)."""


@dataclass(frozen=True)
class _Fetch:
    """One source query whose rows go into one staging table."""

    table: TableRef
    sql: str
    params: Sequence[Any]
    gen: int
    down: bool
    what: str
    number: int
    """Numbers the query (``Staging.add_rows``'s ``fetch``)."""
    depth: int = 0
    """Downward steps from a seed of the rows fetched (``Staging.add_rows``'s ``depth``)."""


_DONE = object()


class _SourceReader:
    """Runs key-batched SELECTs on the snapshot connections and stages what they return.

    With several connections (all in one snapshot), queries run in worker threads, one per
    connection, while this thread writes what they return into staging: the source works on
    the next queries while DuckDB takes the rows of the last ones. Only this thread touches
    staging, so "not staged yet" stays exact; a bounded queue keeps memory flat.
    """

    def __init__(
        self,
        dialect: Dialect,
        conns: Sequence[Any],
        catalog: Catalog,
        staging: Staging,
        reporter: Reporter,
    ) -> None:
        self.dialect, self.catalog, self.staging = dialect, catalog, staging
        self.conns = list(conns)
        self.reporter = reporter
        self.queries = 0
        self.staged: dict[TableRef, int] = {}
        self._arrow: dict[TableRef, bool] = {}

    def _use_arrow(self, ref: TableRef) -> bool:
        """Whether rows of ``ref`` can come as Arrow batches, with no Python object per value.

        Only for tables with a key: should a value not parse (``ArrowUnfit``), the query is
        run again through the row path, and only a key tells the rows staged twice apart.
        """
        if ref not in self._arrow:
            table = self.catalog.table(ref)
            types = [c.type for c in table.columns]
            converters = [self.dialect.source_converter(t) for t in types]
            self._arrow[ref] = table.has_key and self.dialect.reads_arrow(types, converters)
        return self._arrow[ref]

    def _count(self, table: TableRef, rows: int) -> None:
        """Count rows read from the source, for the progress of the extract stage."""
        self.staged[table] = self.staged.get(table, 0) + rows
        self.reporter.progress(str(table), self.staged[table], None)

    def seed(self, table: TableRef, sql: str, down: bool) -> _Fetch:
        self.queries += 1
        return _Fetch(table, sql, (), 0, down, f"the seed on {table}", self.queries)

    def by_keys(
        self,
        table: TableRef,
        columns: Sequence[str],
        keys: pa.RecordBatch,
        gen: int,
        down: bool,
        *,
        depth: int = 0,
        condition: str | None = None,
        limit: ChildLimit | None = None,
    ) -> _Fetch:
        """The query for the rows of ``table`` whose ``columns`` match one of ``keys``.

        ``condition`` (a polymorphic key's) must hold too; ``limit`` keeps the first N rows per
        key value.
        """
        spec = self.catalog.table(table)
        types: list[ColumnType] = [spec.column(c).type for c in columns]
        if limit is None:
            where = self.dialect.key_filter_sql(columns, keys.num_rows, types)
            if condition:
                where = f"{where} AND ({condition})"
            sql = f"{self.dialect.select_sql(spec)} WHERE {where}"
        else:
            order = limit.order_by or self.dialect.columns_sql(spec.identity)
            order += f", {self.dialect.columns_sql(spec.identity)}"  # ties break by key
            sql = self.dialect.capped_select_sql(
                spec, columns, keys.num_rows, types, condition, order, limit.limit
            )
        params = self.dialect.key_params(keys, types)
        self.queries += 1
        return _Fetch(table, sql, params, gen, down, f"reading {table}", self.queries, depth)

    def _read(self, conn: Any, fetch: _Fetch) -> Iterator[pa.Table | pa.RecordBatch]:
        """The rows of one query as Arrow batches: parsed as such where the table allows."""
        if self._use_arrow(fetch.table):
            schema = self.staging.arrow_schema(fetch.table)
            try:
                yield from self.dialect.stream_arrow(conn, fetch.sql, fetch.params, schema)
                return
            except ArrowUnfit:
                self._arrow[fetch.table] = False  # this table reads through rows from now on
        kinds = [c.type.kind for c in self.catalog.table(fetch.table).columns]
        size = self.staging.batch_size
        for rows in self.dialect.stream(conn, fetch.sql, fetch.params, size, kinds):
            batch = self.staging.to_arrow(fetch.table, rows)
            # The driver's values go now, not when the next batch replaces them: with a
            # 100 MB value that is 100 MB less while the batch is staged.
            rows.clear()
            yield batch

    def _store(self, fetch: _Fetch, rows: pa.Table | pa.RecordBatch) -> int:
        self._count(fetch.table, rows.num_rows)
        return self.staging.add_arrow(
            fetch.table, rows, fetch.gen, fetch.down, fetch.number, fetch.depth
        )

    def _failed(self, fetch: _Fetch, exc: BaseException) -> BaseException:
        if isinstance(exc, SubsetterError) or not self.dialect.is_driver_error(exc):
            return exc
        return SourceError(
            f"{fetch.what} failed on the source: {self.dialect.wrap_error(exc)}\n"
            f"  SQL: {fetch.sql[:500]}",
            transient=self.dialect.is_transient(exc),
        )

    def run(self, fetches: Iterable[_Fetch]) -> int:
        """Run the queries and stage their rows; return how many rows were new."""
        added = 0
        if len(self.conns) == 1:
            for fetch in fetches:
                try:
                    for rows in self._read(self.conns[0], fetch):
                        added += self._store(fetch, rows)
                except Exception as exc:
                    raise self._failed(fetch, exc) from None
        else:
            self._run_parallel(iter(fetches))
        return added + self.staging.settle()

    def _run_parallel(self, fetches: Iterator[_Fetch]) -> None:
        free: queue.Queue[Any] = queue.Queue()
        for conn in self.conns:
            free.put(conn)
        out: queue.Queue[tuple[_Fetch, Any]] = queue.Queue(maxsize=2 * len(self.conns))
        stop = threading.Event()

        def put(item: tuple[_Fetch, Any]) -> None:
            while not stop.is_set():
                try:
                    out.put(item, timeout=0.1)
                    return
                except queue.Full:
                    continue

        def work(fetch: _Fetch) -> None:
            conn = free.get()
            try:
                for rows in self._read(conn, fetch):
                    if stop.is_set():
                        return
                    put((fetch, rows))
                put((fetch, _DONE))
            except BaseException as exc:
                put((fetch, exc))
            finally:
                free.put(conn)

        running = 0
        with ThreadPoolExecutor(len(self.conns), thread_name_prefix="subsetter-read") as pool:
            try:
                while True:
                    while running < len(self.conns):
                        fetch = next(fetches, None)
                        if fetch is None:
                            break
                        pool.submit(work, fetch)
                        running += 1
                    if not running:
                        return
                    fetch, item = out.get()
                    if item is _DONE:
                        running -= 1
                    elif isinstance(item, BaseException):
                        raise self._failed(fetch, item) from None
                    else:
                        self._store(fetch, item)
            finally:
                stop.set()


def extract(
    plan: Plan,
    catalog: Catalog,
    dialect: Dialect,
    conn: Any,
    staging: Staging,
    reporter: Reporter,
    more_conns: Sequence[Any] = (),
    on_round: Callable[[int, list[TableRef]], None] | None = None,
) -> ExtractStats:
    """Stage the closure of the plan's seeds, reading the source inside its snapshot.

    ``more_conns`` are further connections in the same snapshot (``Dialect.join_snapshot``):
    queries then run on all of them at once. ``on_round(gen, tables)`` is called once the rows
    round ``gen`` adds (``_gen``) are all staged, with the tables that got some; later rounds
    never add rows to round ``gen``, and only change them as ``ExtractStats.rewritten`` says.
    """
    stats = ExtractStats()
    for ref in plan.tables:
        table = catalog.table(ref)
        staging.create(table, [dialect.source_converter(c.type) for c in table.columns])
    reader = _SourceReader(dialect, [conn, *more_conns], catalog, staging, reporter)
    for seed in plan.seeds:
        started = time.perf_counter()
        added = reader.run([reader.seed(seed.table, seed.sql, seed.children)])
        reporter.event(f"{seed.label}: {added} rows", seconds=time.perf_counter() - started)

    up_by_child: dict[TableRef, list[ForeignKey]] = {}
    for fk in plan.upstream:
        up_by_child.setdefault(fk.child, []).append(fk)
    down_by_parent: dict[TableRef, list[ForeignKey]] = {}
    for fk in plan.downstream:
        down_by_parent.setdefault(fk.parent, []).append(fk)

    always = set(plan.always)

    parts = 1 + len(more_conns)

    def round_fetches(gen: int, added: list[TableRef], down: list[TableRef]) -> Iterator[_Fetch]:
        # Generated lazily: each key batch is read from staging when a connection is free.
        for ref in added:
            for fk in up_by_child.get(ref, []):
                size = dialect.keys_per_query(len(fk.columns))
                for keys in _spread(staging.missing_parent_keys(fk, gen, size), parts):
                    yield reader.by_keys(fk.parent, fk.ref_columns, keys, gen + 1, down=False)
        for ref in dict.fromkeys(down + [t for t in added if t in down_by_parent]):
            for fk in down_by_parent.get(ref, []):
                if ref not in down and fk not in always:
                    continue
                size = dialect.keys_per_query(len(fk.columns))
                pulling = staging.keys_pulling_children(fk, gen, size, fk in always, plan.max_depth)
                for depth, keys in _spread_levels(pulling, parts):
                    yield reader.by_keys(
                        fk.child, fk.columns, keys, gen + 1, down=True, depth=depth + 1,
                        condition=fk.condition, limit=plan.limits.get(fk),
                    )  # fmt: skip

    gen = 0
    while True:
        added_tables, down_tables = staging.tables_with_rows(gen)
        if on_round is not None and added_tables:
            on_round(gen, added_tables)
        if not added_tables and not down_tables:
            break
        reader.run(round_fetches(gen, added_tables, down_tables))
        gen += 1
        reporter.event(f"closure round {gen} done")
    stats.rounds = gen
    stats.queries = reader.queries
    _settle_dangling_keys(plan, catalog, staging, stats)
    for fk in plan.nulled:
        nullable = [c for c in fk.columns if catalog.table(fk.child).column(c).nullable]
        staging.null_columns(fk.child, nullable)
        stats.rewritten.add(fk.child)
    return stats


_SPREAD_MIN = 1000
"""Keys in a last batch worth splitting between the connections (fewer: one query)."""


def _spread(batches: Iterator[pa.RecordBatch], parts: int) -> Iterator[pa.RecordBatch]:
    """The key batches, with the last one split into ``parts`` slices.

    With several connections, a relation's last batch would otherwise keep one of them busy
    while the others wait for the next round: 1,500 keys were one query on one connection,
    now two of 750 at once; 14,892 keys were 5,000 + 5,000 + 4,892, now the last two halves
    run side by side.
    """
    ahead = next(batches, None)
    while ahead is not None:
        batch, ahead = ahead, next(batches, None)
        if ahead is not None or parts < 2 or batch.num_rows < _SPREAD_MIN:
            yield batch
            continue
        step = -(-batch.num_rows // parts)
        for start in range(0, batch.num_rows, step):
            yield batch.slice(start, step)


def _spread_levels(
    batches: Iterator[tuple[int, pa.RecordBatch]], parts: int
) -> Iterator[tuple[int, pa.RecordBatch]]:
    """``_spread`` for key batches that come with their depth: the last of each depth."""
    for depth, group in itertools.groupby(batches, key=lambda item: item[0]):
        for keys in _spread((keys for _, keys in group), parts):
            yield depth, keys


def _settle_dangling_keys(
    plan: Plan, catalog: Catalog, staging: Staging, stats: ExtractStats
) -> None:
    """Keys whose parent row does not exist in the source: NULL them, or fail if NOT NULL.

    Declared foreign keys cannot dangle, but virtual ones (and unenforced MySQL ones) can.
    """
    for fk in plan.upstream:
        missing = staging.unresolved(fk)
        if not missing:
            continue
        child = catalog.table(fk.child)
        nullable = [c for c in fk.columns if child.column(c).nullable]
        if not nullable:
            raise IntegrityError(
                f"{missing} row(s) of {fk.child} reference rows of {fk.parent} that do not exist "
                f"in the source, through {fk}; the columns are NOT NULL, so the rows cannot be "
                "copied intact. Fix the data, or remove that virtual foreign key."
            )
        staging.null_columns(fk.child, nullable, only_unresolved=fk)
        stats.rewritten.add(fk.child)
        stats.warnings.append(
            f"{missing} row(s) of {fk.child} point at missing rows of {fk.parent} through {fk}: "
            "written as NULL"
        )
