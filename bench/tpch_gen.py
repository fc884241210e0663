"""Generate TPC-H tables as CSV files with DuckDB's tpch extension (the real dbgen).

Runs in the benchmark's own environment (bench/.venv), because the ``duckdb-extension-tpch``
wheel pins its own DuckDB version, different from the one subsetter uses:

    bench/.venv/bin/python bench/tpch_gen.py --sf 1 --out bench/data/sf1

Writes one headerless CSV per table (``region.csv`` ... ``lineitem.csv``), columns in the
spec's order. Files already present are kept, so a second call does nothing.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import duckdb
import duckdb_extension_tpch

TABLES = ("region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sf", type=float, default=1.0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if all((args.out / f"{t}.csv").exists() for t in TABLES):
        return
    # The wheel ships the extension file; load it by path (no download).
    extension = (
        Path(duckdb_extension_tpch.__file__).parent
        / "extensions"
        / f"v{duckdb.__version__}"
        / "tpch.duckdb_extension"
    )
    conn = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    conn.execute(f"LOAD '{extension}'")
    started = time.perf_counter()
    conn.execute(f"CALL dbgen(sf={args.sf})")
    print(f"dbgen sf={args.sf}: {time.perf_counter() - started:.1f} s")
    for table in TABLES:
        tmp = args.out / f"{table}.csv.part"
        conn.execute(f"COPY {table} TO '{tmp}' (FORMAT csv, HEADER false)")
        os.replace(tmp, args.out / f"{table}.csv")


if __name__ == "__main__":
    main()
