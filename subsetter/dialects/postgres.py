"""PostgreSQL through psycopg 3: snapshot reads, arrays for key lists, COPY for loading."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import replace
from itertools import count
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg import sql as pgsql

from subsetter.catalog import Catalog, Column, ColumnType, ForeignKey, Table, TableRef
from subsetter.dialects.base import (
    ArrowUnfit,
    Converter,
    Row,
    TableStats,
    TypeChoice,
    first_fetch,
    next_fetch,
)
from subsetter.dialects.sqla import SQLAlchemyReflection, compiled, generic_type
from subsetter.errors import ConnectionFailed
from subsetter.intervals import interval_text, parse_iso_interval

_CURSOR_NUMBERS = count(1)

_BINARY_READ_KINDS = frozenset(
    {"integer", "decimal", "float", "string", "text", "boolean", "date", "time", "timestamp",
     "timestamptz", "uuid", "binary", "json", "other", "interval"}
)  # fmt: skip
"""Kinds psycopg reads alike in binary and text (``other`` and ``interval`` come as text)."""

# Server messages (FATAL at connection time carry no SQLSTATE in psycopg) that a retry may cure.
_TRANSIENT_MESSAGES = (
    "too many connections",
    "remaining connection slots are reserved",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "terminating connection",
    "server closed the connection",
    "connection refused",
    "timeout expired",
    "connection timed out",
    "consuming input failed",
    "the connection is closed",
)
# connection_exception (08xxx), too_many_connections, admin/crash shutdown, cannot_connect_now,
# a session ended by idle_in_transaction_session_timeout or idle_session_timeout.
_TRANSIENT_STATES = ("08", "53300", "57P01", "57P02", "57P03", "25P03", "57P05")

_CROSS_ENGINE_TYPES = {
    "float": "DOUBLE PRECISION",
    "text": "TEXT",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "time": "TIME",
    "timestamp": "TIMESTAMP",
    "timestamptz": "TIMESTAMPTZ",
    "interval": "INTERVAL",
    "uuid": "UUID",
    "json": "JSONB",
    "binary": "BYTEA",
}


class PostgresDialect(SQLAlchemyReflection):
    """PostgreSQL 12 and later."""

    name = "postgresql"
    label = "PostgreSQL"
    param = "%s"
    max_keys_per_query = 5000  # smaller batches keep both readers busy; measured 5-8% faster
    type_names = _CROSS_ENGINE_TYPES
    json_type = "JSONB"
    supports_deferrable_fks = True
    can_disable_fk_checks = True
    truncates_together = True
    retry_delays = (0.5, 1.5)
    validates_added_foreign_keys = True
    loads_while_extracting = True

    def connect(self, *, read_only: bool = False) -> Any:
        u = self.url
        kwargs: dict[str, Any] = {
            "host": u.host or None,
            "port": u.port or None,
            "user": u.username or None,
            "password": u.password or None,
            "dbname": u.database or None,
            "connect_timeout": 10,
            "application_name": "subsetter",
        }
        kwargs.update({k: v for k, v in u.query.items() if isinstance(v, str)})
        try:
            conn = psycopg.connect(**{k: v for k, v in kwargs.items() if v is not None})
        except psycopg.Error as exc:
            raise ConnectionFailed(
                f"cannot connect to {self.describe()}: {self.wrap_error(exc)}",
                transient=self.is_transient(exc),
            ) from None
        try:
            self.keep_alive(conn)
        except psycopg.Error as exc:
            conn.close()
            raise ConnectionFailed(
                f"cannot set up the session on {self.describe()}: {self.wrap_error(exc)}",
                transient=self.is_transient(exc),
            ) from None
        if read_only:
            conn.read_only = True
        return conn

    def keep_alive(self, conn: Any) -> None:
        # A database or role may set idle_in_transaction_session_timeout or idle_session_timeout
        # (PostgreSQL 14+); the snapshot idles while staging works, so both are off for this
        # session only. pg_settings lists only the settings this server version has.
        # In autocommit: one round trip, where a transaction would add BEGIN and COMMIT.
        conn.autocommit = True
        try:
            conn.execute(
                "SELECT set_config(name, '0', false) FROM pg_settings WHERE name IN "
                "('idle_in_transaction_session_timeout', 'idle_session_timeout')"
            )
        finally:
            conn.autocommit = False
        # TCP keepalives notice a dead peer during long reads; libpq's defaults are used.

    def is_transient(self, exc: BaseException) -> bool:
        if not isinstance(exc, psycopg.Error):
            return False
        state = getattr(exc, "sqlstate", None) or ""
        if state.startswith(_TRANSIENT_STATES):
            return True
        if not isinstance(exc, psycopg.OperationalError):
            return False
        text = str(exc).lower()
        return any(m in text for m in _TRANSIENT_MESSAGES)

    def is_alive(self, conn: Any) -> bool:
        return not conn.closed and super().is_alive(conn)

    def begin_snapshot(self, conn: Any) -> None:
        self._begin(conn, "SELECT 1")  # opens the REPEATABLE READ READ ONLY transaction

    def _begin(self, conn: Any, first: str) -> None:
        conn.rollback()
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        # One round trip for all of them (a simple query may hold several statements).
        conn.execute(
            f"{first}; "
            # Intervals are read as ISO 8601 text: a timedelta cannot hold "1 month".
            "SET LOCAL intervalstyle = 'iso_8601'; "
            # What COPY's CSV text must look like for pyarrow, whatever the database's
            # defaults: UTF-8, ISO dates, timestamptz in UTC (+00), floats in full precision.
            "SET LOCAL client_encoding = 'UTF8'; SET LOCAL TimeZone = 'UTC'; "
            "SET LOCAL datestyle = 'ISO, YMD'; SET LOCAL extra_float_digits = 3"
        )

    def share_snapshot(self, conn: Any) -> str | None:
        # Called right after begin_snapshot, before any read: should the export be refused
        # (a standby, a pooler), the aborted transaction is simply begun again.
        try:
            row = conn.execute("SELECT pg_export_snapshot()").fetchone()
        except psycopg.Error:
            self.begin_snapshot(conn)
            return None
        return str(row[0])

    def join_snapshot(self, conn: Any, snapshot: str) -> None:
        # SET TRANSACTION SNAPSHOT must be the transaction's first statement.
        self._begin(conn, f"SET TRANSACTION SNAPSHOT '{snapshot.replace(chr(39), '')}'")

    def database_identity(self, conn: Any) -> tuple[Any, ...]:
        row = conn.execute(
            "SELECT pg_postmaster_start_time()::text, current_database(), "
            "(SELECT setting FROM pg_settings WHERE name = 'port')"
        ).fetchone()
        return ("postgresql", *row)

    def is_driver_error(self, exc: BaseException) -> bool:
        return isinstance(exc, psycopg.Error)

    # ------------------------------------------------------------------ size estimates

    def table_stats(self, conn: Any, refs: Sequence[TableRef]) -> dict[TableRef, TableStats]:
        """``pg_class.reltuples`` and ``pg_table_size``: what ANALYZE and autovacuum recorded."""
        schemas = sorted({r.schema for r in refs if r.schema})
        rows = self.execute(
            conn,
            "SELECT n.nspname, c.relname, c.reltuples, pg_table_size(c.oid) "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%s)",
            [schemas],
        )
        wanted = set(refs)
        out = {}
        for schema, name, tuples, size in rows:
            ref = TableRef(schema, name)
            if ref in wanted:
                # reltuples is -1 until the first ANALYZE (PostgreSQL 14+): no figure yet.
                out[ref] = TableStats(int(tuples) if tuples >= 0 else None, int(size))
        return out

    def planner_rows(self, conn: Any, table: TableRef, where: str) -> int | None:
        """The planner's row estimate from ``EXPLAIN``, which runs nothing."""
        found = self.execute(
            conn, f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {self.table_sql(table)} WHERE ({where})"
        )
        doc = found[0][0]
        doc = json.loads(doc) if isinstance(doc, str) else doc
        return int(doc[0]["Plan"]["Plan Rows"])

    # ------------------------------------------------------------------ reflection

    def special_type(self, satype: Any, dialect: sa.Dialect) -> ColumnType | None:
        from sqlalchemy.dialects import postgresql as pg

        if isinstance(satype, pg.DOMAIN):
            base = generic_type(satype.data_type, dialect)
            return ColumnType(**{**base.__dict__, "native": compiled(satype.data_type, dialect)})
        if isinstance(satype, pg.ENUM):
            return ColumnType(
                "enum",
                compiled(satype, dialect),
                values=tuple(satype.enums),
                length=max((len(v) for v in satype.enums), default=1),
                type_name=satype.name,
                type_schema=satype.schema,
            )
        return None

    def adjust_catalog(self, conn: Any, catalog: Catalog) -> Catalog:
        """Name the types SQLAlchemy does not know; fold partitions into their parent table."""
        return self._fold_partitions(conn, self._name_unknown_types(conn, catalog))

    def _name_unknown_types(self, conn: Any, catalog: Catalog) -> Catalog:
        """Spell each column's type as PostgreSQL does (``format_type``) for same-engine copies.

        SQLAlchemy renders types it does not know (xml, point, ...) as NULL and a few it does
        know loosely ("char" as VARCHAR). Domains keep their base type and enums their own
        handling, so those two keep SQLAlchemy's spelling.
        """
        rows = conn.exec_driver_sql(
            "SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod) "
            "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_type t ON t.oid = a.atttypid "
            "WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p') "
            "AND t.typtype NOT IN ('d', 'e')"
        ).all()
        spelled = {(TableRef(r[0], r[1]), r[2]): r[3] for r in rows}
        tables = {}
        for ref, table in catalog.tables.items():
            columns = tuple(
                replace(c, type=replace(c.type, native=spelled[(ref, c.name)]))
                if (ref, c.name) in spelled
                else c
                for c in table.columns
            )
            tables[ref] = replace(table, columns=columns)
        return Catalog(tables, catalog.foreign_keys, catalog.default_schema, catalog.dialect)

    def _fold_partitions(self, conn: Any, catalog: Catalog) -> Catalog:
        """Fold partitions into their partitioned table: one table, FKs counted as the parent's."""
        rows = conn.exec_driver_sql(
            "SELECT cn.nspname, c.relname, pn.nspname, p.relname "
            "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_namespace cn ON cn.oid = c.relnamespace "
            "JOIN pg_class p ON p.oid = i.inhparent "
            "JOIN pg_namespace pn ON pn.oid = p.relnamespace "
            "WHERE c.relispartition"
        ).all()
        parent_of = {TableRef(r[0], r[1]): TableRef(r[2], r[3]) for r in rows}
        if not parent_of:
            return catalog

        def top(ref: TableRef) -> TableRef:
            while ref in parent_of:
                ref = parent_of[ref]
            return ref

        tables = {ref: t for ref, t in catalog.tables.items() if ref not in parent_of}
        seen: dict[tuple[Any, ...], ForeignKey] = {}
        for fk in catalog.foreign_keys:
            moved = replace(fk, child=top(fk.child), parent=top(fk.parent))
            key = (moved.child, moved.columns, moved.parent, moved.ref_columns)
            if moved.child in tables and moved.parent in tables:
                seen.setdefault(key, moved)
        return Catalog(tables, tuple(seen.values()), catalog.default_schema, catalog.dialect)

    # ------------------------------------------------------------------ reading

    def key_filter_sql(
        self, columns: Sequence[str], count: int, types: Sequence[ColumnType] = ()
    ) -> str:
        # IN (SELECT unnest(...)) rather than = ANY(...): with thousands of keys the planner
        # turns = ANY into a (parallel) scan of the whole table, while the semi-join over the
        # unnested keys probes the index once per key, so the work follows the subset's size.
        casts = [f"::{self._array_type(t)}" for t in types] if types else [""] * len(columns)
        arrays = ", ".join(f"%s{c}" for c in casts)
        return f"({self.columns_sql(columns)}) IN (SELECT * FROM unnest({arrays}))"

    def key_params(self, keys: Any, types: Sequence[ColumnType] = ()) -> Sequence[Any]:
        # One array per key column. Where the column's text form is plain, the array literal
        # ('{1,2,3}') is built by pyarrow in C++ rather than by psycopg key by key.
        return [
            _array_literal(column) if t.kind in _LITERAL_KINDS else column.to_pylist()
            for column, t in zip(keys.columns, types, strict=True)
        ]

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
        # LATERAL runs one LIMIT query per key, which an index on (key, order) answers by
        # reading only the rows kept: 0.1 ms instead of 47 ms for a window over the 100,000
        # children of one parent (bench/fanout_limit.py).
        casts = [f"::{self._array_type(t)}" for t in types] if types else [""] * len(columns)
        names = [f"subsetter_k{i}" for i in range(len(columns))]
        arrays = ", ".join(f"%s{c}" for c in casts)
        match = " AND ".join(
            f"t.{self.quote(c)} = k.{n}" for c, n in zip(columns, names, strict=True)
        )
        if condition:
            match += f" AND ({condition})"
        selected = ", ".join(self.read_sql(c) for c in table.columns)
        return (
            f"SELECT c.* FROM unnest({arrays}) AS k({', '.join(names)}) CROSS JOIN LATERAL "
            f"(SELECT {selected} FROM {self.table_sql(table.ref)} t WHERE {match} "
            f"ORDER BY {order_by} LIMIT {int(limit)}) c"
        )

    def keys_per_query(self, width: int) -> int:
        return self.max_keys_per_query

    @staticmethod
    def _array_type(ctype: ColumnType) -> str:
        base = ctype.native or "TEXT"
        return "TEXT[]" if ctype.kind in {"other", "json", "array"} else f"{base}[]"

    def read_sql(self, column: Column) -> str:
        # Types psycopg has no Python form for (ranges, tsvector, geometry...) travel as text,
        # which PostgreSQL parses back on the way in.
        if column.type.kind in {"other", "interval"}:
            return f"{self.quote(column.name)}::text"
        return self.quote(column.name)

    def stream(
        self, conn: Any, sql: str, params: Sequence[Any], size: int, kinds: Sequence[str] = ()
    ) -> Iterator[list[Row]]:
        # A named (server-side) cursor keeps memory bounded however many rows match. Rows with
        # bytea come in binary: as text each value travels as hex, twice its size, held twice
        # (libpq's input buffer and its result) before psycopg decodes it.
        binary = "binary" in kinds and set(kinds) <= _BINARY_READ_KINDS
        with conn.cursor(name=f"subsetter_{next(_CURSOR_NUMBERS)}", binary=binary) as cur:
            cur.execute(sql, params)
            want = first_fetch(size)
            while batch := cur.fetchmany(want):
                want = next_fetch(batch, size)
                yield batch

    # Kinds whose CSV text form pyarrow parses into the staged type and PostgreSQL parses back.
    arrow_read_kinds = arrow_load_kinds = frozenset(
        {"integer", "decimal", "float", "string", "text", "boolean", "date", "timestamp",
         "timestamptz", "uuid", "enum"}
    )  # fmt: skip

    def stream_arrow(
        self, conn: Any, sql: str, params: Sequence[Any], schema: Any
    ) -> Iterator[Any]:
        # COPY ... TO STDOUT sends rows as CSV text that pyarrow parses in C++: no Python
        # object per value, unlike a cursor. The parameters are bound client-side.
        import pyarrow as pa
        import pyarrow.csv as pacsv

        names = schema.names
        read = pacsv.ReadOptions(column_names=names, use_threads=False)
        parse = pacsv.ParseOptions(newlines_in_values=True)
        convert = pacsv.ConvertOptions(
            column_types=dict(zip(names, schema.types, strict=True)),
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        )
        unfit: Exception | None = None
        with conn.cursor() as cur, cur.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)", params) as copy:
            # PostgreSQL sends each row as one CopyData message (copyto.c, CopySendEndOfRow),
            # so a run of messages is a run of whole rows: parsed ~1 MB at a time, which
            # holds far less memory than pyarrow's streaming reader.
            parts: list[Any] = []
            size = 0
            for chunk in copy:
                parts.append(chunk)
                size += len(chunk)
                if size >= _CSV_BLOCK or unfit:
                    if not unfit:
                        try:
                            yield from _parse_csv(parts, read, parse, convert)
                        except pa.ArrowInvalid as exc:
                            unfit = exc  # read on to the end: cancelling would end the snapshot
                    parts, size = [], 0
            if parts and not unfit:
                try:
                    yield from _parse_csv(parts, read, parse, convert)
                except pa.ArrowInvalid as exc:
                    unfit = exc
        if unfit is not None:
            raise ArrowUnfit(str(unfit))

    def load_arrow(
        self, conn: Any, target: TableRef, columns: Sequence[str], batches: Iterator[Any]
    ) -> int:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        statement = self._copy_in_sql(target, columns, " (FORMAT csv)")
        options = pacsv.WriteOptions(include_header=False)
        rows = 0
        with conn.cursor() as cur, cur.copy(statement) as copy:
            for batch in batches:
                sink = pa.BufferOutputStream(pa.system_memory_pool())  # see staging.ARROW_POOL
                pacsv.write_csv(batch, sink, options)
                copy.write(memoryview(sink.getvalue()))
                rows += batch.num_rows
        return rows

    def source_converter(self, ctype: ColumnType) -> Converter | None:
        if ctype.kind == "array":
            return _json_array
        if ctype.kind == "interval":
            return parse_iso_interval
        return None

    # ------------------------------------------------------------------ target

    def native_type(self, ctype: ColumnType) -> TypeChoice:
        if ctype.kind == "enum" and ctype.type_name:
            return TypeChoice(self._enum_name(ctype))
        return TypeChoice(ctype.native)

    def _enum_name(self, ctype: ColumnType) -> str:
        assert ctype.type_name
        if ctype.type_schema:
            return f"{self.quote(ctype.type_schema)}.{self.quote(ctype.type_name)}"
        return self.quote(ctype.type_name)

    def column_sql(self, column: Column, choice: TypeChoice, inline_pk: bool) -> str:
        text = super().column_sql(column, choice, inline_pk)
        if column.autoincrement and column.type.kind == "integer":
            text += " GENERATED BY DEFAULT AS IDENTITY"
        return text

    def prepare_types(
        self, conn: Any, columns: Sequence[tuple[TableRef, Column]], source: str
    ) -> None:
        if source != self.name:
            return
        done: set[str] = set()
        for _, column in columns:
            ctype = column.type
            if ctype.kind != "enum" or not ctype.type_name:
                continue
            name = self._enum_name(ctype)
            if name in done:
                continue
            done.add(name)
            exists = conn.execute(
                "SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
                "WHERE t.typname = %s AND (%s::text IS NULL OR n.nspname = %s)",
                (ctype.type_name, ctype.type_schema, ctype.type_schema),
            ).fetchone()
            if not exists:
                labels = ", ".join("'" + v.replace("'", "''") + "'" for v in ctype.values)
                conn.execute(f"CREATE TYPE {name} AS ENUM ({labels})")

    def target_schema(self, conn: Any) -> str | None:
        return str(conn.execute("SELECT current_schema()").fetchone()[0])

    def all_tables(self, conn: Any) -> list[TableRef]:
        default = self.target_schema(conn)
        rows = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'"
        ).fetchall()
        return [TableRef(None if s == default else s, t) for s, t in rows]

    def existing_tables(self, conn: Any, refs: Sequence[TableRef]) -> list[TableRef]:
        if not refs:
            return []
        names = [self.table_sql(ref) for ref in refs]
        rows = conn.execute(
            "SELECT to_regclass(name) IS NOT NULL FROM unnest(%s::text[]) WITH ORDINALITY "
            "AS t(name, n) ORDER BY n",
            (names,),
        ).fetchall()
        return [ref for ref, (exists,) in zip(refs, rows, strict=True) if exists]

    def drop_table_sql(self, target: TableRef) -> str:
        # CASCADE drops only the constraints of other tables that point here, not the tables.
        return f"DROP TABLE IF EXISTS {self.table_sql(target)} CASCADE"

    def begin_load(self, conn: Any) -> None:
        conn.rollback()  # end the read-only checks' transaction; the load is one transaction
        conn.execute("SET client_encoding = 'UTF8'")  # the CSV load_arrow writes is UTF-8

    def defer_constraints(self, conn: Any) -> None:
        conn.execute("SET CONSTRAINTS ALL DEFERRED")

    def disable_fk_checks(self, conn: Any) -> None:
        # Foreign keys are triggers; "replica" skips them until the transaction ends
        # (SET LOCAL). Needs a superuser or a role granted the setting.
        conn.execute("SET LOCAL session_replication_role = replica")

    def empty_tables(self, conn: Any, targets: Sequence[TableRef]) -> None:
        # One TRUNCATE of every table checks keys only against tables outside the list, so
        # cycles need no order; it is transactional here, and far faster than DELETE.
        if targets:
            conn.execute(f"TRUNCATE {', '.join(self.table_sql(t) for t in targets)}")

    def target_converter(self, ctype: ColumnType, choice: TypeChoice) -> Converter | None:
        if choice.sql.endswith("]") and ctype.kind == "array":
            return _json_to_list
        if ctype.kind == "interval":
            return interval_text
        return None

    def _copy_in_sql(self, target: TableRef, columns: Sequence[str], options: str = "") -> Any:
        return pgsql.SQL("COPY {} ({}) FROM STDIN" + options).format(
            pgsql.SQL(self.table_sql(target)),
            pgsql.SQL(", ").join(pgsql.Identifier(c) for c in columns),
        )

    def insert_rows(
        self, conn: Any, target: TableRef, columns: Sequence[str], rows: list[Row]
    ) -> None:
        statement = self._copy_in_sql(target, columns)
        with conn.cursor() as cur, cur.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)

    def execute_all(self, conn: Any, statements: Sequence[str]) -> None:
        # Without parameters, several statements travel as one simple query: one round trip.
        if statements:
            conn.execute(";\n".join(statements))

    def scratch_table(self, name: str) -> TableRef:
        # Named in pg_temp: dropping it can never reach a real table of that name.
        return TableRef("pg_temp", name)

    def reset_autoincrement(self, conn: Any, target: TableRef, column: str) -> None:
        table = self.table_sql(target)
        conn.execute(
            f"SELECT setval(pg_get_serial_sequence(%s, %s), "
            f"COALESCE(MAX({self.quote(column)}), 0) + 1, false) FROM {table}",
            (table, column),
        )


def _json_array(value: Any) -> Any:
    return None if value is None else json.dumps(value, default=str)


def _json_to_list(value: Any) -> Any:
    return None if value is None else json.loads(value)


_LITERAL_KINDS = frozenset({"integer", "decimal", "string", "text", "date", "uuid", "enum"})


_SMALL_ARRAY = 2000
"""Keys up to which an array literal is built in Python: pyarrow.compute's import alone takes
~20 ms, longer than Python takes for this many keys; a small subset never needs it."""


def _array_literal(column: Any) -> str:
    """A PostgreSQL array literal of a non-null Arrow column: ``{1,2}`` or ``{"a","b\\"c"}``."""
    import pyarrow as pa

    if len(column) <= _SMALL_ARRAY:
        values = [str(v) for v in column.to_pylist()]
        if not pa.types.is_integer(column.type):
            values = ['"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values]
        return "{" + ",".join(values) + "}"
    import pyarrow.compute as pc

    text = pc.cast(column, pa.string())
    if not pa.types.is_integer(column.type):
        text = pc.replace_substring(pc.replace_substring(text, "\\", "\\\\"), '"', '\\"')
        text = pc.binary_join_element_wise('"', text, '"', "")
    joined = pc.binary_join(
        pa.ListArray.from_arrays(pa.array([0, len(text)], pa.int32()), text), ","
    )
    return "{" + str(joined[0].as_py()) + "}"


_CSV_BLOCK = 1 << 20
"""Bytes of CSV parsed at once: larger blocks parse no faster and hold more memory."""


def _parse_csv(parts: list[Any], read: Any, parse: Any, convert: Any) -> Iterator[Any]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = pacsv.read_csv(
        pa.py_buffer(b"".join(parts)), read, parse, convert,
        memory_pool=pa.system_memory_pool(),  # see staging.ARROW_POOL
    )  # fmt: skip
    yield from table.to_batches()
