"""SQLite files through the standard library's sqlite3: the embedded default."""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import os
import sqlite3
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from subsetter.catalog import Column, ColumnType, Table, TableRef
from subsetter.dialects.base import Converter, Row, TypeChoice
from subsetter.dialects.sqla import SQLAlchemyReflection
from subsetter.errors import ConnectionFailed
from subsetter.intervals import interval_text

_CROSS_ENGINE_TYPES = {
    "float": "REAL",
    "text": "TEXT",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "time": "TIME",
    "timestamp": "TIMESTAMP",
    "uuid": "VARCHAR(36)",
    "json": "TEXT",
    "binary": "BLOB",
    "year": "INTEGER",
}


class SQLiteDialect(SQLAlchemyReflection):
    """SQLite 3.24 and later."""

    name = "sqlite"
    label = "SQLite"
    supports_schemas = False
    constraints_after_load = False
    can_alter_constraints = False
    param = "?"
    max_keys_per_query = 5000
    max_params = 30000
    type_names = _CROSS_ENGINE_TYPES
    integer_types = {16: "INTEGER", 32: "INTEGER", 64: "INTEGER"}
    # SQLite checks foreign keys only with PRAGMA foreign_keys = ON; the load runs with it off.
    enforces_foreign_keys = False

    def connect(self, *, read_only: bool = False) -> Any:
        path = self.checked_path(read_only)
        try:
            if read_only:
                conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
            else:
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
                conn = sqlite3.connect(path, isolation_level=None)
            conn.create_function("md5", 1, _md5, deterministic=True)
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            raise ConnectionFailed(f"cannot open {self.describe()}: {exc}") from None
        return conn

    def exists(self) -> bool:
        return os.path.exists(self.path)

    def begin_snapshot(self, conn: Any) -> None:
        conn.execute("BEGIN")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()

    def database_identity(self, conn: Any) -> tuple[Any, ...]:
        return self.file_identity()

    def identity_if_reachable(self) -> tuple[Any, ...] | None:
        return self.file_identity()  # the path names the file: no need to open (or create) it

    def is_driver_error(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.Error)

    def catalog_schema(self, schema: str | None) -> str | None:
        return None if schema in (None, "main") else schema

    def source_converter(self, ctype: ColumnType) -> Converter | None:
        # SQLite stores dates as text and numbers as floats: parse them back to typed values.
        return _SOURCE_CONVERTERS.get(ctype.kind)

    def column_sql(self, column: Column, choice: TypeChoice, inline_pk: bool) -> str:
        if inline_pk and column.type.kind == "integer" and column.autoincrement:
            # INTEGER PRIMARY KEY makes the column the rowid: new rows continue after the maximum.
            return f"{self.quote(column.name)} INTEGER NOT NULL PRIMARY KEY"
        return super().column_sql(column, choice, inline_pk)

    def pk_declared_on_column(self, table: Table) -> bool:
        if len(table.primary_key) != 1:
            return False
        column = table.column(table.primary_key[0])
        return column.type.kind == "integer" and column.autoincrement

    def create_schema_sql(self, schema: str) -> str | None:
        return None

    def all_tables(self, conn: Any) -> list[TableRef]:
        rows = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' "
            "ESCAPE '\\'"
        ).fetchall()
        return [TableRef(None, r[0]) for r in rows]

    def existing_tables(self, conn: Any, refs: Sequence[TableRef]) -> list[TableRef]:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return [ref for ref in refs if ref.name in names]

    def begin_load(self, conn: Any) -> None:
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("BEGIN")

    def target_converter(self, ctype: ColumnType, choice: TypeChoice) -> Converter | None:
        return _to_sqlite

    def insert_rows(
        self, conn: Any, target: TableRef, columns: Sequence[str], rows: list[Row]
    ) -> None:
        placeholders = ", ".join("?" * len(columns))
        conn.executemany(
            f"INSERT INTO {self.table_sql(target)} ({self.columns_sql(columns)}) "
            f"VALUES ({placeholders})",
            rows,
        )


def _md5(value: Any) -> str | None:
    return None if value is None else hashlib.md5(str(value).encode()).hexdigest()


def _to_sqlite(value: Any) -> Any:
    """sqlite3 binds only str, int, float, bytes and None: spell the rest as SQLite does."""
    if value is None or isinstance(value, str | int | float | bytes):
        return value
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    if isinstance(value, dt.timedelta | pa.MonthDayNano):
        return interval_text(value)
    return str(value)


def _parse(kind: str) -> Converter:
    def convert(value: Any) -> Any:
        if value is None or not isinstance(value, str | int | float):
            return value
        if kind == "decimal":
            return decimal.Decimal(str(value))
        if kind == "boolean":
            return (
                bool(int(value))
                if not isinstance(value, str)
                else value.lower() in {"1", "true", "t"}
            )
        if isinstance(value, int | float):
            return value
        if kind == "date":
            return dt.date.fromisoformat(value[:10])
        if kind in {"timestamp", "timestamptz"}:
            return dt.datetime.fromisoformat(value)
        if kind == "time":
            return dt.time.fromisoformat(value)
        return value

    return convert


_SOURCE_CONVERTERS = {
    k: _parse(k) for k in ("decimal", "boolean", "date", "timestamp", "timestamptz", "time")
}
