"""Time `subset run` end to end on Pagila (customer_id <= 50) and on the bundled demo.

Prints, per scenario, the median wall time of whole CLI runs (process start included), the
rows copied and the peak RSS of the process. Needs PostgreSQL on 127.0.0.1:5432 for Pagila
(loaded here with ../shared/datasets/load.sh into `subsetter_bench_pagila`).

    python bench/pagila.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATASETS = Path(os.environ.get("SUBSETTER_DATASETS", REPO.parent / "shared" / "datasets"))
PG = "postgresql://postgres@127.0.0.1:5432"


def psql(sql: str) -> None:
    subprocess.run(
        ["psql", "-X", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c", sql],
        check=True,
        capture_output=True,
    )


def timed_run(config: Path, target_url: str, report: Path) -> tuple[float, int, int]:
    """One CLI run in a child process: (seconds, rows, peak RSS in KiB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "subsetter", "run", str(config), "--target-url", target_url,
         "--replace", "--quiet", "--report", str(report)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    rows = json.loads(report.read_text())["total_rows"]
    return seconds, rows, max(peak, before)


def scenario(name: str, config: Path, target_url: str, runs: int, work: Path) -> None:
    results = [timed_run(config, target_url, work / "report.json") for _ in range(runs)]
    seconds = statistics.median(r[0] for r in results)
    fastest = min(r[0] for r in results)
    peak = max(r[2] for r in results) / 1024
    print(
        f"{name:<34} rows {results[0][1]:>6}   median {seconds:6.3f} s   "
        f"min {fastest:6.3f} s   peak RSS {peak:6.1f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        scenario(
            "demo (SQLite -> SQLite)",
            REPO / "configs" / "demo.yml",
            f"sqlite:///{work / 'demo.sqlite'}",
            args.runs,
            work,
        )
        subprocess.run(
            [str(DATASETS / "load.sh"), "pagila", "postgres", "subsetter_bench_pagila"],
            check=True,
            capture_output=True,
        )
        psql("DROP DATABASE IF EXISTS subsetter_bench_target WITH (FORCE)")
        psql("CREATE DATABASE subsetter_bench_target")
        config = work / "pagila.yml"
        config.write_text(
            f"source: {{url: '{PG}/subsetter_bench_pagila'}}\n"
            "seeds: [{table: customer, where: 'customer_id <= 50'}]\n"
        )
        try:
            scenario(
                "Pagila customer_id<=50 (PG -> PG)",
                config,
                f"{PG}/subsetter_bench_target",
                args.runs,
                work,
            )
        finally:
            psql("DROP DATABASE IF EXISTS subsetter_bench_target WITH (FORCE)")
            psql("DROP DATABASE IF EXISTS subsetter_bench_pagila WITH (FORCE)")


if __name__ == "__main__":
    main()
