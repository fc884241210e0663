"""Loading a 200,000-row cycle into existing tables with the `null_then_update` strategy.

Builds a self-referencing `node(id, parent_id -> node.id, label)` of N rows (parent of n is
n // 2, so every row but the root has its key NULLed, then set again) in a scratch source and a
scratch target database, then runs subsetter with `mode: truncate` into the target. Prints the
load stage's seconds and the run's total, median of 3 runs. `--row-by-row` measures the former
path instead (one UPDATE per row through executemany) for comparison.

    python bench/null_then_update.py postgres [N] [--row-by-row]   # PostgreSQL on 127.0.0.1:5432
    python bench/null_then_update.py mariadb [N] [--row-by-row]    # MariaDB on 127.0.0.1:3306
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg
import pymysql

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import subsetter
from subsetter.catalog import TableRef
from subsetter.dialects.base import Dialect, Row

DBS = ("subsetter_bench_ntu_src", "subsetter_bench_ntu_tgt")
URLS = {
    "postgres": "postgresql+psycopg://postgres@127.0.0.1:5432/{}",
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/{}",
}
TABLE = {
    "postgres": "CREATE TABLE node (id int PRIMARY KEY, parent_id int REFERENCES node (id), "
    "label text NOT NULL)",
    "mariadb": "CREATE TABLE node (id int PRIMARY KEY, parent_id int, label varchar(40) NOT NULL, "
    "FOREIGN KEY (parent_id) REFERENCES node (id)) ENGINE=InnoDB",
}
ROWS = {
    "postgres": "INSERT INTO node SELECT n, NULLIF(n / 2, 0), 'node ' || n "
    "FROM generate_series(1, {n}) AS n",
    "mariadb": "INSERT INTO node SELECT seq, NULLIF(seq DIV 2, 0), CONCAT('node ', seq) "
    "FROM seq_1_to_{n}",
}


def run_sql(engine: str, database: str | None, statements: list[str]) -> None:
    if engine == "postgres":
        with psycopg.connect(
            host="127.0.0.1", user="postgres", dbname=database or "postgres", autocommit=True
        ) as conn:
            for statement in statements:
                conn.execute(statement)
    else:
        conn = pymysql.connect(
            host="127.0.0.1", user="root", password="", database=database, autocommit=True
        )
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
        conn.close()


def update_row_by_row(
    self: Dialect,
    conn: object,
    target: TableRef,
    key: Sequence[str],
    columns: Sequence[str],
    rows: list[Row],
) -> None:
    """The former `Dialect.update_rows`: one UPDATE per row, through executemany."""
    sets = ", ".join(f"{self.quote(c)} = {self.param}" for c in columns)
    match = " AND ".join(f"{self.quote(c)} = {self.param}" for c in key)
    unset = " AND ".join(f"{self.quote(c)} IS NULL" for c in columns)
    sql = f"UPDATE {self.table_sql(target)} SET {sets} WHERE {match} AND {unset}"
    width = len(key)
    self.execute_many(conn, sql, [tuple(r[width:]) + tuple(r[:width]) for r in rows])


def main(engine: str, n: int) -> None:
    for db in DBS:
        run_sql(engine, None, [f"DROP DATABASE IF EXISTS {db}", f"CREATE DATABASE {db}"])
    run_sql(engine, DBS[0], [TABLE[engine], ROWS[engine].format(n=n)])
    run_sql(engine, DBS[1], [TABLE[engine]])
    source, target = (URLS[engine].format(db) for db in DBS)
    try:
        with tempfile.TemporaryDirectory() as folder:
            config = subsetter.parse_config(
                f"source: {{url: '{source}'}}\nseeds: [{{table: node}}]\n",
                Path(folder) / "c.yml",
                {},
            )
            loads, totals = [], []
            for _ in range(3):
                started = time.perf_counter()
                result = subsetter.run(
                    config, subsetter.RunOptions(target_url=target, mode="truncate")
                )
                totals.append(time.perf_counter() - started)
                loads.append(result.seconds["load"])
                assert result.plan.load is not None
                assert [c.strategy for c in result.plan.load.cycles] == ["null_then_update"]
                assert result.verification is not None and result.verification.ok
                assert sum(result.rows.values()) == n
        print(
            f"{engine}: {n:,} rows, cycle node.parent_id null_then_update "
            f"({'row by row' if ROW_BY_ROW else 'set-based'}): "
            f"load {statistics.median(loads):.2f} s, run {statistics.median(totals):.2f} s "
            f"(median of 3; loads {', '.join(f'{s:.2f}' for s in loads)})"
        )
    finally:
        for db in DBS:
            run_sql(engine, None, [f"DROP DATABASE IF EXISTS {db}"])


ROW_BY_ROW = "--row-by-row" in sys.argv

if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--row-by-row"]
    if ROW_BY_ROW:
        Dialect.update_rows = update_row_by_row  # type: ignore[method-assign]
    main(args[0], int(args[1]) if len(args) > 1 else 200_000)
