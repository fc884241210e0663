"""The DuckDB staging store: every subset row passes through here between source and target.

One staging table per source table, with positional columns ``c0..cN`` typed from the catalog,
plus bookkeeping columns: ``_gen``, the closure round that added the row (its parents are
fetched in the next round), ``_dgen``, the round in which the row started pulling its
children (NULL for rows that are in only as somebody's parent), and ``_depth``, the downward
steps from a seed row (for ``max_depth``). Set operations ("keys not yet
staged") run in DuckDB, so no Python loop ever walks the subset row by row to decide anything.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pyarrow as pa

from subsetter.catalog import ColumnType, ForeignKey, Table, TableRef
from subsetter.errors import ConfigError, SourceError, StagingError

Row = tuple[Any, ...]
_T = TypeVar("_T")
Converter = Callable[[Any], Any]


@dataclass(frozen=True)
class StagedColumn:
    """How one source column is held in staging."""

    sql_type: str
    arrow_type: pa.DataType
    to_staging: Converter | None


def staged_column(ctype: ColumnType) -> StagedColumn:
    """Pick the DuckDB type that holds every value of ``ctype`` without loss."""
    kind = ctype.kind
    if kind in {"integer", "year"}:
        return StagedColumn("BIGINT", pa.int64(), _to_int)
    if kind == "decimal" and ctype.precision and ctype.precision <= 38:
        p, s = ctype.precision, ctype.scale or 0
        return StagedColumn(f"DECIMAL({p}, {s})", pa.decimal128(p, s), None)
    if kind == "float":
        return StagedColumn("DOUBLE", pa.float64(), None)
    if kind == "boolean":
        return StagedColumn("BOOLEAN", pa.bool_(), _to_bool)
    if kind == "date":
        return StagedColumn("DATE", pa.date32(), _to_date)
    if kind == "time":
        return StagedColumn("TIME", pa.time64("us"), None)
    if kind == "timestamp":
        return StagedColumn("TIMESTAMP", pa.timestamp("us"), None)
    if kind == "timestamptz":
        return StagedColumn("TIMESTAMPTZ", pa.timestamp("us", tz="UTC"), None)
    if kind == "interval":
        return StagedColumn("INTERVAL", pa.month_day_nano_interval(), None)
    if kind == "binary":
        return StagedColumn("BLOB", pa.binary(), _to_bytes)
    if kind in {"json", "array"}:
        return StagedColumn("VARCHAR", pa.string(), _to_json_text)
    return StagedColumn("VARCHAR", pa.string(), _to_text)


def _is_duckdb_file(path: Path) -> bool:
    """Tell a DuckDB database by its header: 8 checksum bytes, then the magic "DUCK"."""
    try:
        with path.open("rb") as file:
            return file.read(12)[8:12] == b"DUCK"
    except OSError:
        return False


class Staging:
    """A DuckDB file holding the subset while it is computed, masked and loaded."""

    def __init__(
        self,
        keep_path: str | Path | None = None,
        batch_size: int = 10_000,
        memory_limit: str = "32MB",
    ) -> None:
        self.batch_size = batch_size
        self.path: Path | None = None
        # Spill space: DuckDB writes what exceeds the memory budget here.
        self._spill = Path(tempfile.mkdtemp(prefix="subsetter-"))
        if keep_path is not None:
            self.path = Path(keep_path)
            if self.path.exists():
                if not _is_duckdb_file(self.path):
                    # A typo must not delete a config file or a SQLite source.
                    raise ConfigError(
                        f"cannot keep staging in {self.path}: it exists and is not a DuckDB "
                        "file; refusing to replace it. Choose a new file name."
                    )
                self.path.unlink()
        try:
            # Without --keep-staging the store lives in memory and spills to a temporary
            # directory: no write-ahead log while rows arrive and no checkpoint on close, for a
            # file that would be deleted anyway.
            self.conn = duckdb.connect(str(self.path) if self.path else ":memory:")
        except duckdb.Error as exc:
            shutil.rmtree(self._spill, ignore_errors=True)
            raise ConfigError(f"cannot open the staging file {self.path}: {exc}") from None
        _steady_malloc()
        self.conn.execute("SET TimeZone = 'UTC'")
        self.conn.execute(f"SET temp_directory = '{self._spill}'")
        # DuckDB would cache up to 80% of RAM; a fixed budget makes it spill to disk instead,
        # so memory stays flat however large the subset grows. A statement that needs more
        # (a huge value, a big join) gets more for its own duration (``_execute``).
        self.conn.execute(f"SET memory_limit = '{memory_limit}'")
        self._budget = _parse_bytes(memory_limit)
        # One thread: each DuckDB thread holds its own hash tables and buffers, and a settle
        # with two needed more than 48 MB at TPC-H SF1 10% where one fits in 32 MB; staging
        # runs many small statements, which a second thread barely speeds up.
        self.conn.execute("SET threads = 1")
        # Keeping the order of INSERT ... SELECT makes DuckDB hold the whole result in memory;
        # nothing here depends on the order rows were staged in.
        self.conn.execute("SET preserve_insertion_order = false")
        self._tables: dict[TableRef, tuple[str, Table, list[StagedColumn]]] = {}
        self._maps = 0  # mapping tables made so far (masking), to name the next one
        self._scratch = 0  # scratch tables of keys made so far, to name the next one
        self._pending: dict[TableRef, list[pa.Table]] = {}
        """Arrow batches of keyed tables not yet written to their ``_in`` table."""
        self._appended: dict[TableRef, int] = {}
        """Bytes (as Arrow) in each ``_in`` table, waiting for ``settle``."""
        self._pending_bytes = 0
        self._settled = 0  # new rows settled early, before the round's ``settle``
        self._down_in: set[TableRef] = set()  # tables whose _in holds rows pulling children
        self._settling = threading.Lock()
        """Held while a table settles and while another thread reads a round (``StagedRound``):
        a settle's hash tables take most of the memory budget, a scan beside it the rest."""
        self._due: set[TableRef] = set()  # tables whose _in is to be settled before going on
        self._reading = False  # reading back for the load has started (``_start_reading``)
        self._widths: dict[TableRef, tuple[int, int, int]] = {}
        """Per table: rows and Arrow bytes staged so far, and the largest value, for reading."""

    # ------------------------------------------------------------------ lifecycle

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn a DuckDB failure (a full disk, a file size limit) into one clear StagingError."""
        try:
            yield
        except (duckdb.Error, OSError) as exc:
            text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            if not _is_storage_error(exc, text):
                raise StagingError(f"staging the rows failed: {text}") from None
            where = f"file {self.path}" if self.path else f"spill folder {self._spill}"
            raise StagingError(
                f"writing the staging {where} failed: {text}. Is the disk full? Staging spills "
                "to the temporary folder (TMPDIR) or writes where --keep-staging says; make "
                "room there, or point it at a disk with space"
            ) from None

    def _execute(self, sql: str, params: Sequence[Any] = (), **arrow: Any) -> list[tuple[Any, ...]]:
        """Run one statement; should it run out of the memory budget, run it again with more.

        DuckDB spills tables and most operators to disk, but it never splits one value, and
        a few structures must fit in memory: a 100 MB blob needs a few hundred MB for the
        statements that move it. A statement that fails that way is undone whole, so it runs
        again with twice the budget (up to half the machine's memory), and the budget goes
        back down afterwards: one huge value does not keep memory high for the rest of the
        run. ``arrow`` names Arrow tables the statement reads. Returns the rows (fetched
        before the budget goes back down: that statement would replace the result).
        """
        for name, table in arrow.items():
            self.conn.register(name, table)
        try:
            return self._with_room(lambda: self.conn.execute(sql, list(params)).fetchall())
        finally:
            for name in arrow:
                self.conn.unregister(name)

    def _with_room(self, run: Callable[[], _T], on: Any | None = None) -> _T:
        """``run()``, again with twice the memory budget each time it runs out (``_execute``).

        ``on`` is the connection to change the budget through (another thread's cursor).
        """
        budget = self._budget
        try:
            while True:
                try:
                    return run()
                except duckdb.Error as exc:
                    if budget >= _MAX_BUDGET or not _out_of_memory(exc):
                        raise
                    budget = min(2 * budget, _MAX_BUDGET)
                    self._set_limit(budget, on)
        finally:
            if budget != self._budget:
                self._set_limit(self._budget, on)

    def _set_limit(self, budget: int, on: Any | None = None) -> None:
        # Lowering it makes DuckDB write cached blocks to the spill folder first.
        with contextlib.suppress(duckdb.Error):
            (on or self.conn).execute(f"SET memory_limit = '{budget // 2**20}MB'")

    def close(self, discard: bool = False) -> None:
        """Close the store and remove its spill space; ``discard`` removes a kept file too.

        A run that fails discards even a --keep-staging file: it would hold a partial subset
        (or a file a full disk cut short) that nobody should mistake for the real one.
        """
        with contextlib.suppress(Exception):
            self.conn.close()
        shutil.rmtree(self._spill, ignore_errors=True)
        if discard and self.path is not None:
            for suffix in ("", ".wal"):
                with contextlib.suppress(OSError):
                    Path(f"{self.path}{suffix}").unlink()

    # ------------------------------------------------------------------ tables

    def create(self, table: Table, converters: Sequence[Converter | None] = ()) -> None:
        """Make the staging table for ``table``; ``converters`` adapt the driver's values first."""
        name = f"t{len(self._tables)}"
        staged = [staged_column(c.type) for c in table.columns]
        if converters:
            staged = [
                StagedColumn(s.sql_type, s.arrow_type, _chain(conv, s.to_staging))
                for s, conv in zip(staged, converters, strict=True)
            ]
        with self._guard():
            self._create(name, table, staged)

    def _create(self, name: str, table: Table, staged: list[StagedColumn]) -> None:
        cols = ", ".join(f"c{i} {s.sql_type}" for i, s in enumerate(staged))
        for table_name in (name, f"{name}_in"):
            self.conn.execute(
                f"CREATE TABLE {table_name} ({cols}, _gen INTEGER, _dgen INTEGER, "
                "_fetch INTEGER, _depth INTEGER)"
            )
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS _tables (name VARCHAR, schema_name VARCHAR, "
            "table_name VARCHAR, columns VARCHAR[])"
        )
        self.conn.execute(
            "INSERT INTO _tables VALUES (?, ?, ?, ?)",
            [name, table.ref.schema, table.ref.name, list(table.column_names)],
        )
        self._tables[table.ref] = (name, table, staged)

    def _cols(self, ref: TableRef, columns: Sequence[str], alias: str = "") -> list[str]:
        _, table, _ = self._tables[ref]
        names = table.column_names
        prefix = f"{alias}." if alias else ""
        return [f"{prefix}c{names.index(c)}" for c in columns]

    def add_rows(
        self, ref: TableRef, rows: list[Row], gen: int, down: bool, fetch: int = 0, depth: int = 0
    ) -> int:
        """Stage rows not staged yet; with ``down``, mark staged ones as pulling children too.

        ``depth`` is the downward steps from a seed of rows that pull children.

        ``fetch`` numbers the source query the rows come from. For a table without any key,
        identical rows cannot be told apart; but a query that returns one of them returns all
        of them (they match the same filter), so rows are new unless an *earlier* query staged
        the same values, which keeps the source's duplicates without staging a row twice.
        """
        if not rows:
            return 0
        return self.add_arrow(ref, self.to_arrow(ref, rows), gen, down, fetch, depth)

    def arrow_schema(self, ref: TableRef) -> pa.Schema:
        """The Arrow schema ``add_arrow`` takes for ``ref``: columns ``c0..cN``, staged types."""
        staged = self._tables[ref][2]
        return pa.schema([(f"c{i}", s.arrow_type) for i, s in enumerate(staged)])

    def add_arrow(
        self,
        ref: TableRef,
        batch: pa.Table | pa.RecordBatch,
        gen: int,
        down: bool,
        fetch: int = 0,
        depth: int = 0,
    ) -> int:
        """``add_rows`` for rows already in Arrow form (``arrow_schema``): no Python per row.

        Rows of a table with a key wait until ``settle`` (and count there); others are
        staged at once.
        """
        if not batch.num_rows:
            return 0
        for due in list(self._due):
            self._settled += self._settle_table(due)
        rows, size, largest = self._widths.get(ref, (0, 0, 0))
        self._widths[ref] = (
            rows + batch.num_rows,
            size + batch.nbytes,
            max(largest, _largest_value(batch, _WIDE_VALUE)),
        )
        name, table, staged = self._tables[ref]
        if isinstance(batch, pa.RecordBatch):
            batch = pa.Table.from_batches([batch])
        dgen, ddepth = (gen, int(depth)) if down else (None, None)
        if table.has_key:
            # Appended as they come; ``settle`` compares them with the staged rows once per
            # round. Comparing each batch with the whole table instead costs time in
            # proportion to (rows staged x batches): minutes for a million-row subset.
            flags = [
                pa.repeat(pa.scalar(v, pa.int32()), batch.num_rows, memory_pool=ARROW_POOL)
                for v in (gen, dgen, fetch, ddepth)
            ]
            marked = pa.table([*batch.columns, *flags], names=[*batch.column_names, *_MARKS])
            pending = self._pending.setdefault(ref, [])
            pending.append(marked)
            if down:
                self._down_in.add(ref)
            self._pending_bytes += marked.nbytes
            if sum(t.num_rows for t in pending) >= _APPEND_ROWS:
                self._append(ref)
            elif self._pending_bytes >= _PENDING_BYTES:
                for waiting in list(self._pending):
                    self._append(waiting)
            return 0  # counted by settle
        keys = self._cols(ref, table.identity)
        match = " AND ".join(f"s.{k} IS NOT DISTINCT FROM b.{k}" for k in keys)
        all_cols = ", ".join(f"b.c{i}" for i in range(len(staged)))
        dgen_sql, ddepth_sql = ("NULL", "NULL") if dgen is None else (str(dgen), str(ddepth))
        with self._guard():
            inserted = self._execute(
                f"INSERT INTO {name} SELECT {all_cols}, {gen}, {dgen_sql}, {fetch}, {ddepth_sql} "
                f"FROM batch b WHERE NOT EXISTS "
                f"(SELECT 1 FROM {name} s WHERE {match} AND s._fetch <> {fetch})",
                batch=batch,
            )
            if down:
                self._execute(
                    f"UPDATE {name} s SET _dgen = {gen}, _depth = {ddepth_sql} FROM batch b "
                    f"WHERE s._dgen IS NULL AND {match}",
                    batch=batch,
                )
        return int(inserted[0][0]) if inserted else 0

    def _append(self, ref: TableRef) -> None:
        """Write the batches waiting in memory for ``ref`` to its ``_in`` table, in one go."""
        waiting = pa.concat_tables(self._pending.pop(ref, []), memory_pool=ARROW_POOL)
        self._pending_bytes -= waiting.nbytes
        with self._guard():
            self._execute(
                f"INSERT INTO {self._tables[ref][0]}_in SELECT * FROM waiting", waiting=waiting
            )
        self._appended[ref] = self._appended.get(ref, 0) + waiting.nbytes
        if self._appended[ref] >= _SETTLE_BYTES:
            # Settling before the round ends changes nothing the round reads (it reads rows
            # of the previous round) and bounds what one settle holds in memory: an in-memory
            # DuckDB keeps all rows one INSERT adds in memory until it commits. It happens
            # when the next batch arrives, once the caller has let go of this one's rows.
            self._due.add(ref)

    def settle(self) -> int:
        """Move rows added since the last call into their tables; return how many were new.

        A row already staged is not staged again; if it arrived as pulling children, the
        staged row starts pulling them (``_dgen``, at the smallest depth it arrived with),
        unless it already does.
        """
        for ref in list(self._pending):
            self._append(ref)
        added, self._settled = self._settled, 0
        for ref in sorted(self._appended):
            added += self._settle_table(ref)
        return added

    def _settle_table(self, ref: TableRef) -> int:
        with self._settling:
            return self._settle_one(ref)

    def _settle_one(self, ref: TableRef) -> int:
        name, table, staged = self._tables[ref]
        keys = ", ".join(self._cols(ref, table.identity))
        # Key columns are NOT NULL for a table with a key: a plain equi-join, twice as fast
        # in DuckDB as IS NOT DISTINCT FROM.
        match = " AND ".join(f"s.{k} = b.{k}" for k in self._cols(ref, table.identity))
        cols = ", ".join(f"c{i}" for i in range(len(staged)))
        with self._guard():
            # One row per key (a GROUP BY on rowids, which DuckDB spills to disk when large,
            # unlike DISTINCT ON), and only keys not staged yet. The staged keys to leave out
            # are found by probing with the new keys (a semi-join whose hash table holds the
            # new keys): an anti-join straight against the staged table would hash all of it.
            # The joins pick row ids; whole rows are only read by the last scan, so no hash
            # table holds a row's values (a 100 MB blob, or 30,000 rows of text).
            inserted = self._execute(
                f"WITH present AS (SELECT {keys} FROM {name} s SEMI JOIN "
                f"(SELECT {keys} FROM {name}_in) b ON {match}), "
                f"new AS (SELECT b.rowid AS r FROM (SELECT {keys}, rowid FROM {name}_in) b "
                f"ANTI JOIN present s ON {match} "
                f"WHERE b.rowid IN (SELECT min(rowid) FROM {name}_in GROUP BY {keys})) "
                f"INSERT INTO {name} SELECT {cols}, _gen, _dgen, _fetch, _depth "
                f"FROM {name}_in WHERE rowid IN (SELECT r FROM new)"
            )
            if ref in self._down_in:  # only rows that arrived pulling children upgrade others
                self._execute(
                    f"UPDATE {name} s SET _dgen = b._dgen, _depth = b._depth FROM (SELECT "
                    f"{keys}, min(_dgen) AS _dgen, min(_depth) AS _depth FROM {name}_in "
                    f"WHERE _dgen IS NOT NULL GROUP BY ALL) b WHERE s._dgen IS NULL AND {match}"
                )
            # A new empty table rather than TRUNCATE: DuckDB's row estimate of a truncated
            # table still counts the deleted rows, and the next settle then builds its hash
            # table on the big staged table instead of the few new rows (out of memory at
            # TPC-H SF1 10% with a 48 MB budget).
            self.conn.execute(f"CREATE OR REPLACE TABLE {name}_in AS FROM {name}_in LIMIT 0")
        self._down_in.discard(ref)
        self._due.discard(ref)
        del self._appended[ref]
        return int(inserted[0][0]) if inserted else 0

    def to_arrow(self, ref: TableRef, rows: list[Row]) -> pa.Table:
        """Rows as the driver returned them -> the Arrow form ``add_arrow`` takes."""
        _, table, staged = self._tables[ref]
        arrays = {}
        for i, (column, how) in enumerate(zip(table.columns, staged, strict=True)):
            values = [r[i] for r in rows]
            try:
                if how.to_staging is not None:
                    values = [None if v is None else how.to_staging(v) for v in values]
                arrays[f"c{i}"] = pa.array(values, type=how.arrow_type)
            except (ValueError, TypeError, ArithmeticError, pa.ArrowException) as exc:
                raise SourceError(
                    f"table {table.ref}, column {column.name}: a value does not fit its declared "
                    f"type {column.type.native or column.type.kind} ({exc})"
                ) from None
        return pa.table(arrays)

    # ------------------------------------------------------------------ closure queries

    def tables_with_rows(self, gen: int) -> tuple[list[TableRef], list[TableRef]]:
        """Tables with rows added in round ``gen``, and tables with rows pulling children since."""
        refs = list(self._tables)
        if not refs:
            return [], []
        # One query for all tables: this runs every round.
        sql = " UNION ALL ".join(
            f"SELECT {i}, bool_or(_gen = {gen}), bool_or(_dgen = {gen}) FROM {name}"
            for i, (name, _, _) in enumerate(self._tables.values())
        )
        with self._guard():
            flags = self._execute(sql)
        added = [refs[i] for i, a, _ in sorted(flags) if a]
        down = [refs[i] for i, _, d in sorted(flags) if d]
        return added, down

    def _rows_of(self, ref: TableRef, condition: str | None) -> str:
        """A FROM item: the staging table, or its rows matching ``condition`` (source SQL).

        A polymorphic key's condition names the source's columns, so it runs on a projection
        holding only those names (and the row id under a name no column has): a source column
        called ``c0`` or ``_gen`` then means that column, never a staging one. The rows it
        picks are then read with their positional columns.
        """
        name, table, _ = self._tables[ref]
        if condition is None:
            return name
        rowid = "_rowid"
        while rowid in table.column_names:
            rowid = f"_{rowid}"
        named = ", ".join(f"c{i} AS {_quoted(c)}" for i, c in enumerate(table.column_names))
        cols = ", ".join(f"c{i}" for i in range(len(table.columns)))
        picked = (
            f"SELECT {_quoted(rowid)} FROM (SELECT {named}, rowid AS {_quoted(rowid)} "
            f"FROM {name}) WHERE ({condition})"
        )
        return (
            f"(SELECT {cols}, _gen, _dgen, _depth, rowid AS _rowid FROM {name} "
            f"WHERE rowid IN ({picked}))"
        )

    def missing_parent_keys(self, fk: ForeignKey, gen: int, size: int) -> Iterator[pa.RecordBatch]:
        """Distinct non-null key values of rows added in ``gen`` whose parent is not staged yet."""
        child, parent = self._rows_of(fk.child, fk.condition), self._tables[fk.parent][0]
        fk_cols = self._cols(fk.child, fk.columns)
        ref_cols = self._cols(fk.parent, fk.ref_columns)
        not_null = " AND ".join(f"{c} IS NOT NULL" for c in fk_cols)
        sql = (
            f"SELECT DISTINCT {', '.join(fk_cols)} FROM {child} WHERE _gen = {gen} AND {not_null} "
            f"EXCEPT SELECT {', '.join(ref_cols)} FROM {parent} "
            f"EXCEPT SELECT {', '.join(ref_cols)} FROM {parent}_in"
        )
        yield from self._key_batches(sql, size)

    def keys_pulling_children(
        self,
        fk: ForeignKey,
        gen: int,
        size: int,
        always: bool = False,
        max_depth: int | None = None,
    ) -> Iterator[tuple[int, pa.RecordBatch]]:
        """Distinct referenced keys of parent rows that pull children through ``fk`` now.

        Those are rows that started pulling children in ``gen``; with ``always``, also rows
        added in ``gen`` as parents only (depth 0). Yields ``(depth, keys)``: the children are
        one step deeper. Rows ``max_depth`` steps down pull nothing.
        """
        parent = self._tables[fk.parent][0]
        ref_cols = self._cols(fk.parent, fk.ref_columns)
        not_null = " AND ".join(f"{c} IS NOT NULL" for c in ref_cols)
        pulls = f"(_dgen = {gen}" + (f" OR (_gen = {gen} AND _dgen IS NULL))" if always else ")")
        depth = "COALESCE(_depth, 0)"
        if max_depth is not None:
            pulls += f" AND {depth} < {int(max_depth)}"
        depths = self.conn.execute(
            f"SELECT DISTINCT {depth} FROM {parent} WHERE {pulls} ORDER BY 1"
        ).fetchall()
        for (level,) in depths:
            sql = (
                f"SELECT DISTINCT {', '.join(ref_cols)} FROM {parent} "
                f"WHERE {pulls} AND {depth} = {int(level)} AND {not_null}"
            )
            for keys in self._key_batches(sql, size):
                yield int(level), keys

    def _key_batches(self, sql: str, size: int) -> Iterator[pa.RecordBatch]:
        """``_arrow_batches`` of a key query, computed in one go into a scratch table first.

        The caller stages rows while these batches stream: a query left open would keep its
        hash tables (DISTINCT, EXCEPT) pinned in DuckDB's memory all that time, beside what
        staging needs, where a table spills to disk like any other.
        """
        self._scratch += 1
        name = f"_keys{self._scratch}"
        with self._guard():
            self._execute(f"CREATE TABLE {name} AS {sql}")
        try:
            yield from self._arrow_batches(f"SELECT * FROM {name}", size)
        finally:
            with contextlib.suppress(duckdb.Error):
                self.conn.execute(f"DROP TABLE IF EXISTS {name}")

    def _arrow_batches(
        self, sql: str, size: int, on: Any | None = None
    ) -> Iterator[pa.RecordBatch]:
        """The query's rows in batches of ``size`` rows (the last one smaller), streamed.

        DuckDB hands out whatever its threads produced (often a few thousand rows); gathering
        them to ``size`` keeps one source query per ``size`` keys. ``on`` is the connection
        (a ``cursor``) to run it on, from another thread; by default a fresh cursor.
        """
        # A cursor of its own: the caller writes to staging while these batches stream.
        cursor = self.conn.cursor() if on is None else on.cursor()
        try:
            with self._guard():
                pending: list[pa.RecordBatch] = []
                count = 0
                for batch in cursor.sql(sql).to_arrow_reader(size):
                    while batch.num_rows:
                        take = batch.slice(0, size - count)
                        pending.append(take)
                        count += take.num_rows
                        batch = batch.slice(take.num_rows)
                        if count == size:
                            yield _combined(pending)
                            pending, count = [], 0
                if count:
                    yield _combined(pending)
        finally:
            cursor.close()

    def _no_parent_sql(self, fk: ForeignKey, child_alias: str) -> str:
        """Condition on a child row: its key is set and no staged parent row matches it."""
        parent = self._tables[fk.parent][0]
        fk_cols = self._cols(fk.child, fk.columns, child_alias)
        ref_cols = self._cols(fk.parent, fk.ref_columns, "p")
        not_null = " AND ".join(f"{c} IS NOT NULL" for c in fk_cols)
        match = " AND ".join(f"{r} = {c}" for r, c in zip(ref_cols, fk_cols, strict=True))
        return f"{not_null} AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE {match})"

    def unresolved(self, fk: ForeignKey) -> int:
        """Staged child rows whose non-null key finds no staged parent."""
        child = self._rows_of(fk.child, fk.condition)
        sql = f"SELECT count(*) FROM {child} c WHERE {self._no_parent_sql(fk, 'c')}"
        return int(self._one(sql)[0])

    def null_columns(
        self, ref: TableRef, columns: Sequence[str], only_unresolved: ForeignKey | None = None
    ) -> None:
        """Set ``columns`` to NULL in all rows, or in rows whose ``only_unresolved`` key dangles."""
        name = self._tables[ref][0]
        sets = ", ".join(f"{c} = NULL" for c in self._cols(ref, columns))
        where = ""
        if only_unresolved is not None and only_unresolved.condition is not None:
            rows = self._rows_of(ref, only_unresolved.condition)
            where = (
                f" WHERE rowid IN (SELECT _rowid FROM {rows} c "
                f"WHERE {self._no_parent_sql(only_unresolved, 'c')})"
            )
        elif only_unresolved is not None:
            where = f" WHERE {self._no_parent_sql(only_unresolved, name)}"
        with self._guard():
            self._execute(f"UPDATE {name} SET {sets}{where}")

    # ------------------------------------------------------------------ reading back

    def count(self, ref: TableRef) -> int:
        name = self._tables[ref][0]
        return int(self._one(f"SELECT count(*) FROM {name}")[0])

    def _one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...]:
        with self._guard():
            rows = self._execute(sql, params)
        assert rows, "aggregate queries return one row"
        return tuple(rows[0])

    def read_arrow(self, ref: TableRef) -> Iterator[pa.RecordBatch]:
        """All staged rows of a table as Arrow batches (columns ``c0..cN``), in staging order.

        No ORDER BY: sorting a large table would need memory (or disk) in proportion to it,
        and a plain scan streams.
        """
        name, _, staged = self._tables[ref]
        cols = ", ".join(f"c{i}" for i in range(len(staged)))
        self._start_reading()
        step = self.read_step(ref)
        if step is None:
            yield from self._arrow_batches(f"SELECT {cols} FROM {name}", self.batch_size)
            return
        last = self._one(f"SELECT max(rowid) FROM {name}")[0]
        cursor = self.conn.cursor()  # the caller may run other statements between batches
        for start in range(0, -1 if last is None else int(last) + 1, step):
            sql = f"SELECT {cols} FROM {name} WHERE rowid >= {start} AND rowid < {start + step}"
            with self._guard():
                part = self._with_room(partial(_arrow_table, cursor, sql))
            if part.num_rows:
                yield _combined(part.to_batches())
            del part

    def read_step(self, ref: TableRef) -> int | None:
        """Rows to read back at once by a range of row ids; None: a plain scan will do.

        A scan reads 2,048 rows at a time, all of their values in memory (2 GB for rows of
        1 MB), however small the batches it hands out. A range of row ids reads only those
        rows, so each read holds about _READ_BYTES (or one huge row).
        """
        rows, size, largest = self._widths.get(ref, (0, 0, 0))
        width = size / max(rows, 1)
        if largest < _WIDE_VALUE and width * _DUCKDB_VECTOR < _READ_BYTES:
            return None
        return max(1, min(self.batch_size, int(_READ_BYTES // max(width, 1))))

    def _start_reading(self) -> None:
        """Switch to reading back: a smaller budget, and all threads again.

        Reading is plain scans, which need a few blocks per thread: the budget only caches
        staged rows then, and a smaller one kept TPC-H SF1 10% at 238 MB instead of 249 MB
        (the settles that wanted one thread are over; more make the scans faster).
        """
        if self._reading:
            return
        self._reading = True
        self._budget = min(self._budget, _READ_BUDGET)
        with self._guard():
            self.conn.execute(f"SET memory_limit = '{self._budget // 2**20}MB'")
            self.conn.execute("RESET threads")

    def read(self, ref: TableRef) -> Iterator[list[Row]]:
        """All staged rows of a table as row tuples, in batches (see ``read_arrow``)."""
        for batch in self.read_arrow(ref):
            yield arrow_rows(batch)

    def round_rows(self, gen: int, cursor: Any, stop: threading.Event | None = None) -> StagedRound:
        """The rows round ``gen`` added, read through ``cursor`` (``Staging.cursor``).

        Reading raises ``RoundAbandoned`` between batches once ``stop`` is set.
        """
        return StagedRound(self, gen, cursor, stop)

    def cursor(self) -> Any:
        """A DuckDB connection of its own, for reading staged rows from another thread."""
        with self._guard():
            return self.conn.cursor()

    # ------------------------------------------------------------------ masking

    def _row_batches(self, sql: str) -> Iterator[list[Row]]:
        for batch in self._arrow_batches(sql, self.batch_size):
            yield arrow_rows(batch)

    def table(self, ref: TableRef) -> Table:
        """The catalog table ``ref`` is staged from."""
        return self._tables[ref][1]

    def staged_type(self, ref: TableRef, column: str) -> StagedColumn:
        _, table, staged = self._tables[ref]
        return staged[table.column_names.index(column)]

    def update_column(self, ref: TableRef, column: str, expr: str, params: Sequence[Any]) -> int:
        """Set ``column`` to ``expr`` (a DuckDB expression over ``{col}``) where it is not NULL."""
        name = self._tables[ref][0]
        col = self._cols(ref, [column])[0]
        sql = expr.replace("{col}", col)
        done = self.conn.execute(
            f"UPDATE {name} SET {col} = {sql} WHERE {col} IS NOT NULL", list(params)
        ).fetchone()
        return int(done[0]) if done else 0

    def build_mapping(
        self,
        columns: Sequence[tuple[TableRef, str]],
        compute: Callable[[list[Row]], list[Any]] | None = None,
        expr: tuple[str, Sequence[Any]] | None = None,
    ) -> str:
        """Map every distinct non-NULL value of ``columns`` (together) to a new value.

        The mapping is a staging table ``(o, s, m)``: the original, its VARCHAR text and the new
        value, computed in DuckDB by ``expr`` (over ``{col}``) or in Python by ``compute``,
        which gets batches of ``(o, s)`` rows and returns the new values in order.
        """
        self._maps += 1
        mapping = f"_map{self._maps}"
        union = " UNION ".join(
            f"SELECT {self._cols(ref, [col])[0]} AS o FROM {self._tables[ref][0]}"
            for ref, col in columns
        )
        distinct = f"SELECT o, CAST(o AS VARCHAR) AS s FROM ({union}) u WHERE o IS NOT NULL"
        first = self.staged_type(*columns[0])
        if expr is not None:
            sql, params = expr
            self.conn.execute(
                f"CREATE TABLE {mapping} AS SELECT o, s, "
                f"CAST({sql.replace('{col}', 'o')} AS {first.sql_type}) AS m FROM ({distinct}) d",
                list(params),
            )
            return mapping
        assert compute is not None, "a mapping needs expr or compute"
        self.conn.execute(
            f"CREATE TABLE {mapping} (o {first.sql_type}, s VARCHAR, m {first.sql_type})"
        )
        for rows in self._row_batches(distinct):
            self.insert_mapping(mapping, first, rows, compute(rows))
        return mapping

    def insert_mapping(
        self, mapping: str, how: StagedColumn, rows: list[Row], values: list[Any]
    ) -> None:
        """Add ``(o, s)`` rows with their new values ``values`` to a mapping table."""
        batch = pa.table(  # noqa: F841 - DuckDB scans it by name
            {
                "o": pa.array([r[0] for r in rows], type=how.arrow_type),
                "s": pa.array([r[1] for r in rows], type=pa.string()),
                "m": pa.array(values, type=how.arrow_type),
            }
        )
        self.conn.execute(f"INSERT INTO {mapping} SELECT o, s, m FROM batch")

    def mapping_collisions(self, mapping: str) -> list[list[Row]]:
        """Groups of ``(o, s)`` mapped to one value (each group ordered by ``s``)."""
        found = self.conn.execute(
            f"SELECT list((o, s) ORDER BY s) FROM {mapping} WHERE m IS NOT NULL "
            "GROUP BY m HAVING count(*) > 1 ORDER BY min(s)"
        ).fetchall()
        return [[(v[0], v[1]) for v in group] for (group,) in found]

    def remap(self, mapping: str, how: StagedColumn, rows: list[Row], values: list[Any]) -> None:
        """Give the originals of ``rows`` new values in a mapping table."""
        texts = [r[1] for r in rows]
        self.conn.execute(f"DELETE FROM {mapping} WHERE list_contains(?, s)", [texts])
        self.insert_mapping(mapping, how, rows, values)

    def apply_mapping(self, mapping: str, ref: TableRef, column: str) -> int:
        """Replace ``column``'s values by their mapped values; returns the rows changed."""
        name = self._tables[ref][0]
        col = self._cols(ref, [column])[0]
        done = self.conn.execute(
            f"UPDATE {name} SET {col} = m.m FROM {mapping} m WHERE {name}.{col} = m.o"
        ).fetchone()
        return int(done[0]) if done else 0

    def drop_mapping(self, mapping: str) -> None:
        self.conn.execute(f"DROP TABLE IF EXISTS {mapping}")

    def rewrite_column(
        self, ref: TableRef, column: str, compute: Callable[[list[Row]], list[Any]]
    ) -> int:
        """Set ``column`` row by row: ``compute`` gets batches of whole rows, returns new values.

        New values collect in a side table keyed by ``rowid`` and land in one UPDATE, so the
        scan never reads rows it has already changed.
        """
        name, _, staged = self._tables[ref]
        how = self.staged_type(ref, column)
        col = self._cols(ref, [column])[0]
        side = f"{name}_rw"
        self.conn.execute(f"CREATE OR REPLACE TABLE {side} (rid BIGINT, v {how.sql_type})")
        cols = ", ".join(f"c{i}" for i in range(len(staged)))
        for batch in self._row_batches(f"SELECT rowid, {cols} FROM {name}"):
            values = compute([r[1:] for r in batch])
            rows = pa.table(  # noqa: F841 - DuckDB scans it by name
                {
                    "rid": pa.array([r[0] for r in batch], type=pa.int64()),
                    "v": pa.array(values, type=how.arrow_type),
                }
            )
            self.conn.execute(f"INSERT INTO {side} SELECT rid, v FROM rows")
        done = self.conn.execute(
            f"UPDATE {name} SET {col} = w.v FROM {side} w WHERE {name}.rowid = w.rid"
        ).fetchone()
        self.conn.execute(f"DROP TABLE {side}")
        return int(done[0]) if done else 0


class RoundAbandoned(Exception):
    """A ``StagedRound`` read was stopped by its ``stop`` event (the run is ending)."""


class StagedRound:
    """The rows one closure round added to each table, for loading while later rounds run.

    Reads through a DuckDB connection of its own (``Staging.cursor``), so another thread can
    read while the extracting thread writes: DuckDB gives each connection a consistent view.
    The same reading methods as ``Staging``, so the loader takes either.

    Each batch is a query of its own over a range of row ids (a round's rows were inserted
    together, so they hold neighbouring ids): a single scan streaming while the target takes
    the rows would keep its snapshot for seconds, and with it every row version the
    extracting thread replaces or truncates meanwhile, which ran staging out of memory at
    10% of TPC-H customers.
    """

    def __init__(
        self, staging: Staging, gen: int, on: Any, stop: threading.Event | None = None
    ) -> None:
        self._staging, self._gen, self._on, self._stop = staging, int(gen), on, stop

    def count(self, ref: TableRef) -> int:
        name = self._staging._tables[ref][0]
        with self._staging._settling, self._staging._guard():
            # fetchall, not fetchone: a result read to its end ends its transaction.
            rows = self._on.execute(f"SELECT count(*) FROM {name} WHERE _gen = {self._gen}")
            return int(rows.fetchall()[0][0])

    def read_arrow(self, ref: TableRef) -> Iterator[pa.RecordBatch]:
        name, _, staged = self._staging._tables[ref]
        cols = ", ".join(f"c{i}" for i in range(len(staged)))
        where = f"_gen = {self._gen}"
        with self._staging._settling, self._staging._guard():
            [(first, last)] = self._on.execute(
                f"SELECT min(rowid), max(rowid) FROM {name} WHERE {where}"
            ).fetchall()
        if first is None:
            return
        # Rows as wide as 1 MB: ranges of ~4 MB, not of _ROUND_ROWS (``read_step``).
        step = self._staging.read_step(ref) or min(self._staging.batch_size, _ROUND_ROWS)
        for start in range(int(first), int(last) + 1, step):
            if self._stop is not None and self._stop.is_set():
                raise RoundAbandoned(f"reading round {self._gen} of {ref} was stopped")
            ids = f"rowid BETWEEN {start} AND {start + step - 1}"
            sql = f"SELECT {cols} FROM {name} WHERE {where} AND {ids}"
            with self._staging._settling, self._staging._guard():
                rows = self._staging._with_room(partial(_arrow_table, self._on, sql), self._on)
            yield from (batch for batch in rows.to_batches() if batch.num_rows)

    def read(self, ref: TableRef) -> Iterator[list[Row]]:
        for batch in self.read_arrow(ref):
            yield arrow_rows(batch)


ARROW_POOL = pa.system_memory_pool()
"""The allocator for Arrow buffers subsetter makes: malloc gives freed batches back to the
system, where pyarrow's default (mimalloc) kept about 40 MB more at the peak of a TPC-H run."""


def _arrow_table(conn: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    # A relation's Arrow result, not execute()'s, which copies the rows once more.
    return conn.sql(sql).to_arrow_table()


def _combined(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    return pa.Table.from_batches(batches).combine_chunks(ARROW_POOL).to_batches()[0]


_ROUND_ROWS = 2_000
"""Rows per read of a round (``StagedRound``): the loading thread holds one such read (and its
CSV) beside everything extraction holds; 10,000-row reads added ~8 MiB to the peak RSS."""
_MARKS = ("_gen", "_dgen", "_fetch", "_depth")
_APPEND_ROWS = 30_000
"""Rows gathered in memory before one append to DuckDB (each statement has a fixed cost)."""
_SETTLE_BYTES = 4 << 20
"""Bytes (as Arrow) in one ``_in`` table that are settled at once, before the round ends."""
_PENDING_BYTES = 8 << 20
"""Bytes all tables may hold in memory before they are appended, to keep memory flat."""


_READ_BUDGET = 24 << 20
"""DuckDB's memory budget once rows are read back for the load (``_start_reading``)."""
_WIDE_VALUE = 1 << 20
"""Tables holding a value this large are read back in ranges of rows (``read_arrow``)."""
_READ_BYTES = 4 << 20
"""Bytes of wide rows read from staging at once."""
_DUCKDB_VECTOR = 2048
"""Rows DuckDB scans at once (its vector size)."""
_MAX_BUDGET = max(
    256 << 20,
    os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    if os.name == "posix"
    else 4 << 30,
)
"""The most memory DuckDB may take for one statement that needs more than the budget."""


def _out_of_memory(exc: duckdb.Error) -> bool:
    """Whether DuckDB ran out of its memory budget (at commit it raises a TransactionException)."""
    text = str(exc).lower()
    return isinstance(exc, duckdb.OutOfMemoryException) or any(
        words in text for words in ("could not allocate block", "failed to pin block")
    )


def _steady_malloc() -> None:
    """Have glibc serve large blocks (DuckDB's 256 KB ones) by mmap, freed back at once.

    glibc raises its mmap threshold each time such a block is freed, after which DuckDB's
    blocks come from the heap, where freed ones fragment it and stay in the process: fixing
    the threshold at its default cut the peak of TPC-H SF1 10% by ~15 MB. Elsewhere a no-op.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 128 * 1024)


_M_MMAP_THRESHOLD = -3  # malloc.h


def _largest_value(batch: pa.Table | pa.RecordBatch, floor: int = 0) -> int:
    """Bytes of the longest string or binary value in the batch, or less when under ``floor``.

    A column holding at most ``floor`` bytes in all cannot hold a longer value, so only
    columns larger than that are measured (by pyarrow.compute, imported only then: its
    import alone costs ~20 ms).
    """
    largest = 0
    for column in batch.columns:
        kind = column.type
        if column.nbytes > floor and (
            pa.types.is_binary(kind)
            or pa.types.is_string(kind)
            or pa.types.is_large_binary(kind)
            or pa.types.is_large_string(kind)
        ):
            import pyarrow.compute as pc

            longest = pc.max(pc.binary_length(column)).as_py()
            largest = max(largest, longest or 0)
    return largest


def _parse_bytes(text: str) -> int:
    """``"64MB"`` -> bytes (DuckDB's units: KB, MB, GB, TB as powers of 1024)."""
    units = {"KB": 2**10, "MB": 2**20, "GB": 2**30, "TB": 2**40}
    size = text.strip().upper().replace("I", "")
    for unit, factor in units.items():
        if size.endswith(unit):
            return int(float(size[: -len(unit)]) * factor)
    return int(size)


def _chain(first: Converter | None, second: Converter | None) -> Converter | None:
    if first is None or second is None:
        return first or second
    return lambda v: None if (x := first(v)) is None else second(x)


def _to_int(value: Any) -> Any:
    return int(value) if not isinstance(value, int) else value


def _to_bool(value: Any) -> Any:
    return bool(value)


def _to_date(value: Any) -> Any:
    return value.date() if isinstance(value, dt.datetime) else value


def _to_bytes(value: Any) -> Any:
    return bytes(value) if isinstance(value, memoryview | bytearray) else value


def _to_text(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | memoryview | bytearray):
        return bytes(value).hex()
    return str(value)


def _to_json_text(value: Any) -> Any:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def arrow_rows(batch: pa.RecordBatch) -> list[Row]:
    """An Arrow batch as row tuples of plain Python values (intervals stay MonthDayNano)."""
    return list(zip(*(c.to_pylist() for c in batch.columns), strict=True))


class KeptStaging:
    """A staging file kept by ``--keep-staging``, opened read-only to explain its rows.

    Each staging table records the round that added a row (``_gen``) and the round since which
    it pulls children (``_dgen``): enough to walk back from any row to the seed row it came from.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not _is_duckdb_file(self.path):
            raise ConfigError(
                f"{self.path}: not a staging file (make one with subset run --keep-staging FILE)"
            )
        try:
            self.conn = duckdb.connect(str(self.path), read_only=True)
            listed = self.conn.execute(
                "SELECT name, schema_name, table_name, columns FROM _tables"
            ).fetchall()
        except duckdb.Error as exc:
            raise ConfigError(f"{self.path}: cannot read the staging file ({exc})") from None
        self._tables = {TableRef(s, t): (name, list(cols)) for name, s, t, cols in listed}

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()

    def has(self, ref: TableRef) -> bool:
        return ref in self._tables

    def rows(
        self,
        ref: TableRef,
        columns: Sequence[str],
        values: Sequence[Any],
        *,
        as_text: bool = False,
        round_column: str | None = None,
        round_: int | None = None,
    ) -> list[tuple[dict[str, Any], int, int | None]]:
        """Staged rows of ``ref`` whose ``columns`` equal ``values``: (row, _gen, _dgen).

        ``as_text`` compares the values as text (keys typed on a command line); with
        ``round_column`` (``_gen`` or ``_dgen``) only rows of round ``round_``.
        """
        name, names = self._tables[ref]
        cond = []
        for col in columns:
            staged = f"c{names.index(col)}"
            cond.append(f"CAST({staged} AS VARCHAR) = ?" if as_text else f"{staged} = ?")
        params = [str(v) for v in values] if as_text else list(values)
        if round_column is not None:
            cond.append(f"{round_column} = ?")
            params.append(round_)
        cols = ", ".join(f"c{i}" for i in range(len(names)))
        found = self.conn.execute(
            f"SELECT {cols}, _gen, _dgen FROM {name} WHERE {' AND '.join(cond)} LIMIT 10", params
        ).fetchall()
        return [(dict(zip(names, r[:-2], strict=True)), r[-2], r[-1]) for r in found]


def _quoted(name: str) -> str:
    """A DuckDB identifier for a source column name, whatever characters it holds."""
    return '"' + name.replace('"', '""') + '"'


def _is_storage_error(exc: BaseException, text: str) -> bool:
    """Tell a failure to write storage from one in the data (a conversion, a constraint).

    Only the first deserves the "is the disk full?" advice; the second would be misled by it.
    """
    lowered = text.lower()
    if "out of memory" in lowered:
        return False  # pyarrow raises DuckDB's out-of-memory error as an OSError
    if isinstance(exc, OSError | duckdb.IOException):
        return True
    return any(word in lowered for word in ("space", "size limit", "could not write", "disk"))
