"""Seconds to reflect and plan a wide schema: 2,000 tables and 5,000 foreign keys by default.

Builds `fixtures_db/many_tables.py`'s schema in a SQLite file, a PostgreSQL database and a
MariaDB database, then times `reflect_source` and `build_plan` (seed: the last table's
parents, and the first table with all its descendants). Prints one line per engine.

    python bench/schema_scale.py [--tables 2000] [--fks 5000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pymysql

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import subsetter
from fixtures_db.many_tables import build_many_tables, name
from subsetter.pipeline import source_dialect
from subsetter.plan import build_plan
from subsetter.reflect import reflect_source

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
MY = {"host": "127.0.0.1", "port": 3306, "user": "root", "autocommit": True}
DB = "subsetter_bench_wide_schema"


def measure(url: str, tables: int, fks: int) -> tuple[float, float, float, int, int]:
    started = time.perf_counter()
    build_many_tables(url, tables, fks)
    built = time.perf_counter() - started
    config = subsetter.parse_config(
        f"source: {{url: '{url}'}}\n"
        f"seeds: [{{table: {name(tables - 1)}, children: false}}, {{table: {name(0)}}}]\n",
        None,
        {},
    )
    dialect = source_dialect(config)
    started = time.perf_counter()
    catalog = reflect_source(dialect, config)
    reflected = time.perf_counter() - started
    started = time.perf_counter()
    plan = build_plan(catalog, config, dialect)
    planned = time.perf_counter() - started
    return built, reflected, planned, len(catalog.foreign_keys), len(plan.tables)


def show(engine: str, row: tuple[float, float, float, int, int]) -> None:
    built, reflected, planned, fks, tables = row
    print(f"{engine:<11} {built:>8.2f} {reflected:>10.2f} {planned:>7.2f} {fks:>6} {tables:>8}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tables", type=int, default=2000)
    parser.add_argument("--fks", type=int, default=5000)
    args = parser.parse_args()
    print(f"{args.tables} tables, {args.fks} foreign keys")
    print(
        f"{'engine':<11} {'build s':>8} {'reflect s':>10} {'plan s':>7} {'FKs':>6} {'planned':>8}"
    )
    with tempfile.TemporaryDirectory() as folder:
        show("sqlite", measure(f"sqlite:///{folder}/wide.sqlite", args.tables, args.fks))
    with psycopg.connect(**PG, dbname="postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{DB}"')
    try:
        row = measure(f"postgresql://postgres@127.0.0.1:5432/{DB}", args.tables, args.fks)
        show("postgresql", row)
    finally:
        with psycopg.connect(**PG, dbname="postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    _mysql(f"DROP DATABASE IF EXISTS `{DB}`")
    _mysql(f"CREATE DATABASE `{DB}`")
    try:
        show("mariadb", measure(f"mysql+pymysql://root@127.0.0.1:3306/{DB}", args.tables, args.fks))
    finally:
        _mysql(f"DROP DATABASE IF EXISTS `{DB}`")


def _mysql(sql: str) -> None:
    conn = pymysql.connect(**MY)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


if __name__ == "__main__":
    main()
