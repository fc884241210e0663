"""An independent checker for end-to-end tests, written on the raw drivers, not on subsetter.

It reads each engine's own catalog (pg_catalog, information_schema, SQLite pragmas,
`duckdb_constraints()`) and its rows, and normalises values so the same row compares equal on
every engine. If subsetter's reflection or loading is wrong, this module must not share the bug.

Scope: the default schema only (`public`, the current MariaDB database, `main`).
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from functools import partial
from typing import Any, NamedTuple, Protocol

Row = dict[str, Any]
# DuckDB lists the objects of every attached database: keep the file's own default schema.
_DUCKDB_MAIN = "database_name = current_database() AND schema_name = 'main'"


class Database(Protocol):
    """What the oracle needs of a database: `tests.conftest.Backend` provides it."""

    name: str

    def query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        """Return all rows of one statement."""
        ...


class FK(NamedTuple):
    """A declared foreign key; compares equal to `fixtures_db.ExpectedFK` with the same fields."""

    child: str
    child_columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str, ...]


def quote(db: Database, name: str) -> str:
    """Quote an identifier for `db`'s engine (mixed case, reserved words, spaces)."""
    if db.name == "mysql":
        return "`" + name.replace("`", "``") + "`"
    return '"' + name.replace('"', '""') + '"'


def tables(db: Database) -> list[str]:
    """List the base tables (no views) of the default schema, sorted."""
    if db.name == "sqlite":
        sql = (
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' "
            "ESCAPE '\\'"
        )
    elif db.name == "postgres":
        sql = (
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
        )
    elif db.name == "mysql":
        sql = (
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'"
        )
    else:
        sql = f"SELECT table_name FROM duckdb_tables() WHERE {_DUCKDB_MAIN}"
    return sorted(r[0] for r in db.query(sql))


def columns(db: Database, table: str) -> list[str]:
    """List `table`'s columns in their declared order."""
    if db.name == "sqlite":
        return [r[1] for r in db.query(f"PRAGMA table_info({quote(db, table)})")]
    if db.name == "postgres":
        sql = (
            "SELECT attname FROM pg_attribute WHERE attrelid = "
            "(SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            " WHERE n.nspname = 'public' AND c.relname = %s) "
            "AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
        )
    elif db.name == "mysql":
        sql = (
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = DATABASE() AND table_name = %s ORDER BY ordinal_position"
        )
    else:
        sql = (
            f"SELECT column_name FROM duckdb_columns() WHERE {_DUCKDB_MAIN} "
            "AND table_name = ? ORDER BY column_index"
        )
    return [r[0] for r in db.query(sql, (table,))]


def primary_key(db: Database, table: str) -> list[str]:
    """List `table`'s primary-key columns in key order; empty when it has none."""
    if db.name == "sqlite":
        info = db.query(f"PRAGMA table_info({quote(db, table)})")
        return [r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5])]
    if db.name == "postgres":
        sql = (
            "SELECT a.attname FROM pg_constraint k "
            "JOIN pg_class c ON c.oid = k.conrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "CROSS JOIN LATERAL unnest(k.conkey) WITH ORDINALITY AS u(attnum, pos) "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = u.attnum "
            "WHERE n.nspname = 'public' AND c.relname = %s AND k.contype = 'p' ORDER BY u.pos"
        )
        return [r[0] for r in db.query(sql, (table,))]
    if db.name == "mysql":
        sql = (
            "SELECT column_name FROM information_schema.key_column_usage "
            "WHERE table_schema = DATABASE() AND table_name = %s "
            "AND constraint_name = 'PRIMARY' ORDER BY ordinal_position"
        )
        return [r[0] for r in db.query(sql, (table,))]
    sql = (
        f"SELECT constraint_column_names FROM duckdb_constraints() WHERE {_DUCKDB_MAIN} "
        "AND table_name = ? AND constraint_type = 'PRIMARY KEY'"
    )
    found = db.query(sql, (table,))
    return list(found[0][0]) if found else []


def foreign_keys(db: Database) -> list[FK]:
    """List every declared foreign key of the default schema, sorted.

    A key whose referenced columns are implicit (SQLite `REFERENCES parent`) is resolved to the
    parent's primary key.
    """
    if db.name == "sqlite":
        return sorted(_sqlite_fks(db))
    if db.name == "postgres":
        sql = (
            "SELECT k.oid, c.relname, p.relname, ca.attname, pa.attname FROM pg_constraint k "
            "JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class p ON p.oid = k.confrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "CROSS JOIN LATERAL unnest(k.conkey, k.confkey) WITH ORDINALITY AS u(ck, pk, pos) "
            "JOIN pg_attribute ca ON ca.attrelid = c.oid AND ca.attnum = u.ck "
            "JOIN pg_attribute pa ON pa.attrelid = p.oid AND pa.attnum = u.pk "
            "WHERE k.contype = 'f' AND n.nspname = 'public' ORDER BY k.oid, u.pos"
        )
        return sorted(_group_fks(db.query(sql)))
    if db.name == "mysql":
        sql = (
            "SELECT constraint_name, table_name, referenced_table_name, column_name, "
            "referenced_column_name FROM information_schema.key_column_usage "
            "WHERE table_schema = DATABASE() AND referenced_table_name IS NOT NULL "
            "ORDER BY table_name, constraint_name, ordinal_position"
        )
        # constraint names are unique per table only: key the groups by both
        found = [((r[1], r[0]), *r[1:]) for r in db.query(sql)]
        return sorted(_group_fks(found))
    sql = (
        "SELECT table_name, constraint_column_names, referenced_table, referenced_column_names "
        f"FROM duckdb_constraints() WHERE {_DUCKDB_MAIN} AND constraint_type = 'FOREIGN KEY'"
    )
    return sorted(FK(r[0], tuple(r[1]), r[2], tuple(r[3])) for r in db.query(sql))


def _sqlite_fks(db: Database) -> Iterable[FK]:
    for table in tables(db):
        groups: dict[int, list[tuple[Any, ...]]] = {}
        for r in db.query(f"PRAGMA foreign_key_list({quote(db, table)})"):
            groups.setdefault(r[0], []).append(r)
        for parts in groups.values():
            parts.sort(key=lambda r: r[1])
            parent = parts[0][2]
            parent_cols = tuple(r[4] for r in parts)
            if any(c is None for c in parent_cols):
                parent_cols = tuple(primary_key(db, parent))
            yield FK(table, tuple(r[3] for r in parts), parent, parent_cols)


def _group_fks(found: Sequence[tuple[Any, ...]]) -> Iterable[FK]:
    """Fold (constraint id, child, parent, child column, parent column) rows into FKs."""
    groups: dict[Any, list[tuple[Any, ...]]] = {}
    for r in found:
        groups.setdefault(r[0], []).append(r)
    for parts in groups.values():
        yield FK(parts[0][1], tuple(r[3] for r in parts), parts[0][2], tuple(r[4] for r in parts))


def count(db: Database, table: str) -> int:
    """Count the rows of `table`."""
    return int(db.query(f"SELECT COUNT(*) FROM {quote(db, table)}")[0][0])


def rows(db: Database, table: str) -> list[Row]:
    """Read every row of `table` as {column: normalised value}, in no particular order."""
    cols = columns(db, table)
    select = ", ".join(quote(db, c) for c in cols)
    return [
        {c: normalise(v) for c, v in zip(cols, r, strict=True)}
        for r in db.query(f"SELECT {select} FROM {quote(db, table)}")
    ]


_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?$"
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?$")


def normalise(value: Any) -> Any:
    """Map a driver value to one canonical, hashable form shared by all four engines.

    - numbers: integral values become `int`, others `Decimal` (a float through its shortest
      repr), so NUMERIC 9.90, REAL 9.9 and Decimal('9.9') agree; bool becomes 0/1;
    - datetimes: aware ones move to UTC and drop the zone; ISO text (SQLite stores timestamps
      as text) is parsed, the same way on both sides of a comparison;
    - times: PyMySQL's TIME (a timedelta) and ISO text become `time`;
    - bytes, bytearray, memoryview become bytes; UUID becomes lower-case text; a set (a MariaDB
      SET, where the driver decodes it) becomes its sorted comma-separated text;
    - JSON: dicts, lists (PostgreSQL arrays, DuckDB lists) and text that parses as a JSON
      object or array become canonical JSON text;
    - text loses trailing spaces (PostgreSQL pads CHAR(n), MariaDB trims it).
    """
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float | Decimal):
        return _number(value)
    if isinstance(value, datetime):
        return _naive_utc(value)
    if isinstance(value, timedelta):
        return _time_of_day(value)
    if isinstance(value, date | time):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict | list | tuple):
        return _canonical_json(value)
    if isinstance(value, set | frozenset):
        return ",".join(sorted(map(str, value)))
    if isinstance(value, str):
        return _text(value)
    return value


def _number(value: int | float | Decimal) -> int | Decimal:
    if isinstance(value, int):
        return value
    dec = Decimal(repr(value)) if isinstance(value, float) else value
    if not dec.is_finite():
        return dec
    return int(dec) if dec == dec.to_integral_value() else dec.normalize()


def _time_of_day(value: timedelta) -> time | timedelta:
    """Turn PyMySQL's TIME (a timedelta) into the `time` other drivers return, when in range."""
    if timedelta(0) <= value < timedelta(days=1):
        return (datetime.min + value).time()
    return value


def _naive_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def _text(value: str) -> Any:
    if _DATETIME.match(value):
        try:
            return _naive_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return value
    if _TIME.match(value):
        return time.fromisoformat(value)
    if _DATE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return value
    if value and value[0] in "[{":
        try:
            return _canonical_json(json.loads(value))
        except ValueError:
            pass
    return value.rstrip(" ")


def _canonical_json(value: Any) -> str:
    return json.dumps(_jsonable(value), sort_keys=True, separators=(",", ":"), default=str)


def _jsonable(value: Any) -> Any:
    """Normalise nested values so a PostgreSQL array and its JSON text give the same string."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float | Decimal) and not isinstance(value, bool):
        num = _number(value)
        return num if isinstance(num, int) else float(num)
    if isinstance(value, str | int | bool) or value is None:
        return value
    return str(normalise(value))


def orphans(
    db: Database,
    child: str,
    child_cols: Sequence[str],
    parent: str,
    parent_cols: Sequence[str],
) -> int:
    """Count child rows whose foreign key is wholly non-NULL and finds no parent row.

    A key with any NULL part is not checked (MATCH SIMPLE, what all four engines enforce).
    """
    q = partial(quote, db)
    not_null = " AND ".join(f"c.{q(col)} IS NOT NULL" for col in child_cols)
    join = " AND ".join(
        f"p.{q(pc)} = c.{q(cc)}" for cc, pc in zip(child_cols, parent_cols, strict=True)
    )
    sql = (
        f"SELECT COUNT(*) FROM {q(child)} c WHERE {not_null} "
        f"AND NOT EXISTS (SELECT 1 FROM {q(parent)} p WHERE {join})"
    )
    return int(db.query(sql)[0][0])


def all_orphans(db: Database, fks: Iterable[FK] | None = None) -> dict[FK, int]:
    """Count orphans for each FK (default: every declared one); return only those with any."""
    found = {fk: orphans(db, *fk) for fk in (foreign_keys(db) if fks is None else fks)}
    return {fk: n for fk, n in found.items() if n}


def assert_subset_of(
    source: Database, target: Database, tables_: Iterable[str] | None = None
) -> None:
    """Assert every target row equals some source row, matched by primary key.

    Tables without a primary key match by whole row, as a multiset: a target may not hold a
    row more often than the source does. Default tables: all of the target's.
    """
    names = list(tables(target) if tables_ is None else tables_)
    source_tables = set(tables(source))
    problems: list[str] = []
    for table in names:
        if table not in source_tables:
            problems.append(f"{table}: not a table of the source")
            continue
        problems.extend(_table_problems(source, target, table))
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise AssertionError(
            f"target is not a subset of source ({len(problems)} problems):\n  {shown}{more}"
        )


def _table_problems(source: Database, target: Database, table: str) -> list[str]:
    src_cols, tgt_cols = columns(source, table), columns(target, table)
    if src_cols != tgt_cols:
        return [f"{table}: columns differ: source {src_cols}, target {tgt_cols}"]
    key = primary_key(source, table)
    src, tgt = rows(source, table), rows(target, table)
    if not key:
        return _multiset_problems(table, src, tgt)
    by_key = {tuple(r[c] for c in key): r for r in src}
    problems = []
    for row in tgt:
        k = tuple(row[c] for c in key)
        label = ", ".join(f"{c}={v!r}" for c, v in zip(key, k, strict=True))
        match = by_key.get(k)
        if match is None:
            problems.append(f"{table} ({label}): no source row with this key")
        elif match != row:
            diff = "; ".join(
                f"{c}: source {match[c]!r} != target {row[c]!r}" for c in _differing(match, row)
            )
            problems.append(f"{table} ({label}): {diff}")
    return problems


def _differing(a: Row, b: Row) -> list[str]:
    """List the columns where two rows with the same columns differ."""
    return [c for c in a if a[c] != b.get(c)]


def _multiset_problems(table: str, src: list[Row], tgt: list[Row]) -> list[str]:
    have = Counter(_frozen(r) for r in src)
    want = Counter(_frozen(r) for r in tgt)
    return [
        f"{table} (no primary key): row {dict(r)} appears {n} times in target, {have[r]} in source"
        for r, n in want.items()
        if n > have[r]
    ]


def _frozen(row: Row) -> tuple[tuple[str, Any], ...]:
    return tuple(row.items())
