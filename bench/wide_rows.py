"""Peak memory of a run as a table of wide rows grows from 100 MB to 1 GB, plus one 100 MB value.

Builds `subsetter_bench_wide` on PostgreSQL (rows of 200 KB of bytea) and copies the whole table
(passthrough) into another PostgreSQL database with a fresh `subset` process per size, at the
default batch size (batches are sized by bytes). Prints size, rows, seconds and peak RSS
(MiB, VmHWM); the peak should stay flat (batches stream, staging spills past its budget).
`--blob-mb 0` leaves the big value out.

    python bench/wide_rows.py [--mb 100 500 1000] [--blob-mb 100]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import psycopg

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
SOURCE, TARGET = "subsetter_bench_wide", "subsetter_bench_wide_target"
MEASURE = r"""
import json, re, sys
import subsetter
config = subsetter.parse_config(sys.argv[1], None, {})
result = subsetter.run(config, subsetter.RunOptions(target_url=sys.argv[2]))
# VmHWM: this process's own peak (ru_maxrss would carry over the parent's across exec).
status = open("/proc/self/status").read()
peak = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) // 1024
print(json.dumps({"rows": result.total_rows, "peak_mb": peak}))
"""


def admin(sql: str) -> None:
    with psycopg.connect(**PG, dbname="postgres", autocommit=True) as conn:
        conn.execute(sql)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, nargs="+", default=[100, 500, 1000])
    parser.add_argument("--blob-mb", type=int, default=100)
    args = parser.parse_args()
    print(f"{'table MB':>9} {'rows':>6} {'seconds':>8} {'peak RSS MB':>12}")
    for mb in args.mb:
        for db in (SOURCE, TARGET):
            admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            admin(f'CREATE DATABASE "{db}"')
        rows = mb * 5  # 200 KB each
        with psycopg.connect(**PG, dbname=SOURCE, autocommit=True) as conn:
            conn.execute("CREATE TABLE wide (id INTEGER PRIMARY KEY, body BYTEA NOT NULL)")
            conn.execute(
                "INSERT INTO wide SELECT i, decode(repeat(md5(i::text), 6250), 'hex') "
                f"FROM generate_series(1, {rows}) i"
            )
            if args.blob_mb:
                conn.execute(
                    f"INSERT INTO wide VALUES (0, decode(repeat('ab', {args.blob_mb * 1_000_000}), "
                    "'hex'))"
                )
        config = (
            f"source: {{url: 'postgresql://postgres@127.0.0.1/{SOURCE}'}}\npassthrough: [wide]\n"
        )
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", MEASURE, config, f"postgresql://postgres@127.0.0.1/{TARGET}"],
            capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        if done.returncode:
            print(done.stderr[-2000:], file=sys.stderr)
            raise SystemExit(1)
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{mb:>9} {figures['rows']:>6} {seconds:>8.1f} {figures['peak_mb']:>12}")
    for db in (SOURCE, TARGET):
        admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


if __name__ == "__main__":
    main()
