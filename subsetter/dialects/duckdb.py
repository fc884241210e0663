"""DuckDB files through the duckdb driver (reflected from DuckDB's own catalog functions)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from typing import Any

import duckdb
import pyarrow as pa

from subsetter.catalog import Catalog, Column, ColumnType, ForeignKey, Index, Table, TableRef
from subsetter.dialects.base import Converter, Dialect, Row, TypeChoice
from subsetter.errors import ConnectionFailed

_SIMPLE_KINDS = {
    "TINYINT": ("integer", 16), "SMALLINT": ("integer", 16), "INTEGER": ("integer", 32),
    "BIGINT": ("integer", 64), "HUGEINT": ("integer", 64), "UTINYINT": ("integer", 16),
    "USMALLINT": ("integer", 32), "UINTEGER": ("integer", 64), "UBIGINT": ("integer", 64),
    "FLOAT": ("float", 64), "DOUBLE": ("float", 64), "VARCHAR": ("text", 64),
    "BOOLEAN": ("boolean", 64), "DATE": ("date", 64), "TIME": ("time", 64),
    "TIMESTAMP": ("timestamp", 64), "TIMESTAMP_NS": ("timestamp", 64),
    "TIMESTAMP_MS": ("timestamp", 64), "TIMESTAMP_S": ("timestamp", 64),
    "TIMESTAMP WITH TIME ZONE": ("timestamptz", 64), "INTERVAL": ("interval", 64),
    "UUID": ("uuid", 64), "JSON": ("json", 64), "BLOB": ("binary", 64),
}  # fmt: skip

_CROSS_ENGINE_TYPES = {
    "float": "DOUBLE",
    "text": "VARCHAR",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "time": "TIME",
    "timestamp": "TIMESTAMP",
    "timestamptz": "TIMESTAMPTZ",
    "interval": "INTERVAL",
    "uuid": "UUID",
    "json": "JSON",
    "binary": "BLOB",
    "year": "SMALLINT",
}


def parse_duckdb_type(text: str) -> ColumnType:
    """Turn DuckDB's spelling of a type into a ColumnType."""
    upper = text.upper().strip()
    if upper in _SIMPLE_KINDS:
        kind, bits = _SIMPLE_KINDS[upper]
        return ColumnType(kind, text, bits=bits)
    if upper.endswith("[]"):
        return ColumnType("array", text, item=parse_duckdb_type(text[:-2]))
    match = re.match(r"DECIMAL\((\d+),\s*(\d+)\)", upper)
    if match:
        return ColumnType("decimal", text, precision=int(match[1]), scale=int(match[2]))
    if upper.startswith("ENUM("):
        values = tuple(v.replace("''", "'") for v in re.findall(r"'((?:[^']|'')*)'", text))
        return ColumnType("enum", text, values=values, length=max(map(len, values), default=1))
    if upper.startswith("VARCHAR("):
        return ColumnType("string", text, length=int(re.sub(r"\D", "", upper) or 0) or None)
    return ColumnType("other", text)


class DuckDBDialect(Dialect):
    """DuckDB 1.1 and later, as a file."""

    name = "duckdb"
    label = "DuckDB"
    constraints_after_load = False
    can_alter_constraints = False
    # DuckDB checks foreign keys on every insert and cannot declare cycles: subsetter's own
    # verification stands in for them.
    declares_foreign_keys = False
    # Existing DuckDB tables with foreign keys (made by someone else): DuckDB rewrites an
    # UPDATE as delete + insert and checks a delete against the rows as they were when the
    # transaction began, so it refuses both on rows other rows reference (its documented
    # foreign-key limitations).
    can_update_referenced_rows = False
    can_empty_referenced_tables = False
    param = "?"
    max_keys_per_query = 5000
    type_names = _CROSS_ENGINE_TYPES
    decimal_type = "DECIMAL"
    max_decimal_precision = 38
    unbounded_decimal = TypeChoice(
        "VARCHAR", "unbounded NUMERIC kept as VARCHAR (DuckDB caps decimals at 38 digits)"
    )
    unbounded_string = TypeChoice("VARCHAR")
    text_type = "VARCHAR"
    json_type = "JSON"

    def connect(self, *, read_only: bool = False) -> Any:
        path = self.checked_path(read_only)
        try:
            conn = duckdb.connect(path, read_only=read_only)
            conn.execute("SET TimeZone = 'UTC'")
            # Bounded memory: DuckDB would otherwise cache up to 80% of RAM; it spills instead.
            conn.execute("SET memory_limit = '256MB'")
            return conn
        except duckdb.Error as exc:
            raise ConnectionFailed(
                f"cannot open {self.describe()}: {self.wrap_error(exc)}"
            ) from None

    def execute(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        # conn.cursor() would open a second DuckDB connection outside this one's transaction.
        result = conn.execute(sql, list(params)) if params else conn.execute(sql)
        return [tuple(r) for r in result.fetchall()] if result.description else []

    def execute_many(self, conn: Any, sql: str, rows: Sequence[Row]) -> None:
        conn.executemany(sql, [list(r) for r in rows])

    def exists(self) -> bool:
        return os.path.exists(self.path)

    def begin_snapshot(self, conn: Any) -> None:
        conn.execute("BEGIN TRANSACTION")

    def database_identity(self, conn: Any) -> tuple[Any, ...]:
        return self.file_identity()

    def identity_if_reachable(self) -> tuple[Any, ...] | None:
        return self.file_identity()  # the path names the file: no need to open (or create) it

    def is_driver_error(self, exc: BaseException) -> bool:
        return isinstance(exc, duckdb.Error)

    def reflect(self, schemas: Sequence[str] | None) -> Catalog:
        conn = self.connect(read_only=True)
        try:
            default = conn.execute("SELECT current_schema()").fetchone()[0]
            wanted = list(schemas) if schemas else [default]
            tables: dict[TableRef, Table] = {}
            fks: list[ForeignKey] = []
            for schema in wanted:
                self._reflect_schema(conn, schema, default, tables, fks)
            return Catalog(tables, tuple(fks), default, self.name)
        finally:
            conn.close()

    def _reflect_schema(
        self,
        conn: Any,
        schema: str,
        default: str,
        tables: dict[TableRef, Table],
        fks: list[ForeignKey],
    ) -> None:
        columns: dict[str, list[Column]] = {}
        for name, col, dtype, nullable, default_value in conn.execute(
            "SELECT c.table_name, c.column_name, c.data_type, c.is_nullable, c.column_default "
            "FROM information_schema.columns c JOIN information_schema.tables t "
            "ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
            "WHERE c.table_schema = ? AND t.table_type = 'BASE TABLE' "
            "ORDER BY c.table_name, c.ordinal_position",
            [schema],
        ).fetchall():
            autoinc = bool(default_value and "nextval(" in str(default_value))
            columns.setdefault(name, []).append(
                Column(col, parse_duckdb_type(dtype), nullable == "YES",
                       None if autoinc else default_value, autoinc)
            )  # fmt: skip
        keys: dict[str, dict[str, list[tuple[str, ...]]]] = {}
        for name, ctype, cols, parent, refs, cname in conn.execute(
            "SELECT table_name, constraint_type, constraint_column_names, referenced_table, "
            "referenced_column_names, constraint_name FROM duckdb_constraints() "
            "WHERE schema_name = ? ORDER BY table_name, constraint_index",
            [schema],
        ).fetchall():
            ref = TableRef(schema, name)
            if ctype == "FOREIGN KEY":
                fks.append(
                    ForeignKey(ref, tuple(cols), TableRef(schema, parent), tuple(refs), cname)
                )
            elif ctype in {"PRIMARY KEY", "UNIQUE"}:
                keys.setdefault(name, {}).setdefault(ctype, []).append(tuple(cols))
        indexes: dict[str, list[Index]] = {}
        for name, index_name, is_unique, expressions in conn.execute(
            "SELECT table_name, index_name, is_unique, expressions FROM duckdb_indexes() "
            "WHERE schema_name = ?",
            [schema],
        ).fetchall():
            cols = tuple(str(e).strip('"') for e in (expressions or []))
            if cols and all(re.fullmatch(r"\w+", c) for c in cols):
                indexes.setdefault(name, []).append(Index(index_name, cols, bool(is_unique)))
        for name, cols in columns.items():
            ref = TableRef(schema, name)
            own = keys.get(name, {})
            pk = own.get("PRIMARY KEY", [()])[0]
            tables[ref] = Table(ref, tuple(cols), pk, tuple(own.get("UNIQUE", [])),
                                tuple(indexes.get(name, [])))  # fmt: skip
        del default

    def stream(
        self, conn: Any, sql: str, params: Sequence[Any], size: int, kinds: Sequence[str] = ()
    ) -> Iterator[list[Row]]:
        # Arrow batches avoid the driver's per-value conversions (and its pytz dependency).
        from subsetter.staging import arrow_rows

        for batch in conn.sql(sql, params=list(params) or None).to_arrow_reader(size):
            yield arrow_rows(batch)

    def text_sql(self, expr: str) -> str:
        return f"CAST({expr} AS VARCHAR)"

    def all_tables(self, conn: Any) -> list[TableRef]:
        default = self.target_schema(conn)
        rows = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' AND table_catalog = current_database()"
        ).fetchall()
        return [TableRef(None if s == default else s, t) for s, t in rows]

    def existing_tables(self, conn: Any, refs: Sequence[TableRef]) -> list[TableRef]:
        names = {
            (r[0], r[1])
            for r in conn.execute(
                "SELECT table_schema, table_name FROM information_schema.tables"
            ).fetchall()
        }
        default = conn.execute("SELECT current_schema()").fetchone()[0]
        return [ref for ref in refs if (ref.schema or default, ref.name) in names]

    def target_schema(self, conn: Any) -> str | None:
        return str(conn.execute("SELECT current_schema()").fetchone()[0])

    def begin_load(self, conn: Any) -> None:
        conn.execute("BEGIN TRANSACTION")

    def insert_rows(
        self, conn: Any, target: TableRef, columns: Sequence[str], rows: list[Row]
    ) -> None:
        # Column-wise Arrow arrays load in one statement instead of one per row.
        arrays = {f"c{i}": _arrow_column([r[i] for r in rows]) for i in range(len(columns))}
        batch = pa.table(arrays)  # noqa: F841 - read by DuckDB's replacement scan below
        select = ", ".join(f"c{i}" for i in range(len(columns)))
        conn.execute(
            f"INSERT INTO {self.table_sql(target)} ({self.columns_sql(columns)}) "
            f"SELECT {select} FROM batch"
        )

    def reset_autoincrement(self, conn: Any, target: TableRef, column: str) -> None:
        top = conn.execute(
            f"SELECT COALESCE(MAX({self.quote(column)}), 0) + 1 FROM {self.table_sql(target)}"
        ).fetchone()[0]
        sequence = self.quote(f"{target.name}_{column}_seq")
        conn.execute(f"CREATE SEQUENCE IF NOT EXISTS {sequence} START WITH {int(top)}")
        conn.execute(
            f"ALTER TABLE {self.table_sql(target)} ALTER COLUMN {self.quote(column)} "
            f"SET DEFAULT nextval('{target.name}_{column}_seq')"
        )

    def target_converter(self, ctype: ColumnType, choice: TypeChoice) -> Converter | None:
        if choice.sql in {"JSON", "VARCHAR", "UUID"} and ctype.kind in {
            "json",
            "uuid",
            "array",
            "other",
        }:
            return lambda v: v if v is None or isinstance(v, str) else str(v)
        return None


def _arrow_column(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())
