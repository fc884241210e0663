"""Peak memory and time as the subset grows: memory should stay flat (batches stream).

Builds `subsetter_bench_scale` on PostgreSQL (parent: 500,000 rows of ~200 bytes; child:
1,000,000 rows) and subsets the first N parents with their children into another PostgreSQL
database, for growing N. Prints rows copied, wall seconds and peak RSS of each CLI run.

    python bench/scale.py [--parents 50000 250000 500000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PG = "postgresql://postgres@127.0.0.1:5432"
SOURCE, TARGET = "subsetter_bench_scale", "subsetter_bench_scale_target"


def psql(sql: str, db: str = "postgres") -> None:
    subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "postgres",
         "-d", db, "-c", sql],
        check=True,
        capture_output=True,
    )  # fmt: skip


def build_source() -> None:
    psql(f"DROP DATABASE IF EXISTS {SOURCE} WITH (FORCE)")
    psql(f"CREATE DATABASE {SOURCE}")
    psql(
        "CREATE TABLE parent (id int PRIMARY KEY, payload text);"
        "CREATE TABLE child (id int PRIMARY KEY, parent_id int NOT NULL REFERENCES parent(id),"
        " payload text);"
        "INSERT INTO parent SELECT g, repeat(md5(g::text), 6) FROM generate_series(1, 500000) g;"
        "INSERT INTO child SELECT g, (g + 1) / 2, repeat(md5(g::text), 6)"
        " FROM generate_series(1, 1000000) g;"
        "CREATE INDEX ON child (parent_id); ANALYZE;",
        SOURCE,
    )


def measure(parents: int, work: Path) -> None:
    psql(f"DROP DATABASE IF EXISTS {TARGET} WITH (FORCE)")
    psql(f"CREATE DATABASE {TARGET}")
    config = work / "scale.yml"
    config.write_text(
        f"source: {{url: '{PG}/{SOURCE}'}}\nseeds: [{{table: parent, where: 'id <= {parents}'}}]\n"
    )
    report = work / "report.json"
    started = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "%M", sys.executable, "-m", "subsetter", "run", str(config),
         "--target-url", f"{PG}/{TARGET}", "--quiet", "--report", str(report)],
        check=True,
        capture_output=True,
        text=True,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    peak_kib = int(done.stderr.strip().splitlines()[-1])
    data = json.loads(report.read_text())
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in data["stages"].items())
    print(
        f"parents {parents:>7}  rows {data['total_rows']:>8}  {seconds:7.1f} s  "
        f"peak RSS {peak_kib / 1024:6.1f} MiB  ({stages})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--parents", type=int, nargs="+", default=[50_000, 250_000, 500_000])
    args = parser.parse_args()
    build_source()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for parents in args.parents:
                measure(parents, Path(tmp))
    finally:
        psql(f"DROP DATABASE IF EXISTS {TARGET} WITH (FORCE)")
        psql(f"DROP DATABASE IF EXISTS {SOURCE} WITH (FORCE)")


if __name__ == "__main__":
    main()
