"""MySQL and MariaDB through PyMySQL: snapshot reads, unbuffered cursors, batched INSERT.

Rows reach a target by multi-row INSERT statements that pyarrow writes as CSV text, never by
``LOAD DATA LOCAL INFILE`` unless the target URL says ``local_infile=true``: with LOCAL enabled,
the server names the file the client sends, and PyMySQL sends any file it is asked for, so a
hostile or compromised target could read the machine's files.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import pymysql
import pymysql.cursors
import sqlalchemy as sa

from subsetter.catalog import Catalog, Column, ColumnType, ForeignKey, Table, TableRef
from subsetter.dialects.base import (
    ArrowUnfit,
    Converter,
    InlineForeignKey,
    Row,
    TableStats,
    TypeChoice,
    ValueTooLarge,
    first_fetch,
    next_fetch,
)
from subsetter.dialects.sqla import SQLAlchemyReflection, compiled
from subsetter.errors import ConfigError, ConnectionFailed
from subsetter.intervals import interval_text

_GEOMETRY = {"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring",
             "multipolygon", "geometrycollection"}  # fmt: skip

# Too many connections, user connection limits, cannot connect, server gone away, lost
# connection, connection killed (MariaDB).
_TRANSIENT_CODES = {1040, 1203, 1226, 2002, 2003, 2006, 2013, 1927}

_CROSS_ENGINE_TYPES = {
    "float": "DOUBLE",
    "text": "LONGTEXT",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "time": "TIME(6)",
    "timestamp": "DATETIME(6)",
    "uuid": "CHAR(36)",
    "json": "JSON",
    "binary": "LONGBLOB",
    "year": "YEAR",
}


class MySQLDialect(SQLAlchemyReflection):
    """MySQL 8 and MariaDB 10.5 and later."""

    name = "mysql"
    label = "MySQL"
    supports_schemas = False
    transactional_ddl = False
    primary_key_in_create = True
    max_identifier_length = 64
    param = "%s"
    quote_char = "`"
    max_keys_per_query = 2000
    type_names = _CROSS_ENGINE_TYPES
    integer_types = {16: "SMALLINT", 32: "INT", 64: "BIGINT"}
    decimal_type = "DECIMAL"
    max_decimal_precision = 65
    unbounded_decimal = TypeChoice("DECIMAL(65, 30)", "unbounded NUMERIC kept as DECIMAL(65, 30)")
    max_varchar = 16383
    unbounded_string = TypeChoice("VARCHAR(768)", "unbounded string kept as VARCHAR(768)")
    text_type = "LONGTEXT"
    json_type = "JSON"
    can_disable_fk_checks = True
    foreign_keys_need_index = True
    retry_delays = (0.5, 1.5)

    def lossy_type(self, ctype: ColumnType, source: str) -> TypeChoice:
        if ctype.kind == "enum":
            labels = ", ".join("'" + v.replace("'", "''") + "'" for v in ctype.values)
            return TypeChoice(f"ENUM({labels})")
        if ctype.kind == "timestamptz":
            return TypeChoice("DATETIME(6)", "timestamp with time zone kept as DATETIME(6) in UTC")
        return super().lossy_type(ctype, source)

    def connect(self, *, read_only: bool = False) -> Any:
        u = self.url
        # URL query arguments go to PyMySQL as they are (ssl_ca=..., ssl_disabled=true, ...).
        extra: dict[str, Any] = {
            k: {"true": True, "false": False}.get(v.lower(), v)
            for k, v in u.query.items()
            if isinstance(v, str) and k not in ("charset", "local_infile")
        }
        try:
            conn = pymysql.connect(
                host=u.host or "localhost",
                port=u.port or 3306,
                user=u.username or "",
                password=u.password or "",
                database=u.database or None,
                charset=str(u.query.get("charset", "utf8mb4")),
                connect_timeout=10,
                autocommit=True,
                # The server would choose which local file is sent: only a target the URL
                # trusts (local_infile=true) may ask, and never on a connection that reads.
                local_infile=self.trusts_local_infile and not read_only,
                **extra,
            )
            self.keep_alive(conn)
            return conn
        except pymysql.Error as exc:
            raise ConnectionFailed(
                f"cannot connect to {self.describe()}: {self.wrap_error(exc)}",
                transient=self.is_transient(exc),
            ) from None
        except TypeError as exc:  # an unknown option in the URL's query string
            raise ConfigError(f"{self.describe()}: unsupported connection option ({exc})") from None

    @property
    def trusts_local_infile(self) -> bool:
        """The URL asks for LOAD DATA LOCAL INFILE (``?local_infile=true``): a trusted target."""
        value = self.url.query.get("local_infile", "")
        return isinstance(value, str) and value.lower() in ("true", "1")

    def keep_alive(self, conn: Any) -> None:
        # wait_timeout ends a session idle that long (the source idles while staging works, the
        # target while the source is read); net_write_timeout ends a streaming read whose client
        # pauses to stage a batch. Raised, never lowered, for this session only.
        with conn.cursor() as cur:
            cur.execute(
                "SET SESSION wait_timeout = GREATEST(@@session.wait_timeout, 86400), "
                "net_write_timeout = GREATEST(@@session.net_write_timeout, 3600), "
                "net_read_timeout = GREATEST(@@session.net_read_timeout, 3600)"
            )

    def is_transient(self, exc: BaseException) -> bool:
        args = getattr(exc, "args", ())
        code = args[0] if args else None
        if isinstance(exc, pymysql.err.InterfaceError):
            return True  # PyMySQL's "(0, '')": the socket is closed
        return isinstance(exc, pymysql.OperationalError) and code in _TRANSIENT_CODES

    def is_alive(self, conn: Any) -> bool:
        try:
            conn.ping(reconnect=False)
        except Exception:
            return False
        return True

    def begin_snapshot(self, conn: Any) -> None:
        with conn.cursor() as cur:
            cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")

    def database_identity(self, conn: Any) -> tuple[Any, ...]:
        with conn.cursor() as cur:
            cur.execute("SELECT @@hostname, @@port, @@datadir, DATABASE()")
            return ("mysql", *cur.fetchone())

    def is_driver_error(self, exc: BaseException) -> bool:
        return isinstance(exc, pymysql.Error)

    # ------------------------------------------------------------------ size estimates

    def table_stats(self, conn: Any, refs: Sequence[TableRef]) -> dict[TableRef, TableStats]:
        """``information_schema.TABLES``: InnoDB's sampled row count and data length."""
        rows = self.execute(
            conn,
            "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_ROWS, DATA_LENGTH, "
            "TABLE_SCHEMA = DATABASE() FROM information_schema.TABLES "
            "WHERE TABLE_TYPE = 'BASE TABLE'",
        )
        wanted = set(refs)
        out = {}
        for schema, name, count, size, is_default in rows:
            ref = TableRef(None if is_default else schema, name)
            if ref in wanted:
                out[ref] = TableStats(
                    None if count is None else int(count), None if size is None else int(size)
                )
        return out

    def planner_rows(self, conn: Any, table: TableRef, where: str) -> int | None:
        """``rows`` times ``filtered`` of the first line of ``EXPLAIN``, which runs nothing."""
        cur = conn.cursor()
        try:
            cur.execute(f"EXPLAIN SELECT 1 FROM {self.table_sql(table)} WHERE ({where})")
            names = [d[0].lower() for d in cur.description]
            first = dict(zip(names, cur.fetchone() or (), strict=False))
        finally:
            cur.close()
        if first.get("rows") is None:
            return None
        return int(float(first["rows"]) * float(first.get("filtered") or 100) / 100)

    def wrap_error(self, exc: BaseException) -> str:
        args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
        if isinstance(exc, pymysql.Error) and len(args) == 2:
            return super().wrap_error(Exception(f"({args[0]}) {args[1]}"))
        return super().wrap_error(exc)

    # ------------------------------------------------------------------ reflection

    def catalog_schema(self, schema: str | None) -> str | None:
        return None if schema in (None, self.url.database) else schema

    def special_type(self, satype: Any, dialect: sa.Dialect) -> ColumnType | None:
        from sqlalchemy.dialects import mysql

        if isinstance(satype, mysql.SET):
            return ColumnType("set", compiled(satype, dialect), values=tuple(satype.values))
        if isinstance(satype, mysql.YEAR):
            return ColumnType("year", compiled(satype, dialect))
        return None

    def adjust_catalog(self, conn: Any, catalog: Catalog) -> Catalog:
        """Fix what SQLAlchemy's parse of SHOW CREATE TABLE gets wrong; name geometry columns."""
        return self._geometry_columns(conn, self._backticked_names(conn, catalog))

    def _backticked_names(self, conn: Any, catalog: Catalog) -> Catalog:
        """Undo the doubled backticks SQLAlchemy leaves in names parsed from SHOW CREATE TABLE.

        A column named ``a`b`` comes back as ``a``b`` and a foreign key with such a name is
        dropped (an "Unknown schema content" warning): column, key and index names are unescaped
        here, and the foreign keys of those tables are read from information_schema instead.
        """
        if not any("``" in c.name for t in catalog.tables.values() for c in t.columns) and not any(
            "`" in ref.name for ref in catalog.tables
        ):
            return catalog

        def fix(names: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(n.replace("``", "`") for n in names)

        tables = {
            ref: Table(
                ref,
                tuple(replace(c, name=c.name.replace("``", "`")) for c in t.columns),
                fix(t.primary_key),
                tuple(fix(k) for k in t.unique_keys),
                tuple(
                    replace(i, name=i.name.replace("``", "`"), columns=fix(i.columns))
                    for i in t.indexes
                ),
            )
            for ref, t in catalog.tables.items()
        }
        rows = conn.exec_driver_sql(
            "SELECT constraint_name, table_schema, table_name, column_name, "
            "referenced_table_schema, referenced_table_name, referenced_column_name "
            "FROM information_schema.key_column_usage WHERE referenced_table_name IS NOT NULL "
            "ORDER BY table_schema, table_name, constraint_name, ordinal_position"
        ).all()
        grouped: dict[tuple[str, str, str], list[Any]] = {}
        for row in rows:
            grouped.setdefault((row[0], row[1], row[2]), []).append(row)
        fks = []
        for (name, schema, table), cols in grouped.items():
            child = TableRef(self.catalog_schema(schema), table)
            parent = TableRef(self.catalog_schema(cols[0][4]), cols[0][5])
            if child in tables and parent in tables:
                fks.append(
                    ForeignKey(child, tuple(c[3] for c in cols), parent,
                               tuple(c[6] for c in cols), name)
                )  # fmt: skip
        return Catalog(tables, tuple(fks), catalog.default_schema, catalog.dialect)

    def _geometry_columns(self, conn: Any, catalog: Catalog) -> Catalog:
        """Give geometry columns (unknown to SQLAlchemy) a binary kind and their native name."""
        rows = conn.exec_driver_sql(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = DATABASE()"
        ).all()
        spatial = {(r[0], r[1]): r[2] for r in rows if str(r[2]).lower() in _GEOMETRY}
        if not spatial:
            return catalog
        tables = {}
        for ref, table in catalog.tables.items():
            columns = tuple(
                Column(c.name, _geometry(spatial[(ref.name, c.name)]),
                       c.nullable, c.default, c.autoincrement)
                if (ref.name, c.name) in spatial else c
                for c in table.columns
            )  # fmt: skip
            indexes = tuple(
                i for i in table.indexes if not any((ref.name, c) in spatial for c in i.columns)
            )
            tables[ref] = Table(ref, columns, table.primary_key, table.unique_keys, indexes)
        return Catalog(tables, catalog.foreign_keys, catalog.default_schema, catalog.dialect)

    # ------------------------------------------------------------------ reading

    def text_sql(self, expr: str) -> str:
        return f"CAST({expr} AS CHAR)"

    def concat_sql(self, parts: Sequence[str]) -> str:
        return f"CONCAT({', '.join(parts)})"

    def stream(
        self, conn: Any, sql: str, params: Sequence[Any], size: int, kinds: Sequence[str] = ()
    ) -> Iterator[list[Row]]:
        # An unbuffered cursor streams rows instead of loading the whole result.
        with conn.cursor(pymysql.cursors.SSCursor) as cur:
            cur.execute(sql, params or None)
            want = first_fetch(size)
            while batch := cur.fetchmany(want):
                want = next_fetch(batch, size)
                yield list(batch)

    def source_converter(self, ctype: ColumnType) -> Converter | None:
        if ctype.kind == "set":
            order = {v: i for i, v in enumerate(ctype.values)}
            return lambda v: (
                v
                if v is None or isinstance(v, str)
                else ",".join(sorted(v, key=lambda x: order.get(x, len(order))))
            )
        if ctype.kind == "time":
            return _timedelta_to_time
        if ctype.kind in {"date", "timestamp", "timestamptz"}:
            return _zero_date_to_none
        return None

    # ------------------------------------------------------------------ target

    def column_sql(self, column: Column, choice: TypeChoice, inline_pk: bool) -> str:
        text = super().column_sql(column, choice, inline_pk)
        if column.autoincrement and column.type.kind == "integer":
            text += " AUTO_INCREMENT"
        return text

    def create_table_sql(
        self,
        table: Table,
        target: TableRef,
        types: Sequence[TypeChoice],
        inline_keys: bool,
        foreign_keys: Sequence[InlineForeignKey] = (),
    ) -> list[str]:
        # AUTO_INCREMENT needs its key at CREATE time, and InnoDB clusters rows by the primary
        # key anyway, so the primary key is declared inline; the rest comes after the load.
        [create] = super().create_table_sql(table, target, types, False, ())
        keys = [f"PRIMARY KEY ({self.columns_sql(table.primary_key)})"] if table.primary_key else []
        for col in table.columns:
            # InnoDB wants an AUTO_INCREMENT column to lead some index.
            if col.autoincrement and table.primary_key[:1] != (col.name,):
                keys.append(f"KEY ({self.quote(col.name)})")
        if keys:
            head, _, tail = create.rpartition("\n)")
            create = f"{head},\n  " + ",\n  ".join(keys) + f"\n){tail}"
        return [create + " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"]

    def create_schema_sql(self, schema: str) -> str | None:
        return None

    def repoint_foreign_keys_sql(self, conn: Any, tables: Sequence[TableRef]) -> list[str]:
        names = sorted({t.name for t in tables})
        if not names:
            return []
        rows = self.execute(
            conn,
            "SELECT rc.constraint_name, rc.table_name, rc.referenced_table_name, "
            "rc.update_rule, rc.delete_rule, k.column_name, k.referenced_column_name "
            "FROM information_schema.referential_constraints rc "
            "JOIN information_schema.key_column_usage k ON k.constraint_schema = "
            "rc.constraint_schema AND k.table_name = rc.table_name "
            "AND k.constraint_name = rc.constraint_name "
            f"WHERE rc.constraint_schema = DATABASE() AND rc.referenced_table_name IN "
            f"({', '.join(['%s'] * len(names))}) "
            "ORDER BY rc.table_name, rc.constraint_name, k.ordinal_position",
            names,
        )
        keys: dict[tuple[str, str], tuple[str, str, str, list[str], list[str]]] = {}
        for name, child, parent, on_update, on_delete, column, ref_column in rows:
            if child in names:
                continue  # a table of the run: replaced with its own keys
            key = keys.setdefault((child, name), (parent, on_update, on_delete, [], []))
            key[3].append(column)
            key[4].append(ref_column)
        out = []
        for (child, name), (parent, on_update, on_delete, columns, ref_columns) in keys.items():
            table, constraint = self.table_sql(TableRef(None, child)), self.quote(name)
            out.append(f"ALTER TABLE {table} DROP FOREIGN KEY {constraint}")
            out.append(
                f"ALTER TABLE {table} ADD CONSTRAINT {constraint} FOREIGN KEY "
                f"({self.columns_sql(columns)}) REFERENCES {self.quote(parent)} "
                f"({self.columns_sql(ref_columns)}) ON DELETE {on_delete} ON UPDATE {on_update}"
            )
        return out

    def foreign_key_name(self, table: str, columns: Sequence[str], ordinal: int) -> str:
        # Foreign-key names are unique per database in InnoDB, so a shadow table cannot take
        # the names its predecessor holds; RENAME TABLE renames keys named
        # `<table>_ibfk_<n>` with their table, so the shadow's keys arrive under the final name.
        return f"{table}_ibfk_{ordinal}"

    def rename_tables_sql(self, renames: Sequence[tuple[TableRef, TableRef]]) -> list[str]:
        # One RENAME TABLE is atomic: every table is renamed, or none is. Foreign keys follow
        # their parent tables to the new names.
        pairs = ", ".join(f"{self.table_sql(a)} TO {self.table_sql(b)}" for a, b in renames)
        return [f"RENAME TABLE {pairs}"]

    def all_tables(self, conn: Any) -> list[TableRef]:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'"
            )
            return [TableRef(None, r[0]) for r in cur.fetchall()]

    def existing_tables(self, conn: Any, refs: Sequence[TableRef]) -> list[TableRef]:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()"
            )
            names = {r[0] for r in cur.fetchall()}
        return [ref for ref in refs if ref.name in names]

    def target_converter(self, ctype: ColumnType, choice: TypeChoice) -> Converter | None:
        if ctype.kind == "timestamptz":
            return _to_naive_utc
        if ctype.kind == "interval":
            return interval_text
        return None

    # Kinds whose CSV text (every value quoted, NULL bare) MySQL reads back unchanged, as the
    # literals of an INSERT or through LOAD DATA.
    arrow_load_kinds = frozenset(
        {"integer", "decimal", "float", "string", "text", "date", "timestamp", "uuid", "enum"}
    )
    _arrow_load = True
    """Arrow batches go in whole: the tables are new ones (a run's own shadow tables)."""
    _local_infile = False
    """LOAD DATA LOCAL INFILE is used: the URL trusts the target and the server allows it."""
    _max_statement = 1 << 20
    """Bytes of one INSERT statement: under the server's max_allowed_packet."""

    def loads_arrow(self, types: Sequence[ColumnType], converters: Sequence[Any]) -> bool:
        return self._arrow_load and super().loads_arrow(types, converters)

    def load_arrow(
        self, conn: Any, target: TableRef, columns: Sequence[str], batches: Iterator[Any]
    ) -> int:
        if self._local_infile:
            return self._load_data_local(conn, target, columns, batches)
        # pyarrow writes each batch as CSV (every value double-quoted, quotes doubled, NULL
        # bare), which is also how MySQL spells the literals of one VALUES row: the server
        # parses the rows, instead of PyMySQL escaping every value in Python (2-3x faster).
        import pyarrow.csv as pacsv

        options = pacsv.WriteOptions(
            include_header=False, null_string="NULL", quoting_style="all_valid"
        )
        head = f"INSERT INTO {self.table_sql(target)} ({self.columns_sql(columns)}) VALUES ("
        rows = 0
        with conn.cursor() as cur:
            try:
                for batch in batches:
                    if not batch.num_rows:
                        continue
                    for part in self._statement_parts(_escaped(batch), options):
                        cur.execute(head.encode() + part + b")")
                    rows += batch.num_rows
            except ArrowUnfit:
                # The table is this run's own: emptied, it takes every row by the row path.
                cur.execute(f"DELETE FROM {self.table_sql(target)}")
                raise
        return rows

    def _statement_parts(self, batch: Any, options: Any) -> Iterator[bytes]:
        """The batch's rows as VALUES lists (``a, b), (c, d``), each under the statement limit."""
        import pyarrow.csv as pacsv

        out = io.BytesIO()
        pacsv.write_csv(batch, out, options)
        text = out.getvalue()
        if len(text) > self._max_statement:
            if batch.num_rows == 1:  # one value near max_allowed_packet: the row path's affair
                raise ArrowUnfit(f"a row of {len(text)} bytes")
            half = batch.num_rows // 2
            yield from self._statement_parts(batch.slice(0, half), options)
            yield from self._statement_parts(batch.slice(half), options)
            return
        # _escaped left no line break inside a value: each one ends a row.
        yield text[:-1].replace(b"\n", b"),(")

    def _load_data_local(
        self, conn: Any, target: TableRef, columns: Sequence[str], batches: Iterator[Any]
    ) -> int:
        # LOAD DATA LOCAL INFILE from a CSV file pyarrow writes, for a target the URL trusts.
        import pyarrow.csv as pacsv

        options = pacsv.WriteOptions(
            include_header=False, null_string="NULL", quoting_style="all_valid"
        )
        rows = 0
        with tempfile.NamedTemporaryFile(prefix="subsetter-", suffix=".csv") as file:
            for batch in batches:
                pacsv.write_csv(batch, file, options)
                rows += batch.num_rows
            file.flush()
            path = file.name.replace("\\", "\\\\").replace("'", "\\'")
            with conn.cursor() as cur:
                # A bare NULL is NULL; "NULL" in quotes is the text. ESCAPED BY '' keeps
                # backslashes as they are; doubled quotes inside a value stand for one.
                cur.execute(
                    f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE {self.table_sql(target)} "
                    "CHARACTER SET utf8mb4 FIELDS TERMINATED BY ',' ENCLOSED BY '\"' "
                    "ESCAPED BY '' LINES TERMINATED BY '\\n' "
                    f"({self.columns_sql(columns)})"
                )
                # With LOCAL, the server turns data errors (a value too long, a duplicate key)
                # into warnings, as it cannot stop the client's file midway. Any warning: the
                # table (created empty by this run) is emptied again and the rows go through
                # INSERT, which fails or succeeds exactly as it always did.
                cur.execute("SHOW WARNINGS LIMIT 1")
                warning = cur.fetchone()
                if warning:
                    cur.execute(f"DELETE FROM {self.table_sql(target)}")
                    raise ArrowUnfit(str(warning[2]))
        return rows

    _max_packet = 16 << 20
    """The target's max_allowed_packet: no statement sent may be larger (``insert_rows``)."""

    def _read_max_packet(self, conn: Any) -> None:
        with conn.cursor() as cur:
            cur.execute("SELECT @@SESSION.max_allowed_packet")
            row = cur.fetchone()
        if row and row[0]:
            self._max_packet = int(row[0])

    def insert_rows(
        self, conn: Any, target: TableRef, columns: Sequence[str], rows: list[Row]
    ) -> None:
        with self._packet_checked(conn, target, columns, rows):
            super().insert_rows(conn, target, columns, rows)

    def insert_rows_on_conflict(
        self,
        conn: Any,
        target: TableRef,
        columns: Sequence[str],
        key: Sequence[str],
        rows: list[Row],
        on_conflict: str,
    ) -> None:
        with self._packet_checked(conn, target, columns, rows):
            self._insert_on_conflict(conn, target, columns, key, rows, on_conflict)

    @contextlib.contextmanager
    def _packet_checked(
        self, conn: Any, target: TableRef, columns: Sequence[str], rows: list[Row]
    ) -> Iterator[None]:
        """Refuse a row that cannot fit in one statement, naming it, instead of a lost connection.

        The server drops the connection of a client whose statement exceeds max_allowed_packet
        ("server has gone away"), which looks like a network failure and would be retried in
        vain. A value larger than the limit fails here before it is sent; a row just under it
        that escaping makes larger is recognised by the lost connection that follows.
        """
        size, column = _largest(rows, columns)
        if size + _STATEMENT_SLACK > self._max_packet:
            raise ValueTooLarge(self._packet_message(column, size))
        try:
            yield
        except pymysql.err.OperationalError as exc:
            if exc.args and exc.args[0] in _PACKET_CODES and 2 * size > self._max_packet:
                raise ValueTooLarge(self._packet_message(column, size)) from None
            raise

    def _packet_message(self, column: str, size: int) -> str:
        wanted = min(1 << 30, 1 << (2 * size + _STATEMENT_SLACK).bit_length())
        return (
            f"column {column}: a value of {_mb(size)} does not fit in one "
            f"statement to {self.describe()}, whose max_allowed_packet is "
            f"{_mb(self._max_packet)}. Raise it on that server (up to 1 GB): SET GLOBAL "
            f"max_allowed_packet = {wanted}; and, to keep it after a restart, "
            f"max_allowed_packet = {wanted >> 20}M under [mysqld] in its configuration file"
        )

    def begin_load(self, conn: Any) -> None:
        self._arrow_load = True
        with conn.cursor() as cur:
            # MySQL 8 ships with local_infile off: then rows go in by INSERT.
            cur.execute("SELECT @@GLOBAL.local_infile, @@SESSION.max_allowed_packet")
            local, packet = cur.fetchone()
            self._local_infile = self.trusts_local_infile and bool(int(local))
            self._max_statement = max(1 << 16, int(packet) // 2)
            self._max_packet = int(packet)
            cur.execute("SET SESSION foreign_key_checks = 0")
            cur.execute("SET SESSION unique_checks = 0")
            # "..." must be a string (the INSERT literals), not an identifier.
            cur.execute("SET SESSION sql_mode = REPLACE(@@SESSION.sql_mode, 'ANSI_QUOTES', '')")

    def begin_existing_load(self, conn: Any) -> None:
        # No DDL happens into existing tables, so the load is one InnoDB transaction: DELETE
        # and INSERT roll back together (TRUNCATE would commit).
        # Into existing tables rows go by INSERT: LOAD DATA's fallback empties the table.
        self._arrow_load = False
        self._read_max_packet(conn)
        with conn.cursor() as cur:
            cur.execute("SET SESSION foreign_key_checks = 1")
            cur.execute("SET SESSION unique_checks = 1")
        conn.begin()

    def disable_fk_checks(self, conn: Any) -> None:
        with conn.cursor() as cur:
            cur.execute("SET SESSION foreign_key_checks = 0")

    def _insert_on_conflict(
        self,
        conn: Any,
        target: TableRef,
        columns: Sequence[str],
        key: Sequence[str],
        rows: list[Row],
        on_conflict: str,
    ) -> None:
        # ON DUPLICATE KEY, not INSERT IGNORE: IGNORE would also drop rows failing a foreign
        # key or a NOT NULL, silently. Skipping is an update that changes nothing.
        changed = [c for c in columns if c not in key] if on_conflict == "update" else []
        sets = ", ".join(f"{self.quote(c)} = VALUES({self.quote(c)})" for c in changed)
        if not sets:
            first = self.quote(columns[0])
            sets = f"{first} = {first}"
        placeholders = ", ".join([self.param] * len(columns))
        self.execute_many(
            conn,
            f"INSERT INTO {self.table_sql(target)} ({self.columns_sql(columns)}) "
            f"VALUES ({placeholders}) ON DUPLICATE KEY UPDATE {sets}",
            rows,
        )

    # DROP TABLE without TEMPORARY commits the transaction implicitly.
    drop_scratch_sql = "DROP TEMPORARY TABLE"

    def joined_update_sql(
        self, target: str, scratch: str, columns: Sequence[str], match: str, where: str
    ) -> str:
        # MySQL has no UPDATE ... FROM: the join goes in the UPDATE's table list.
        sets = ", ".join(f"t.{self.quote(c)} = s.{self.quote(c)}" for c in columns)
        return f"UPDATE {target} AS t JOIN {scratch} AS s ON {match} SET {sets} WHERE {where}"


def _escaped(batch: Any) -> Any:
    """The batch with backslashes and line breaks in its text escaped as MySQL literals read
    them (``\\\\``, ``\\n``, ``\\r``): then every line of its CSV text is one row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = []
    for column in batch.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            for raw, escape in (("\\", "\\\\"), ("\n", "\\n"), ("\r", "\\r")):
                column = pc.replace_substring(column, raw, escape)
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


_PACKET_CODES = {2006, 2013, 1153}
"""Server gone away, lost connection, packet too large: what an oversized statement causes."""
_STATEMENT_SLACK = 64 << 10
"""Bytes of a one-row INSERT besides its largest value (the SQL text, other columns)."""


def _largest(rows: Sequence[Row], columns: Sequence[str]) -> tuple[int, str]:
    """The largest text or binary value in ``rows`` (its length in bytes) and its column."""
    size, where = 0, 0
    for row in rows:
        for i, value in enumerate(row):
            if isinstance(value, bytes | bytearray | memoryview):
                length = len(value)
            elif isinstance(value, str):
                length = len(value) if value.isascii() else len(value.encode())
            else:
                continue
            if length > size:
                size, where = length, i
    return size, columns[where] if columns else ""


def _mb(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def _geometry(name: str) -> ColumnType:
    note = f"mysql {name.upper()} kept as bytes (MySQL's internal SRID + WKB form)"
    return ColumnType("binary", name.upper(), foreign_note=note)


def _timedelta_to_time(value: Any) -> Any:
    if isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
        if 0 <= seconds < 86400:
            return (dt.datetime.min + value).time()
        raise ValueError(f"TIME value {value} is outside 00:00:00-23:59:59")
    return value


def _zero_date_to_none(value: Any) -> Any:
    # PyMySQL returns MySQL's zero dates ('0000-00-00') as strings: they have no real value.
    return None if isinstance(value, str) and value.startswith("0000-00-00") else value


def _to_naive_utc(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value
