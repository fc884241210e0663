"""Per-parent limits on a 1:100,000 fan-out: the window-function query against PostgreSQL's LATERAL.

Builds `fixtures_db.cycles` (feed 1 has 100,000 items, feed 2 three) in a scratch database,
then times the query subsetter sends for `limit: 5, order_by: seq DESC` on the keys {1, 2}:
the portable form (ROW_NUMBER() OVER (PARTITION BY ...), `Dialect.capped_select_sql`) and,
on PostgreSQL, the LATERAL form `PostgresDialect` uses. Prints the median of 20 runs.

    python bench/fanout_limit.py postgres     # needs PostgreSQL on 127.0.0.1:5432
    python bench/fanout_limit.py mariadb      # needs MariaDB on 127.0.0.1:3306
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import psycopg
import pymysql

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fixtures_db.cycles import build_cycles
from subsetter.catalog import ColumnType
from subsetter.dialects import dialect_for
from subsetter.dialects.base import Dialect

DB = "subsetter_bench_fanout"
URLS = {
    "postgres": f"postgresql+psycopg://postgres@127.0.0.1:5432/{DB}",
    "mariadb": f"mysql+pymysql://root@127.0.0.1:3306/{DB}",
}


def recreate(engine: str, create: bool = True) -> None:
    statements = [f"DROP DATABASE IF EXISTS {DB}"] + ([f"CREATE DATABASE {DB}"] if create else [])
    if engine == "postgres":
        with psycopg.connect(host="127.0.0.1", user="postgres", autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)
    else:
        conn = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
        conn.close()


def median_ms(dialect: Dialect, conn: object, sql: str, params: list[object]) -> tuple[float, int]:
    times, rows = [], 0
    for _ in range(20):
        started = time.perf_counter()
        rows = len(dialect.execute(conn, sql, params))
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), rows


def main(engine: str) -> None:
    recreate(engine)
    started = time.perf_counter()
    build_cycles(URLS[engine])
    print(f"{engine}: built 100,003 feed items in {time.perf_counter() - started:.1f}s")
    dialect = dialect_for(URLS[engine])
    catalog = dialect.reflect(None)
    (items,) = [t for ref, t in catalog.tables.items() if ref.name == "feed_item"]
    types = [ColumnType("integer", "integer" if engine == "postgres" else "int")]
    order = "seq DESC, id"
    conn = dialect.connect(read_only=True)
    forms = {"window (ROW_NUMBER)": Dialect.capped_select_sql}
    if engine == "postgres":
        forms["LATERAL (subsetter's choice)"] = type(dialect).capped_select_sql
    for label, build in forms.items():
        sql = build(dialect, items, ["feed_id"], 2, types, None, order, 5)
        params = [[1, 2]] if engine == "postgres" else [1, 2]
        ms, rows = median_ms(dialect, conn, sql, list(params))
        print(f"{engine}: {label}: {ms:.2f} ms median of 20, {rows} rows kept of 100,003")
    conn.close()
    recreate(engine, create=False)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "postgres")
