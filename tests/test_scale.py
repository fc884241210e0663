"""A wide schema (2,000 tables, 5,000 foreign keys) reflects and plans correctly; big rows stream.

Timings are printed by `bench/schema_scale.py` and `bench/wide_rows.py`, never asserted here.
The plan is checked against closures computed from the generator's own list of keys: the seed
table's parents, transitively, and every child of the root seed, transitively, each with all
their parents. Every engine gets the whole schema: on an idle machine the MariaDB test takes
about 6 s (building 2,000 InnoDB tables, one file each, is most of it; up to ~40 s under load)
and the PostgreSQL one about 3 s.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pymysql
import pytest

import subsetter
from fixtures_db.many_tables import build_many_tables, edges, name
from tests.conftest import MYSQL, Backend

REPO = Path(__file__).resolve().parent.parent


def _closure(start: set[int], links: dict[int, set[int]]) -> set[int]:
    found, todo = set(start), list(start)
    while todo:
        for nxt in links.get(todo.pop(), ()):
            if nxt not in found:
                found.add(nxt)
                todo.append(nxt)
    return found


def _check_wide_schema(url: str, tables: int, fks: int, tmp_path: Path) -> None:
    last = tables - 1
    config = subsetter.parse_config(
        f"source: {{url: '{url}'}}\n"
        f"seeds: [{{table: {name(last)}, children: false}}, {{table: {name(0)}, limit: 1}}]\n",
        tmp_path / "wide.yml",
        {},
    )
    plan, catalog = subsetter.plan_subset(config)
    assert len(catalog.tables) == tables
    assert len([fk for fk in catalog.foreign_keys if not fk.virtual]) == fks
    parents: dict[int, set[int]] = {}
    children: dict[int, set[int]] = {}
    for child, parent in edges(tables, fks):
        parents.setdefault(child, set()).add(parent)
        children.setdefault(parent, set()).add(child)
    wanted = _closure({last}, parents) | _closure(_closure({0}, children), parents)
    assert {t.name for t in plan.tables} == {name(i) for i in wanted}
    order = {t.name: i for i, t in enumerate(plan.tables)}
    for child, parent in edges(tables, fks):
        if name(child) in order:
            assert order[name(parent)] < order[name(child)], "parents load first"


def test_two_thousand_tables_reflect_and_plan(tmp_path: Path) -> None:
    path = tmp_path / "wide.sqlite"
    build_many_tables(f"sqlite:///{path}")
    _check_wide_schema(f"sqlite:///{path}", 2000, 5000, tmp_path)


@pytest.mark.server
def test_wide_schema_on_postgres(make_backend: Callable[[str], Backend], tmp_path: Path) -> None:
    db = make_backend("postgres")
    build_many_tables(db.url, 2000, 5000)
    _check_wide_schema(db.url, 2000, 5000, tmp_path)


@pytest.mark.server
def test_wide_schema_on_mariadb(make_backend: Callable[[str], Backend], tmp_path: Path) -> None:
    db = make_backend("mysql")
    build_many_tables(db.url, 2000, 5000)
    _check_wide_schema(db.url, 2000, 5000, tmp_path)


# ---------------------------------------------------------------- big values stream


MEASURE = r"""
import json, re, sys
import subsetter
config = subsetter.parse_config(sys.argv[1], None, {})
result = subsetter.run(config, subsetter.RunOptions(target_url=sys.argv[2]))
# VmHWM, not ru_maxrss: Linux keeps ru_maxrss across fork and exec, so a child started from a
# big pytest process would report the parent's size; VmHWM belongs to this process's memory.
status = open("/proc/self/status").read()
peak = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) // 1024
print(json.dumps({"rows": result.total_rows, "peak_mb": peak}))
"""


@contextlib.contextmanager
def _mysql_packet(size: int) -> Iterator[None]:
    """Raise MariaDB's max_allowed_packet (a global: new sessions see it) and restore it after."""
    conn = pymysql.connect(**MYSQL, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT @@GLOBAL.max_allowed_packet")
            (before,) = cur.fetchone()
            cur.execute(f"SET GLOBAL max_allowed_packet = {int(size)}")
        try:
            yield
        finally:
            with conn.cursor() as cur:
                cur.execute(f"SET GLOBAL max_allowed_packet = {int(before)}")
    finally:
        conn.close()


def _run_measured(source: Backend, target: Backend, config: str) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, config, target.url],
        capture_output=True, text=True, timeout=600, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    figures: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


_BLOB = 100_000_000


@pytest.mark.server
@pytest.mark.parametrize("engine", ["postgres", "mysql"])
def test_a_100_mb_value_streams_in_bounded_memory(
    engine: str, make_backend: Callable[[str], Backend]
) -> None:
    """One 100 MB value among small rows: memory grows by copies of it, not by rows.

    The bound: ~250 MB for a run of small rows (Python, DuckDB, Arrow, the drivers; see
    `bench/tpch.py`) plus so many copies of the value. PostgreSQL: libpq's input buffer and
    result (hex text, twice the size), the bytes, Arrow, DuckDB while it settles, then the
    COPY text; 836 MB measured, ~1.1 GB before (with 100-row batches). MariaDB's multi-row
    INSERT escapes the value in Python several times over (decode, translate, format,
    encode): 1.28 GB measured, the load path's to shrink. A batch per 10,000 rows, or a
    budget kept at four times the value, would not pass.
    """
    source, target = make_backend(engine), make_backend(engine)
    with _mysql_packet(256 << 20) if engine == "mysql" else contextlib.nullcontext():
        if engine == "postgres":
            source.execute("CREATE TABLE wide (id INTEGER PRIMARY KEY, body BYTEA NOT NULL)")
            source.execute(
                "INSERT INTO wide SELECT i, decode(md5(i::text), 'hex') "
                "FROM generate_series(1, 1000) i"
            )
            source.execute(f"INSERT INTO wide VALUES (0, decode(repeat('ab', {_BLOB}), 'hex'))")
        else:
            source.execute("CREATE TABLE wide (id INTEGER PRIMARY KEY, body LONGBLOB NOT NULL)")
            source.execute("INSERT INTO wide SELECT seq, UNHEX(MD5(seq)) FROM seq_1_to_1000")
            source.execute(f"INSERT INTO wide VALUES (0, REPEAT('x', {_BLOB}))")
        config = f"source: {{url: '{source.url}'}}\npassthrough: [wide]\n"
        figures = _run_measured(source, target, config)
    assert figures["rows"] == 1001
    assert target.query("SELECT count(*), max(length(body)) FROM wide")[0] == (1001, _BLOB)
    copies = 7 if engine == "postgres" else 12
    assert figures["peak_mb"] < 250 + copies * _BLOB // 2**20, figures


@pytest.mark.server
@pytest.mark.parametrize("engine", ["postgres", "mysql"])
def test_a_1_gb_table_of_wide_rows_streams_in_bounded_memory(
    engine: str, make_backend: Callable[[str], Backend]
) -> None:
    """1 GB of 1 MB rows, at the default batch size: memory stays that of a small run.

    10,000 rows to a batch would be 10 GB: batches from the source and reads from staging
    are sized by bytes (~8-16 MB), and staging spills the rest to disk. The bound is that of
    a run of small rows plus a few batches; a batch per 10,000 rows could not pass it.
    """
    source, target = make_backend(engine), make_backend(engine)
    rows, width = 1000, 1_000_000
    with _mysql_packet(64 << 20) if engine == "mysql" else contextlib.nullcontext():
        if engine == "postgres":
            source.execute("CREATE TABLE wide (id INTEGER PRIMARY KEY, body BYTEA NOT NULL)")
            source.execute(
                "INSERT INTO wide SELECT i, decode(repeat(md5(i::text), "
                f"{width // 16}), 'hex') FROM generate_series(1, {rows}) i"
            )
        else:
            source.execute("CREATE TABLE wide (id INTEGER PRIMARY KEY, body LONGBLOB NOT NULL)")
            for start in range(1, rows + 1, 100):
                source.execute(
                    f"INSERT INTO wide SELECT seq, UNHEX(REPEAT(MD5(seq), {width // 16})) "
                    f"FROM seq_{start}_to_{start + 99}"
                )
        config = f"source: {{url: '{source.url}'}}\npassthrough: [wide]\n"
        figures = _run_measured(source, target, config)
    assert figures["rows"] == rows
    assert target.query("SELECT count(*), sum(length(body)) FROM wide")[0] == (rows, rows * width)
    assert figures["peak_mb"] < 250 + 100, figures


@pytest.mark.server
def test_a_value_over_max_allowed_packet_is_named(
    make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    """A value the target's max_allowed_packet cannot carry: one clear error, no retries.

    MariaDB drops the connection of a client whose statement is too large, which would read
    as "server has gone away" and be retried in vain.
    """
    source, target = make_backend("mysql"), make_backend("mysql")
    with _mysql_packet(64 << 20):
        source.execute("CREATE TABLE files (id INTEGER PRIMARY KEY, body LONGBLOB NOT NULL)")
        source.execute("INSERT INTO files VALUES (1, 'small'), (2, REPEAT('x', 20000000))")
    config = tmp_path / "files.yml"
    config.write_text(f"source: {{url: '{source.url}'}}\npassthrough: [files]\n")
    with _mysql_packet(16 << 20):  # MariaDB's default, whatever the server was set to
        done = subprocess.run(
            [sys.executable, "-m", "subsetter", "run", str(config), "--target-url", target.url],
            capture_output=True, text=True, timeout=120, cwd=REPO,
        )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "table files, column body: a value of 19.1 MiB does not fit" in done.stderr
    assert "max_allowed_packet is 16.0 MiB" in done.stderr
    assert "SET GLOBAL max_allowed_packet = 67108864" in done.stderr
    assert "gone away" not in done.stderr and "attempt" not in done.stderr
    assert "Traceback" not in done.stderr
    assert target.query("SHOW TABLES") == []


@pytest.mark.server
@pytest.mark.parametrize("engine", ["postgres", "mysql"])
def test_big_rows_stream_in_bounded_memory(
    engine: str, make_backend: Callable[[str], Backend]
) -> None:
    """60 MB of 200 KB rows and one 8 MB value go through in bounded memory.

    The bound: ~150 MB for Python, DuckDB, Arrow and the drivers, staging's DuckDB budget
    (32 MB, raised for a statement that needs more), and a few copies of the largest value and
    of one batch. `bench/wide_rows.py` shows the peak staying flat from 100 MB to 1 GB of rows.
    """
    source, target = make_backend(engine), make_backend(engine)
    blob = "LONGBLOB" if engine == "mysql" else "BYTEA"
    source.execute(f"CREATE TABLE wide (id INTEGER PRIMARY KEY, body {blob} NOT NULL)")
    if engine == "postgres":
        source.execute(
            "INSERT INTO wide SELECT i, decode(repeat(md5(i::text), 6250), 'hex') "
            "FROM generate_series(1, 300) i"
        )
        source.execute("INSERT INTO wide VALUES (301, decode(repeat('ab', 8000000), 'hex'))")
    else:
        for start in range(1, 301, 50):
            source.execute(
                "INSERT INTO wide SELECT seq, UNHEX(REPEAT(MD5(seq), 6250)) "
                f"FROM seq_{start}_to_{start + 49}"
            )
        source.execute("INSERT INTO wide VALUES (301, REPEAT('x', 8000000))")
    config = f"source: {{url: '{source.url}'}}\npassthrough: [wide]\n"
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, config, target.url],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["rows"] == 301
    assert target.query("SELECT count(*), max(length(body)) FROM wide")[0] == (301, 8_000_000)
    assert figures["peak_mb"] < 150 + 128 + 4 * 8 + 100, figures
