"""A wide schema (2,000 tables, 5,000 foreign keys) reflects and plans correctly; big rows stream.

Timings are printed by `bench/schema_scale.py` and `bench/wide_rows.py`, never asserted here.
The plan is checked against closures computed from the generator's own list of keys: the seed
table's parents, transitively, and every child of the root seed, transitively, each with all
their parents. PostgreSQL and MariaDB get a quarter of the schema: building 2,000 tables there
takes longer than the rest of this file (MariaDB: 8-25 s, one file per InnoDB table), while
reflecting and planning all of them takes about a second (`bench/schema_scale.py`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import subsetter
from fixtures_db.many_tables import build_many_tables, edges, name
from tests.conftest import Backend

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
    build_many_tables(db.url, 500, 1250)
    _check_wide_schema(db.url, 500, 1250, tmp_path)


@pytest.mark.server
def test_wide_schema_on_mariadb(make_backend: Callable[[str], Backend], tmp_path: Path) -> None:
    db = make_backend("mysql")
    build_many_tables(db.url, 500, 1250)
    _check_wide_schema(db.url, 500, 1250, tmp_path)


# ---------------------------------------------------------------- big values stream


MEASURE = r"""
import json, re, sys
import subsetter
config = subsetter.parse_config(sys.argv[1], None, {})
result = subsetter.run(config, subsetter.RunOptions(target_url=sys.argv[2], batch_size=100))
# VmHWM, not ru_maxrss: Linux keeps ru_maxrss across fork and exec, so a child started from a
# big pytest process would report the parent's size; VmHWM belongs to this process's memory.
status = open("/proc/self/status").read()
peak = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) // 1024
print(json.dumps({"rows": result.total_rows, "peak_mb": peak}))
"""


@pytest.mark.server
@pytest.mark.parametrize("engine", ["postgres", "mysql"])
def test_big_rows_stream_in_bounded_memory(
    engine: str, make_backend: Callable[[str], Backend]
) -> None:
    """60 MB of 200 KB rows and one 8 MB value go through in bounded memory.

    The bound: ~150 MB for Python, DuckDB, Arrow and the drivers, staging's fixed DuckDB budget
    (128 MB, beyond which it spills to disk), and a few copies of the largest value and of one
    batch. `bench/wide_rows.py` shows the peak staying flat from 100 MB to 1 GB of rows.
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
