"""The bulk paths: COPY/CSV through Arrow, LOAD DATA, parallel readers in one snapshot.

Values that CSV handling gets wrong first (quotes, separators, line breaks, backslashes, the
text "NULL", empty strings next to NULLs) must arrive exactly, through the Arrow paths that
carry plain column types; a value the Arrow parser refuses sends its table through the row
path without losing or doubling a row; and every reader connection sees the one snapshot.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pymysql
import pytest

import subsetter
from subsetter.dialects import dialect_for
from subsetter.dialects.base import ArrowUnfit
from subsetter.dialects.mysql import MySQLDialect
from subsetter.dialects.postgres import PostgresDialect
from tests import oracle
from tests.conftest import Backend

pytestmark = pytest.mark.server

TRICKY = [
    'quote " inside',
    "comma, inside",
    "line\nbreak",
    "crlf\r\nbreak",
    "back\\slash \\N \\n",
    "NULL",
    "",
    "  spaces  ",
    "Zoë ✓ 日本",
    '"quoted"',
]

PLAIN = """
CREATE TYPE mood AS ENUM ('sad', 'ok');
CREATE TABLE plain (
  id int PRIMARY KEY, small smallint, big bigint, price numeric(12, 4), ratio double precision,
  name varchar(40), body text, flag boolean, day date, stamp timestamp, uid uuid, feeling mood
);
CREATE TABLE plain_child (id int PRIMARY KEY, plain_id int NOT NULL REFERENCES plain(id));
"""


def _plain_source(make_backend: Callable[[str], Backend]) -> Backend:
    source = make_backend("postgres")
    source.execute(PLAIN)
    for i, text in enumerate(TRICKY, start=1):
        source.execute(
            "INSERT INTO plain VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (i, -i, 9_000_000_000 + i, Decimal("1234.5678") * i, 0.1 * i, text, text,
             i % 2 == 0, dt.date(2024, 2, 29), dt.datetime(2024, 2, 29, 23, 59, 59, 123456),
             f"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a{i:02x}", "ok"),
        )  # fmt: skip
    source.execute("INSERT INTO plain (id) VALUES (99)")  # every column NULL but the key
    source.execute("INSERT INTO plain_child SELECT id, id FROM plain")
    return source


def _run(source: Backend, target: Backend, tmp_path: Path, **options: Any) -> subsetter.RunResult:
    config = subsetter.parse_config(
        f"source: {{url: '{source.url}'}}\nseeds:\n  - {{table: plain_child}}\n",
        tmp_path / "bulk.yml",
        {},
    )
    return subsetter.run(config, subsetter.RunOptions(target_url=target.url, **options))


class _Calls:
    """Counts calls of a dialect method, then calls it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, cls: type, name: str) -> None:
        self.count = 0
        original = getattr(cls, name)

        def counted(dialect: Any, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return original(dialect, *args, **kwargs)

        monkeypatch.setattr(cls, name, counted)


@pytest.mark.parametrize("target_engine", ["postgres", "mysql", "sqlite", "duckdb"])
def test_tricky_text_survives_the_arrow_paths(
    make_backend: Callable[[str], Backend],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    target_engine: str,
) -> None:
    source = _plain_source(make_backend)
    target = make_backend(target_engine)
    streamed = _Calls(monkeypatch, PostgresDialect, "stream_arrow")
    loaded = _Calls(monkeypatch, type(dialect_for(target.url, "target")), "load_arrow")

    result = _run(source, target, tmp_path)

    assert result.verification is not None and result.verification.ok
    assert result.rows == {"plain": len(TRICKY) + 1, "plain_child": len(TRICKY) + 1}
    assert streamed.count >= 2, "both tables were read through COPY and pyarrow"
    if target_engine == "postgres":
        assert loaded.count == 2, "both tables were written by COPY"
    if target_engine == "mysql":  # LOAD DATA cannot read pyarrow's true/false: plain by INSERT
        assert loaded.count == 1, "plain_child was written by LOAD DATA"
    want = {r["id"]: r for r in oracle.rows(source, "plain")}
    got = {r["id"]: r for r in oracle.rows(target, "plain")}
    assert got.keys() == want.keys()
    for key, row in want.items():
        for column in ("small", "big", "price", "name", "body", "day", "stamp", "feeling"):
            assert got[key][column] == row[column], (key, column)
        if row["flag"] is None:
            assert got[key]["flag"] is None
        else:
            assert bool(got[key]["flag"]) == row["flag"], key
        assert (got[key]["ratio"] is None) == (row["ratio"] is None)
        if row["ratio"] is not None:
            assert float(got[key]["ratio"]) == float(row["ratio"]), key
        assert (got[key]["uid"] is None) == (row["uid"] is None)
        assert str(got[key]["uid"] or "") == str(row["uid"] or ""), key
    assert got[7]["name"] == "" and got[99]["name"] is None, "empty text and NULL stay apart"
    assert got[6]["name"] == "NULL", "the text NULL is not a NULL"


def test_an_unparsable_batch_sends_the_table_through_rows(
    make_backend: Callable[[str], Backend], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A query whose text pyarrow refuses is read again as rows: no row lost, none doubled."""
    source = _plain_source(make_backend)
    target = make_backend("postgres")
    original = PostgresDialect.stream_arrow

    def refuse_after_first_batch(
        dialect: PostgresDialect, conn: Any, sql: str, params: Any, schema: Any
    ) -> Iterator[Any]:
        batches = original(dialect, conn, sql, params, schema)
        first = next(batches, None)
        if first is not None:
            yield first.slice(0, max(1, first.num_rows // 2))  # part of the rows got staged
        for _ in batches:
            pass
        raise ArrowUnfit("simulated: a value pyarrow cannot parse")

    monkeypatch.setattr(PostgresDialect, "stream_arrow", refuse_after_first_batch)
    rows = _Calls(monkeypatch, PostgresDialect, "stream")

    result = _run(source, target, tmp_path, readers=1)

    assert rows.count >= 2, "each table fell back to the row path"
    assert result.rows == {"plain": len(TRICKY) + 1, "plain_child": len(TRICKY) + 1}
    assert sorted(r["id"] for r in oracle.rows(target, "plain")) == sorted(
        r["id"] for r in oracle.rows(source, "plain")
    )


def test_unparsable_text_ends_the_copy_and_keeps_the_snapshot(
    make_backend: Callable[[str], Backend],
) -> None:
    source = _plain_source(make_backend)
    dialect = PostgresDialect(dialect_for(source.url, "source").url)
    conn = dialect.connect(read_only=True)
    try:
        dialect.begin_snapshot(conn)
        wrong = pa.schema([("c0", pa.int64()), ("c1", pa.int64())])  # name is text, not int
        with pytest.raises(ArrowUnfit):
            list(dialect.stream_arrow(conn, "SELECT id, name FROM plain", [], wrong))
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        assert conn.execute("SELECT count(*) FROM plain").fetchone() == (len(TRICKY) + 1,)
    finally:
        conn.close()


def test_readers_share_one_snapshot(make_backend: Callable[[str], Backend]) -> None:
    source = _plain_source(make_backend)
    dialect = PostgresDialect(dialect_for(source.url, "source").url)
    first, second, fresh = (dialect.connect(read_only=True) for _ in range(3))
    try:
        dialect.begin_snapshot(first)
        snapshot = dialect.share_snapshot(first)
        assert snapshot
        source.execute("INSERT INTO plain (id) VALUES (1000)")  # committed after the snapshot
        dialect.join_snapshot(second, snapshot)
        count = "SELECT count(*) FROM plain"
        assert first.execute(count).fetchone() == (len(TRICKY) + 1,)
        assert second.execute(count).fetchone() == (len(TRICKY) + 1,), "second sees the snapshot"
        assert fresh.execute(count).fetchone() == (len(TRICKY) + 2,), "a new reader sees it all"
    finally:
        for conn in (first, second, fresh):
            conn.close()


def test_parallel_readers_stage_what_one_reader_stages(
    make_backend: Callable[[str], Backend], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many small key batches on two connections: the same subset as one connection."""
    source = make_backend("postgres")
    source.execute(
        "CREATE TABLE a (id int PRIMARY KEY);"
        "CREATE TABLE b (id int PRIMARY KEY, a_id int NOT NULL REFERENCES a(id));"
        "CREATE TABLE c (b_id int, n int, note text, PRIMARY KEY (b_id, n),"
        " FOREIGN KEY (b_id) REFERENCES b(id));"
        "CREATE TABLE d (id int PRIMARY KEY, b_id int, n int,"
        " FOREIGN KEY (b_id, n) REFERENCES c(b_id, n));"
        "INSERT INTO a SELECT g FROM generate_series(1, 300) g;"
        "INSERT INTO b SELECT g, 1 + g % 300 FROM generate_series(1, 900) g;"
        "INSERT INTO c SELECT b, n, 'x' || b"
        " FROM generate_series(1, 900) b, generate_series(1, 3) n;"
        "INSERT INTO d SELECT g, 1 + g % 900, 1 + g % 3 FROM generate_series(1, 2000) g;"
    )
    monkeypatch.setattr(PostgresDialect, "max_keys_per_query", 37)
    config = subsetter.parse_config(
        f"source: {{url: '{source.url}'}}\nseeds:\n  - {{table: a, where: 'id <= 120'}}\n",
        tmp_path / "par.yml",
        {},
    )
    results = {}
    for readers in (1, 3):
        target = make_backend("postgres")
        run = subsetter.run(config, subsetter.RunOptions(target_url=target.url, readers=readers))
        assert run.verification is not None and run.verification.ok
        results[readers] = {t: oracle.rows(target, t) for t in ("a", "b", "c", "d")}
        assert run.queries > 20, "the key batches made many queries"
    for table in ("a", "b", "c", "d"):
        key = repr
        assert sorted(map(key, results[1][table])) == sorted(map(key, results[3][table])), table
    assert len(results[3]["a"]) == 120 and len(results[3]["c"]) == 3 * len(results[3]["b"])


def test_mysql_target_without_local_infile_inserts_rows(
    make_backend: Callable[[str], Backend], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A target the URL trusts but whose server refuses LOAD DATA LOCAL still gets every row."""
    source = _plain_source(make_backend)
    target = make_backend("mysql")
    monkeypatch.setattr(MySQLDialect, "trusts_local_infile", True)
    original = MySQLDialect.begin_load

    def refuse(dialect: MySQLDialect, conn: Any) -> None:
        original(dialect, conn)
        dialect._local_infile = False  # what SELECT @@GLOBAL.local_infile = 0 leads to

    monkeypatch.setattr(MySQLDialect, "begin_load", refuse)
    local = _Calls(monkeypatch, MySQLDialect, "_load_data_local")

    result = _run(source, target, tmp_path)

    assert local.count == 0
    assert result.verification is not None and result.verification.ok
    got = {r["id"]: r["name"] for r in oracle.rows(target, "plain")}
    assert got == {r["id"]: r["name"] for r in oracle.rows(source, "plain")}


@pytest.mark.parametrize("trusted", [False, True], ids=["insert", "local-infile"])
def test_mysql_arrow_paths_keep_tricky_text(
    make_backend: Callable[[str], Backend],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    trusted: bool,
) -> None:
    """Both MySQL Arrow paths write every value exactly: multi-row INSERT of pyarrow's CSV
    text (the default) and LOAD DATA LOCAL INFILE (a target URL with local_infile=true)."""
    source = _plain_source(make_backend)
    source.execute("ALTER TABLE plain DROP COLUMN flag")  # booleans take the row path
    target = make_backend("mysql")
    loaded = _Calls(monkeypatch, MySQLDialect, "load_arrow")
    local = _Calls(monkeypatch, MySQLDialect, "_load_data_local")
    url = target.url + ("?local_infile=true" if trusted else "")
    # Statements of ~2 rows: the batch is cut into many INSERTs, and none is lost or doubled.
    monkeypatch.setattr(MySQLDialect, "_max_statement", 500)
    monkeypatch.setattr(MySQLDialect, "begin_load", _keeping_max_statement(MySQLDialect.begin_load))

    result = _run(source, Backend("mysql", url, target.database), tmp_path)

    assert result.verification is not None and result.verification.ok
    assert loaded.count == 2 and local.count == (2 if trusted else 0)
    want = {r["id"]: r for r in oracle.rows(source, "plain")}
    got = {r["id"]: r for r in oracle.rows(target, "plain")}
    assert got.keys() == want.keys()
    for key, row in want.items():
        for column in ("small", "big", "price", "name", "body", "day", "stamp", "feeling"):
            assert got[key][column] == row[column], (key, column)
        assert str(got[key]["uid"] or "") == str(row["uid"] or ""), key
        assert (got[key]["ratio"] is None) == (row["ratio"] is None)
        if row["ratio"] is not None:
            assert float(got[key]["ratio"]) == float(row["ratio"]), key
    assert got[7]["name"] == "" and got[99]["name"] is None, "empty text and NULL stay apart"
    assert got[6]["name"] == "NULL", "the text NULL is not a NULL"


def test_mysql_row_over_the_statement_limit_takes_the_row_path(
    make_backend: Callable[[str], Backend], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row whose INSERT would pass the statement limit sends its table through the rows
    path, after the rows already inserted are taken out again: none lost, none doubled."""
    source = _plain_source(make_backend)
    source.execute("ALTER TABLE plain DROP COLUMN flag")
    source.execute("UPDATE plain SET body = repeat('x', 3000) WHERE id = 9")
    target = make_backend("mysql")
    monkeypatch.setattr(MySQLDialect, "_max_statement", 1000)
    monkeypatch.setattr(MySQLDialect, "begin_load", _keeping_max_statement(MySQLDialect.begin_load))
    rows = _Calls(monkeypatch, MySQLDialect, "insert_rows")

    result = _run(source, target, tmp_path)

    assert result.verification is not None and result.verification.ok
    assert rows.count >= 1, "plain went through the row path"
    want = sorted((r["id"], r["body"]) for r in oracle.rows(source, "plain"))
    assert sorted((r["id"], r["body"]) for r in oracle.rows(target, "plain")) == want


def _keeping_max_statement(original: Callable[[MySQLDialect, Any], None]) -> Any:
    def begin_load(dialect: MySQLDialect, conn: Any) -> None:
        limit = dialect._max_statement
        original(dialect, conn)
        dialect._max_statement = limit

    return begin_load


def test_mysql_target_sends_no_local_file_unless_trusted(
    make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    """A target connection cannot be made to send a file of this machine (LOAD DATA LOCAL),
    unless the URL trusts the target with local_infile=true."""
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret\n")
    target = make_backend("mysql")
    target.execute("CREATE TABLE loot (line TEXT)")
    statement = f"LOAD DATA LOCAL INFILE '{secret}' INTO TABLE loot"
    for url, sent in ((target.url, False), (target.url + "?local_infile=true", True)):
        dialect = dialect_for(url, "target")
        conn = dialect.connect()
        try:
            if sent:
                dialect.execute(conn, statement)
            else:
                with pytest.raises(pymysql.Error):
                    dialect.execute(conn, statement)
        finally:
            conn.close()
        assert target.query("SELECT line FROM loot") == ([("s3cret",)] if sent else [])


@pytest.mark.parametrize(
    "keys",
    [
        pa.array([1, -2, 3_000_000_000], pa.int64()),
        pa.array(["plain", 'quo"te', "back\\slash", "a,b", "{brace}", "ünï", " sp ", ""]),
        pa.array([dt.date(2024, 2, 29), dt.date(5, 1, 1)], pa.date32()),
        pa.array([Decimal("5.00"), Decimal("-0.10"), Decimal("0E-2")], pa.decimal128(10, 2)),
        pa.array([Decimal("1E-7"), Decimal("123.4567890")], pa.decimal128(20, 7)),
        pa.array(["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]),
    ],
)
def test_key_array_literal_in_python_as_in_pyarrow(
    keys: pa.Array, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small key lists are spelled in Python (no pyarrow.compute import), large ones by
    pyarrow.compute: the same literal either way."""
    from subsetter.dialects import postgres

    small = postgres._array_literal(keys)
    monkeypatch.setattr(postgres, "_SMALL_ARRAY", 0)
    assert small == postgres._array_literal(keys)
