"""The one interface behind which every engine difference lives.

A ``Dialect`` is bound to one database URL. Capabilities are class attributes; behaviour is
methods. Stages call these methods and never look at an engine's name: reading a consistent
snapshot, reflecting the catalog, spelling SQL, creating tables, bulk-loading rows and resetting
sequences are each one method here, overridden where an engine differs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from sqlalchemy.engine import URL

from subsetter.catalog import Catalog, Column, ColumnType, Index, Table, TableRef
from subsetter.errors import ConnectionFailed, SubsetterError

Row = tuple[Any, ...]
T = TypeVar("T")
Converter = Callable[[Any], Any]
InlineForeignKey = tuple[str, Sequence[str], TableRef, Sequence[str]]
"""A foreign key declared in CREATE TABLE: name, columns, parent table, parent columns."""


@dataclass(frozen=True)
class TableStats:
    """What the engine's statistics say about a table, read without scanning it."""

    rows: int | None
    """Estimated rows (``None``: the engine has no figure, e.g. never analysed)."""
    bytes: int | None = None
    """Bytes of the table's rows on disk, indexes excluded, where the engine tells."""


@dataclass(frozen=True)
class TypeChoice:
    """How a column is created on a target, and why, when the mapping loses something."""

    sql: str
    note: str | None = None


def hidden_password_url(url: URL | str) -> str:
    """Render a URL with its password replaced by ``***``, for every message and report."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except Exception:
        return "<unparseable URL>"
    return parsed.render_as_string(hide_password=True)


def _fits(kinds: frozenset[str], types: Sequence[ColumnType], converters: Sequence[Any]) -> bool:
    """No converter, and every kind in ``kinds`` (decimals only as wide as Arrow's 128 bits)."""
    if not kinds or any(c is not None for c in converters):
        return False
    return all(
        t.kind in kinds and (t.kind != "decimal" or (t.precision is not None and t.precision <= 38))
        for t in types
    )


class ArrowUnfit(Exception):
    """Rows cannot take an Arrow bulk path: a value's text did not parse into its staged type
    (say a BC date), or a bulk load met a value the target would refuse row by row.

    Not a user-facing error: the rows go through the row path instead.
    """


class ValueTooLarge(Exception):
    """A value the target cannot take in one statement (MySQL's max_allowed_packet).

    The message starts with the column and says how to raise the limit; the loader adds
    the table and turns it into a LoadError (retrying would fail the same way).
    """


BATCH_BYTES = 8 << 20
"""About how many bytes of values one batch of rows from a source holds (``next_fetch``)."""


def first_fetch(size: int) -> int:
    """Rows to fetch first, before their width is known: few, in case each is 1 MB."""
    return min(size, 16)


def next_fetch(batch: Sequence[Sequence[Any]], size: int) -> int:
    """Rows to fetch next so that a batch holds about ``BATCH_BYTES``, at most ``size``.

    Batches are sized by bytes, not rows: 10,000 rows of 1 MB would be 10 GB in memory at
    once. The width is measured on the text and binary values of the last batch.
    """
    sample = batch[:64]
    width = sum(len(v) for row in sample for v in row if isinstance(v, str | bytes | bytearray))
    width = max(width // max(len(sample), 1), 1)
    return max(1, min(size, BATCH_BYTES // width))


def retry_transient(
    delays: Sequence[float], notify: Callable[[str], None], again: str, action: Callable[[int], T]
) -> T:
    """Run ``action(attempt)``; after a transient ``SubsetterError`` wait and try again.

    Waits ``delays[i]`` before attempt ``i + 2``, so ``len(delays) + 1`` attempts in all, each
    retry told to ``notify``. The last failure is raised, saying how many attempts were made.
    """
    attempts = len(delays) + 1
    for attempt, delay in enumerate((*delays, None), start=1):
        try:
            return action(attempt)
        except SubsetterError as exc:
            if not exc.transient or delay is None:
                if exc.transient and attempts > 1:
                    exc.args = (f"{exc} (gave up after {attempts} attempts)",)
                raise
            notify(f"{exc}; {again} in {delay:g}s (attempt {attempt + 1} of {attempts})")
            time.sleep(delay)
    raise AssertionError("unreachable: the last attempt returns or raises")


class Dialect:
    """One engine's way of doing each step; subclasses override what differs."""

    name: ClassVar[str] = ""
    """Short engine name used in type notes and the registry."""
    label: ClassVar[str] = ""
    """The engine's name as people write it, for messages."""
    supports_schemas: ClassVar[bool] = True
    """Tables live in named schemas that a target can create."""
    drop_scratch_sql: ClassVar[str] = "DROP TABLE"
    """How to drop a temporary table without side effects (MySQL: no implicit commit)."""

    transactional_ddl: ClassVar[bool] = True
    """CREATE/DROP TABLE can be rolled back, so a failed load leaves nothing behind."""
    loads_while_extracting: ClassVar[bool] = False
    """Rows may go into the target (one transaction, DDL included) from a worker thread while
    the source is still read, each closure round's rows as soon as they are staged."""
    constraints_after_load: ClassVar[bool] = True
    """Primary keys, unique keys and foreign keys are added after the rows (pg_restore style)."""
    can_alter_constraints: ClassVar[bool] = True
    """ALTER TABLE can add keys later; where not, they are declared in CREATE TABLE."""
    primary_key_in_create: ClassVar[bool] = False
    """The primary key is declared in CREATE TABLE even where ALTER could add it later."""
    max_identifier_length: ClassVar[int] = 63
    """Longest table, constraint or index name the engine keeps whole."""
    validates_added_foreign_keys: ClassVar[bool] = False
    """ALTER TABLE ... ADD FOREIGN KEY checks every row already there (so no second check)."""
    foreign_keys_need_index: ClassVar[bool] = False
    """A foreign key needs an index leading with its columns (else the engine makes one)."""
    declares_foreign_keys: ClassVar[bool] = True
    """Foreign keys are created on the target (else only subsetter's verification checks them)."""
    param: ClassVar[str] = "%s"
    """The DB-API placeholder."""
    max_keys_per_query: ClassVar[int] = 1000
    """Keys sent in one ``WHERE key IN (...)`` query."""
    max_params: ClassVar[int] = 30000
    """Bound parameters one statement may carry."""
    quote_char: ClassVar[str] = '"'
    enforces_foreign_keys: ClassVar[bool] = True
    """Existing foreign keys are checked while rows go in (else only verification checks)."""
    supports_deferrable_fks: ClassVar[bool] = False
    """DEFERRABLE keys can be checked at commit (``defer_constraints``)."""
    can_disable_fk_checks: ClassVar[bool] = False
    """Foreign-key checks can be turned off for one load (``disable_fk_checks``)."""
    truncates_together: ClassVar[bool] = False
    """``empty_tables`` empties all tables in one statement, whatever keys join them."""
    can_update_referenced_rows: ClassVar[bool] = True
    """A row other rows reference can be updated (its key columns kept) in a transaction."""
    can_empty_referenced_tables: ClassVar[bool] = True
    """Rows other rows referenced can be deleted once those are deleted, in one transaction."""
    retry_delays: ClassVar[tuple[float, ...]] = ()
    """Seconds to wait before each new attempt after a transient connection failure."""

    def __init__(self, url: URL) -> None:
        self.url = url
        self.notify: Callable[[str], None] = logging.getLogger("subsetter").warning
        """Told about each retry; the pipeline points it at the run's Reporter."""

    # ------------------------------------------------------------------ connections

    def connect(self, *, read_only: bool = False) -> Any:
        """Open a DB-API connection."""
        raise NotImplementedError

    def connect_retrying(self, *, read_only: bool = False) -> Any:
        """Open a connection; transient failures are retried after ``retry_delays``.

        A server that is restarting, out of connection slots or briefly unreachable should not
        fail a nightly run at once; a refused password fails at the first attempt.
        """
        return retry_transient(
            self.retry_delays,
            self.notify,
            "connecting again",
            lambda attempt: self.connect(read_only=read_only),
        )

    def is_transient(self, exc: BaseException) -> bool:
        """True for a driver error that trying again may cure (no slot free, network dropped)."""
        return False

    def keep_alive(self, conn: Any) -> None:
        """Make the session outlive long idle gaps (server idle timeouts) during a run.

        The source sits idle inside its snapshot while staging computes the next round, and the
        target sits idle while the source is read; a server's idle timeout must not end either.
        """

    def is_alive(self, conn: Any) -> bool:
        """Whether the connection still answers (the server may have closed it while idle)."""
        try:
            self.execute(conn, "SELECT 1")
        except Exception:
            return False
        return True

    def exists(self) -> bool:
        """Whether the database is there already (False only for a database file not yet made)."""
        return True

    @property
    def path(self) -> str:
        """The file of a file database (SQLite, DuckDB)."""
        return self.url.database or ""

    def checked_path(self, read_only: bool) -> str:
        """The database file, refused when it is in memory or, for reading, missing."""
        path, engine = self.path, self.label
        if not path or path == ":memory:":
            raise ConnectionFailed(
                f"{self.describe()}: an in-memory {engine} database holds no data"
            )
        if read_only and not os.path.exists(path):
            raise ConnectionFailed(f"{self.describe()}: no such {engine} file {path}")
        return path

    def file_identity(self) -> tuple[Any, ...]:
        return ("file", os.path.realpath(self.path))

    def begin_snapshot(self, conn: Any) -> None:
        """Start the read-only transaction every source query of a run shares."""
        raise NotImplementedError

    def share_snapshot(self, conn: Any) -> str | None:
        """An id under which other connections read ``conn``'s snapshot; None where impossible.

        Called after ``begin_snapshot``; extraction then runs queries on several connections.
        """
        return None

    def join_snapshot(self, conn: Any, snapshot: str) -> None:
        """Begin a read-only transaction on ``conn`` that sees exactly ``snapshot``."""
        raise NotImplementedError

    def database_identity(self, conn: Any) -> tuple[Any, ...]:
        """Values that are equal exactly when two connections reach the same database."""
        raise NotImplementedError

    def identity_if_reachable(self) -> tuple[Any, ...] | None:
        """``database_identity`` through a short read-only connection; None when unreachable.

        Used to recognise a protected target behind another URL; a server that does not
        answer is not the one the run is connected to.
        """
        try:
            conn = self.connect(read_only=True)
        except SubsetterError:
            return None
        try:
            return self.database_identity(conn)
        except Exception as exc:
            if not self.is_driver_error(exc):
                raise
            return None
        finally:
            with contextlib.suppress(Exception):
                conn.close()

    def describe(self) -> str:
        """The URL as shown to people: password hidden."""
        return hidden_password_url(self.url)

    # ------------------------------------------------------------------ reflection

    def reflect(self, schemas: Sequence[str] | None) -> Catalog:
        """Read tables, keys and indexes of ``schemas`` (default: the default schema)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ SQL spelling

    def quote(self, name: str) -> str:
        """Quote an identifier, whatever characters it holds."""
        q = self.quote_char
        return q + name.replace(q, q + q) + q

    def table_sql(self, ref: TableRef) -> str:
        return (
            f"{self.quote(ref.schema)}.{self.quote(ref.name)}"
            if ref.schema
            else self.quote(ref.name)
        )

    def columns_sql(self, columns: Sequence[str], alias: str = "") -> str:
        prefix = f"{alias}." if alias else ""
        return ", ".join(prefix + self.quote(c) for c in columns)

    def read_sql(self, column: Column) -> str:
        """How a column is selected from the source (a cast where the driver's value is awkward)."""
        return self.quote(column.name)

    def select_sql(self, table: Table) -> str:
        """``SELECT <every column> FROM <table>``, columns in catalog order."""
        columns = ", ".join(self.read_sql(c) for c in table.columns)
        return f"SELECT {columns} FROM {self.table_sql(table.ref)}"

    def text_sql(self, expr: str) -> str:
        """Cast an expression to text (used to hash keys for percent samples)."""
        return f"CAST({expr} AS TEXT)"

    def concat_sql(self, parts: Sequence[str]) -> str:
        return " || ".join(parts)

    def key_hash_sql(self, key_columns: Sequence[str], salt: str) -> str:
        """The first six hex digits of the md5 of ``salt`` and the key: the same on every engine."""
        parts = [f"'{salt}|'"]
        for i, col in enumerate(key_columns):
            if i:
                parts.append("'|'")
            parts.append(f"COALESCE({self.text_sql(self.quote(col))}, '')")
        return f"substr(md5({self.concat_sql(parts)}), 1, 6)"

    def sample_sql(self, key_columns: Sequence[str], percent: float, salt: str) -> str:
        """A condition true for a stable ``percent`` of rows: md5 of the key against a threshold.

        Comparing the first hex digits of an md5 as text is the same on every engine, so the
        same rows are chosen on every run and machine.
        """
        threshold = min(int(percent / 100 * 16**6), 16**6)
        if threshold >= 16**6:
            return "1=1"
        return f"{self.key_hash_sql(key_columns, salt)} < '{threshold:06x}'"

    def key_filter_sql(
        self, columns: Sequence[str], count: int, types: Sequence[ColumnType] = ()
    ) -> str:
        """``WHERE`` condition matching ``count`` key tuples passed by ``key_params``."""
        p = self.param
        if len(columns) == 1:
            return f"{self.quote(columns[0])} IN ({', '.join([p] * count)})"
        row = "(" + ", ".join([p] * len(columns)) + ")"
        return f"({self.columns_sql(columns)}) IN ({', '.join([row] * count)})"

    def key_params(self, keys: Any, types: Sequence[ColumnType] = ()) -> Sequence[Any]:
        """Parameters for ``key_filter_sql``: the key tuples (an Arrow batch) flattened."""
        columns = [c.to_pylist() for c in keys.columns]
        return [value for key in zip(*columns, strict=True) for value in key]

    def keys_per_query(self, width: int) -> int:
        return max(1, min(self.max_keys_per_query, self.max_params // max(width, 1)))

    def limit_sql(self, limit: int) -> str:
        return f"LIMIT {int(limit)}"

    def capped_select_sql(
        self,
        table: Table,
        columns: Sequence[str],
        count: int,
        types: Sequence[ColumnType],
        condition: str | None,
        order_by: str,
        limit: int,
    ) -> str:
        """Rows whose ``columns`` hold one of ``count`` keys, at most ``limit`` per key value.

        Takes the same parameters as ``key_filter_sql``. A window function ranks only the rows
        of this batch of keys, so the cost follows those rows, not the whole table.
        """
        where = self.key_filter_sql(columns, count, types)
        if condition:
            where += f" AND ({condition})"
        selected = ", ".join(self.read_sql(c) for c in table.columns)
        return (
            f"SELECT {selected} FROM (SELECT t.*, ROW_NUMBER() OVER (PARTITION BY "
            f"{self.columns_sql(columns)} ORDER BY {order_by}) AS subsetter_rank "
            f"FROM {self.table_sql(table.ref)} t WHERE {where}) ranked "
            f"WHERE subsetter_rank <= {int(limit)}"
        )

    # ------------------------------------------------------------------ reading

    def stream(
        self, conn: Any, sql: str, params: Sequence[Any], size: int, kinds: Sequence[str] = ()
    ) -> Iterator[list[Row]]:
        """Run a query and yield its rows in lists of at most ``size``, holding no more.

        ``kinds`` are the column kinds of the rows, where known (a dialect may pick a wire
        format by them).
        """
        cur = conn.cursor()
        try:
            cur.execute(sql, params)
            want = first_fetch(size)
            while batch := cur.fetchmany(want):
                want = next_fetch(batch, size)
                yield [tuple(r) for r in batch]
        finally:
            cur.close()

    arrow_read_kinds: ClassVar[frozenset[str]] = frozenset()
    """Column kinds ``stream_arrow`` reads from a source (none: rows only)."""
    arrow_load_kinds: ClassVar[frozenset[str]] = frozenset()
    """Column kinds ``load_arrow`` writes to a target (none: ``insert_rows`` only)."""

    def reads_arrow(self, types: Sequence[ColumnType], converters: Sequence[Any]) -> bool:
        """Whether rows of a table of these column types can be read by ``stream_arrow``."""
        return _fits(self.arrow_read_kinds, types, converters)

    def loads_arrow(self, types: Sequence[ColumnType], converters: Sequence[Any]) -> bool:
        """Whether a table of these column types can be loaded by ``load_arrow``."""
        return _fits(self.arrow_load_kinds, types, converters)

    def stream_arrow(
        self, conn: Any, sql: str, params: Sequence[Any], schema: Any
    ) -> Iterator[Any]:
        """Run a query and yield its rows as Arrow record batches of ``schema``.

        Raises ``ArrowUnfit`` (after finishing the query cleanly) when a value does not parse.
        """
        raise NotImplementedError

    def load_arrow(
        self, conn: Any, target: TableRef, columns: Sequence[str], batches: Iterator[Any]
    ) -> int:
        """Append Arrow record batches to a table in bulk; return the number of rows.

        Raises ``ArrowUnfit``, leaving the table as it was, when the rows should go through
        ``insert_rows`` instead.
        """
        raise NotImplementedError

    def source_converter(self, ctype: ColumnType) -> Converter | None:
        """A function turning this driver's value of ``ctype`` into the staging form, if needed."""
        return None

    # ------------------------------------------------------------------ size estimates

    def table_stats(self, conn: Any, refs: Sequence[TableRef]) -> dict[TableRef, TableStats]:
        """Rows and bytes of ``refs`` from the engine's statistics, scanning nothing.

        The base has no statistics to read; tables missing from the answer are counted with a
        bounded ``count_rows`` instead.
        """
        return {}

    def planner_rows(self, conn: Any, table: TableRef, where: str) -> int | None:
        """The query planner's estimate of the rows matching ``where``, without running it."""
        return None

    def count_rows(self, conn: Any, table: TableRef, where: str | None, cap: int) -> int:
        """Count the rows matching ``where``, reading at most ``cap`` of them.

        The ``LIMIT`` inside bounds the work on a large table: the answer is then ``cap``, a
        lower bound, and the estimate says so.
        """
        condition = f" WHERE ({where})" if where else ""
        sql = (
            f"SELECT COUNT(*) FROM (SELECT 1 AS one FROM {self.table_sql(table)}{condition} "
            f"{self.limit_sql(cap)}) capped"
        )
        return int(self.execute(conn, sql)[0][0])

    # ------------------------------------------------------------------ target DDL

    type_names: ClassVar[dict[str, str]] = {}
    """Target type per engine-neutral kind, where one name fits every column of that kind."""
    integer_types: ClassVar[dict[int, str]] = {16: "SMALLINT", 32: "INTEGER", 64: "BIGINT"}
    decimal_type: ClassVar[str] = "NUMERIC"
    max_decimal_precision: ClassVar[int] = 1000
    unbounded_decimal: ClassVar[TypeChoice] = TypeChoice("NUMERIC")
    max_varchar: ClassVar[int] = 10_485_760
    unbounded_string: ClassVar[TypeChoice] = TypeChoice("TEXT")
    text_type: ClassVar[str] = "TEXT"
    json_type: ClassVar[str] = "TEXT"

    def type_sql(self, ctype: ColumnType, source: str) -> TypeChoice:
        """SQL type for a column coming from a ``source`` engine of that name.

        The same engine gets the source's own spelling; another engine the closest type, with a
        note whenever the mapping changes what the column can hold.
        """
        if source == self.name and ctype.native:
            return self.native_type(ctype)
        kind = ctype.kind
        if kind == "integer":
            return TypeChoice(self.integer_types.get(ctype.bits, self.integer_types[64]))
        if kind == "decimal":
            if ctype.precision and ctype.precision <= self.max_decimal_precision:
                return TypeChoice(f"{self.decimal_type}({ctype.precision}, {ctype.scale or 0})")
            return self.unbounded_decimal
        if kind == "string":
            if ctype.length and ctype.length <= self.max_varchar:
                return TypeChoice(f"VARCHAR({ctype.length})")
            return self.unbounded_string
        if kind in self.type_names:
            return TypeChoice(self.type_names[kind], ctype.foreign_note)
        return self.lossy_type(ctype, source)

    def native_type(self, ctype: ColumnType) -> TypeChoice:
        """The source's own spelling, for a copy between two databases of this engine."""
        return TypeChoice(ctype.native)

    def lossy_type(self, ctype: ColumnType, source: str) -> TypeChoice:
        """The closest type for a kind this engine lacks, and the note that says so."""
        kind = ctype.kind
        if kind == "enum":
            return TypeChoice(
                f"VARCHAR({ctype.length or 255})",
                f"{source} enum kept as VARCHAR; allowed values: {', '.join(ctype.values)}",
            )
        if kind == "set":
            return TypeChoice(self.text_type, f"{source} SET kept as comma-separated text")
        if kind == "array":
            return TypeChoice(self.json_type, f"{source} array kept as a JSON array")
        if kind == "interval":
            return TypeChoice("VARCHAR(64)", f"{source} interval kept as text")
        if kind == "timestamptz":
            return TypeChoice("TIMESTAMP", "timestamp with time zone kept in UTC")
        if kind == "year":
            return TypeChoice("SMALLINT", f"{source} YEAR kept as SMALLINT")
        label = ctype.native or kind
        return TypeChoice(self.text_type, f"{source} type {label} kept as {self.text_type}")

    def column_sql(self, column: Column, choice: TypeChoice, inline_pk: bool) -> str:
        """One column's definition in CREATE TABLE."""
        parts = [self.quote(column.name), choice.sql]
        if not column.nullable:
            parts.append("NOT NULL")
        return " ".join(parts)

    def create_table_sql(
        self,
        table: Table,
        target: TableRef,
        types: Sequence[TypeChoice],
        inline_keys: bool,
        foreign_keys: Sequence[InlineForeignKey] = (),
    ) -> list[str]:
        """Statements creating an empty table; keys inline only where ALTER cannot add them."""
        lines = [
            self.column_sql(col, choice, inline_keys and table.primary_key == (col.name,))
            for col, choice in zip(table.columns, types, strict=True)
        ]
        if inline_keys and table.primary_key and not self.pk_declared_on_column(table):
            lines.append(f"PRIMARY KEY ({self.columns_sql(table.primary_key)})")
        if inline_keys:
            lines += [f"UNIQUE ({self.columns_sql(k)})" for k in table.unique_keys]
            lines += (
                []
                if not self.declares_foreign_keys
                else [
                    f"CONSTRAINT {self.quote(name)} FOREIGN KEY ({self.columns_sql(cols)}) "
                    f"REFERENCES {self.table_sql(parent)} ({self.columns_sql(refs)})"
                    for name, cols, parent, refs in foreign_keys
                ]
            )
        body = ",\n  ".join(lines)
        return [f"CREATE TABLE {self.table_sql(target)} (\n  {body}\n)"]

    def pk_declared_on_column(self, table: Table) -> bool:
        """True when ``column_sql`` already wrote the primary key (SQLite's INTEGER PRIMARY KEY)."""
        return False

    def add_primary_key_sql(self, target: TableRef, columns: Sequence[str], name: str) -> str:
        return (
            f"ALTER TABLE {self.table_sql(target)} ADD CONSTRAINT {self.quote(name)} "
            f"PRIMARY KEY ({self.columns_sql(columns)})"
        )

    def add_unique_sql(self, target: TableRef, columns: Sequence[str], name: str) -> str:
        return (
            f"ALTER TABLE {self.table_sql(target)} ADD CONSTRAINT {self.quote(name)} "
            f"UNIQUE ({self.columns_sql(columns)})"
        )

    def add_foreign_key_sql(
        self,
        target: TableRef,
        columns: Sequence[str],
        parent: TableRef,
        ref_columns: Sequence[str],
        name: str,
    ) -> str:
        return (
            f"ALTER TABLE {self.table_sql(target)} ADD CONSTRAINT {self.quote(name)} "
            f"FOREIGN KEY ({self.columns_sql(columns)}) "
            f"REFERENCES {self.table_sql(parent)} ({self.columns_sql(ref_columns)})"
        )

    def foreign_key_name(self, table: str, columns: Sequence[str], ordinal: int) -> str:
        """The name of the ``ordinal``-th (from 1) foreign key created on ``table``."""
        return f"{table}_{'_'.join(columns)}_fkey"

    def rename_tables_sql(self, renames: Sequence[tuple[TableRef, TableRef]]) -> list[str]:
        """Statements renaming each table to its new name, in order (a name freed earlier in
        the list may be taken later)."""
        return [
            f"ALTER TABLE {self.table_sql(old)} RENAME TO {self.quote(new.name)}"
            for old, new in renames
        ]

    def repoint_foreign_keys_sql(self, conn: Any, tables: Sequence[TableRef]) -> list[str]:
        """Statements that point other tables' foreign keys on ``tables`` at them again.

        Read before ``tables`` are renamed away for new ones (``rename_tables_sql``), run after:
        where keys follow a renamed parent, those of tables outside the run would be left on
        the old tables.
        """
        return []

    def create_index_sql(self, target: TableRef, index: Index, name: str) -> str:
        unique = "UNIQUE " if index.unique else ""
        return (
            f"CREATE {unique}INDEX {self.quote(name)} ON {self.table_sql(target)} "
            f"({self.columns_sql(index.columns)})"
        )

    def drop_table_sql(self, target: TableRef) -> str:
        return f"DROP TABLE IF EXISTS {self.table_sql(target)}"

    def create_schema_sql(self, schema: str) -> str | None:
        return f"CREATE SCHEMA IF NOT EXISTS {self.quote(schema)}"

    def prepare_types(
        self, conn: Any, columns: Sequence[tuple[TableRef, Column]], source: str
    ) -> None:
        """Create user-defined types (PostgreSQL enums) the tables need, before CREATE TABLE."""

    def target_schema(self, conn: Any) -> str | None:
        """The schema unqualified names land in on the target."""
        return None

    def existing_tables(self, conn: Any, refs: Sequence[TableRef]) -> list[TableRef]:
        """Which of ``refs`` already exist on the target."""
        raise NotImplementedError

    def all_tables(self, conn: Any) -> list[TableRef]:
        """Every table of the target (schema None for the default one), system tables aside."""
        raise NotImplementedError

    # ------------------------------------------------------------------ loading

    def target_converter(self, ctype: ColumnType, choice: TypeChoice) -> Converter | None:
        """A function turning the staged value into what this driver writes, if needed."""
        return None

    def insert_rows(
        self, conn: Any, target: TableRef, columns: Sequence[str], rows: list[Row]
    ) -> None:
        """Append rows to a table: the engine's fastest bulk path."""
        placeholders = ", ".join([self.param] * len(columns))
        sql = (
            f"INSERT INTO {self.table_sql(target)} ({self.columns_sql(columns)}) "
            f"VALUES ({placeholders})"
        )
        self.execute_many(conn, sql, rows)

    def reset_autoincrement(self, conn: Any, target: TableRef, column: str) -> None:
        """Make new rows get numbers after the highest loaded one."""

    def begin_load(self, conn: Any) -> None:
        """Start the target transaction (where DDL is transactional)."""

    # ------------------------------------------------------------------ existing tables

    def begin_existing_load(self, conn: Any) -> None:
        """Start one transaction for loading into existing tables, their keys checked."""
        self.begin_load(conn)

    def defer_constraints(self, conn: Any) -> None:
        """Check DEFERRABLE keys at commit instead of per statement."""
        raise NotImplementedError

    def disable_fk_checks(self, conn: Any) -> None:
        """Turn foreign-key checks off until the load's transaction ends."""
        raise NotImplementedError

    def empty_tables(self, conn: Any, targets: Sequence[TableRef]) -> None:
        """Delete every row of ``targets`` (children first), inside the load's transaction.

        DELETE, not TRUNCATE: TRUNCATE commits on MySQL and is refused on a table that other
        tables' keys reference.
        """
        for target in targets:
            self.execute(conn, f"DELETE FROM {self.table_sql(target)}")

    def insert_rows_on_conflict(
        self,
        conn: Any,
        target: TableRef,
        columns: Sequence[str],
        key: Sequence[str],
        rows: list[Row],
        on_conflict: str,
    ) -> None:
        """Insert rows; one whose ``key`` is there already is kept (skip) or overwritten."""
        placeholders = ", ".join([self.param] * len(columns))
        action = "DO NOTHING"
        changed = [c for c in columns if c not in key]
        if on_conflict == "update" and changed:
            sets = ", ".join(f"{self.quote(c)} = excluded.{self.quote(c)}" for c in changed)
            action = f"DO UPDATE SET {sets}"
        conflict = f"({self.columns_sql(key)}) " if key else ""
        sql = (
            f"INSERT INTO {self.table_sql(target)} ({self.columns_sql(columns)}) "
            f"VALUES ({placeholders}) ON CONFLICT {conflict}{action}"
        )
        self.execute_many(conn, sql, rows)

    def update_rows(
        self,
        conn: Any,
        target: TableRef,
        key: Sequence[str],
        columns: Sequence[str],
        rows: list[Row],
    ) -> None:
        """Set ``columns`` (now NULL) of the rows found by ``key``; rows hold key values first.

        Set-based, so a cycle of millions of rows is not one round trip per row: the values go
        through the bulk path (``insert_rows``) into a temporary table on the target, then one
        joined UPDATE sets them. The temporary table copies the target's column types. It is
        dropped on success only: after a failure the transaction rolls back (PostgreSQL drops
        it with the rollback; a MySQL session's goes with its connection), and a DROP in
        PostgreSQL's aborted transaction would hide the real error.
        """
        scratch = self.scratch_table("_subsetter_update")
        names = [*key, *columns]
        self.execute(
            conn,
            f"CREATE TEMPORARY TABLE {self.table_sql(scratch)} AS SELECT "
            f"{self.columns_sql(names)} FROM {self.table_sql(target)} WHERE 1 = 0",
        )
        self.insert_rows(conn, scratch, names, rows)
        self.execute(conn, self.update_from_sql(target, scratch, key, columns))
        self.execute(conn, f"{self.drop_scratch_sql} {self.table_sql(scratch)}")

    def scratch_table(self, name: str) -> TableRef:
        """Where a temporary table of this session is made (and only found by this session)."""
        return TableRef(None, name)

    def update_from_sql(
        self, target: TableRef, scratch: TableRef, key: Sequence[str], columns: Sequence[str]
    ) -> str:
        """One UPDATE setting the NULL ``columns`` of ``target`` from ``scratch``, by ``key``."""
        match = " AND ".join(f"t.{self.quote(c)} = s.{self.quote(c)}" for c in key)
        unset = " AND ".join(f"t.{self.quote(c)} IS NULL" for c in columns)
        return self.joined_update_sql(
            self.table_sql(target), self.table_sql(scratch), columns, match, unset
        )

    def joined_update_sql(
        self, target: str, scratch: str, columns: Sequence[str], match: str, where: str
    ) -> str:
        """``UPDATE target AS t`` setting ``columns`` from ``scratch AS s`` joined on ``match``."""
        sets = ", ".join(f"{self.quote(c)} = s.{self.quote(c)}" for c in columns)
        return f"UPDATE {target} AS t SET {sets} FROM {scratch} AS s WHERE {match} AND {where}"

    def execute_many(self, conn: Any, sql: str, rows: Sequence[Row]) -> None:
        """Run one statement once per row of parameters."""
        cur = conn.cursor()
        try:
            cur.executemany(sql, rows)
        finally:
            cur.close()

    def execute(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one statement and return its rows (empty for statements without a result)."""
        cur = conn.cursor()
        try:
            cur.execute(sql, params) if params else cur.execute(sql)
            if cur.description is None:
                return []
            return [tuple(r) for r in cur.fetchall()]
        finally:
            with contextlib.suppress(Exception):
                cur.close()

    def execute_all(self, conn: Any, statements: Sequence[str]) -> None:
        """Run statements without results, in order (in one round trip where the engine can)."""
        for statement in statements:
            self.execute(conn, statement)

    def wrap_error(self, exc: BaseException) -> str:
        """A one-line, password-free description of a driver error."""
        text = str(exc).strip().splitlines()
        first = text[0] if text else type(exc).__name__
        password = self.url.password
        if password:
            first = first.replace(str(password), "***")
        return first

    def is_driver_error(self, exc: BaseException) -> bool:
        """True for errors raised by this engine's driver (wrapped at the boundary)."""
        return False
