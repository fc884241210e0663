"""TPC-H benchmark: subsetter against hand-written SQL, PostgreSQL and MariaDB.

The task: 1% of customers (``c_custkey <= 1500`` at SF1; ``--customers`` changes it) with their
orders and line items, and every part, supplier, partsupp, nation and region those need, into
another database on the same server. Each tool runs in its own process, in turns (A B A B ...),
and the script prints the median wall time, the ratio to the hand-written script and the peak
RSS of each.

    python bench/tpch.py load --sf 1                # generate (bench/.venv) and load, once
    python bench/tpch.py run --sf 1 --runs 5        # measure

Source databases are named ``bench_tpch_sf1`` (PostgreSQL and MariaDB) and kept across runs:
``load`` skips an engine whose database is complete already.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

from tpch_schema import (  # noqa: E402
    FOREIGN_KEYS,
    PRIMARY_KEYS,
    TABLES,
    create_sql,
    fk_index_sql,
    fk_sql,
)

PG_URL = "postgresql://postgres@127.0.0.1:5432"
MY_URL = "mysql+pymysql://root@127.0.0.1:3306"
SUBSET = REPO / ".venv" / "bin" / "subset"
PYTHON = REPO / ".venv" / "bin" / "python"


def sf_name(sf: float) -> str:
    return f"sf{sf:g}".replace(".", "_")


def data_dir(sf: float) -> Path:
    out = BENCH / "data" / sf_name(sf)
    gen_python = BENCH / ".venv" / "bin" / "python"
    if not gen_python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(BENCH / ".venv")], check=True)
        subprocess.run(
            [str(gen_python), "-m", "pip", "install", "-q", "duckdb-extension-tpch"], check=True
        )
    subprocess.run(
        [str(gen_python), str(BENCH / "tpch_gen.py"), "--sf", str(sf), "--out", str(out)],
        check=True,
    )
    return out


# ---------------------------------------------------------------------------- PostgreSQL


def pg_connect(db: str):  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={db}", autocommit=True)


def pg_recreate(db: str) -> None:
    with pg_connect("postgres") as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {db}")


def pg_load(sf: float) -> None:
    db = f"bench_tpch_{sf_name(sf)}"
    with pg_connect("postgres") as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone()
    if exists:
        with pg_connect(db) as conn:
            if conn.execute("SELECT to_regclass('bench_loaded')").fetchone()[0]:
                print(f"PostgreSQL {db}: present")
                return
    data = data_dir(sf)
    started = time.perf_counter()
    pg_recreate(db)
    with pg_connect(db) as conn:
        for table in TABLES:
            conn.execute(create_sql(table, keys=False))
            with (
                conn.cursor().copy(f"COPY {table} FROM STDIN (FORMAT csv)") as copy,
                (data / f"{table}.csv").open("rb") as file,
            ):
                while chunk := file.read(1 << 20):
                    copy.write(chunk)
        for table in TABLES:
            conn.execute(f"ALTER TABLE {table} ADD PRIMARY KEY ({', '.join(PRIMARY_KEYS[table])})")
        for i in range(len(FOREIGN_KEYS)):
            conn.execute(fk_sql(i))
            index = fk_index_sql(i)
            if index:
                conn.execute(index)
        conn.execute("VACUUM ANALYZE")
        conn.execute("CREATE TABLE bench_loaded (at timestamptz DEFAULT now())")
    print(f"PostgreSQL {db}: loaded in {time.perf_counter() - started:.0f} s")


# ---------------------------------------------------------------------------- MariaDB


def my_connect(db: str | None = None):  # type: ignore[no-untyped-def]
    import pymysql

    return pymysql.connect(
        host="127.0.0.1", user="root", database=db, local_infile=True, autocommit=True
    )


def my_recreate(db: str) -> None:
    conn = my_connect()
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {db}")
        cur.execute(f"CREATE DATABASE {db}")
    conn.close()


def my_load(sf: float) -> None:
    db = f"bench_tpch_{sf_name(sf)}"
    conn = my_connect()
    with conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s "
            "AND table_name = 'bench_loaded'",
            (db,),
        )
        if cur.fetchone()[0]:
            print(f"MariaDB {db}: present")
            return
    conn.close()
    data = data_dir(sf)
    started = time.perf_counter()
    my_recreate(db)
    conn = my_connect(db)
    with conn.cursor() as cur:
        cur.execute("SET foreign_key_checks = 0, unique_checks = 0")
        for table in TABLES:
            cur.execute(create_sql(table, keys=True) + " ENGINE=InnoDB")
            cur.execute(
                f"LOAD DATA LOCAL INFILE '{data / f'{table}.csv'}' INTO TABLE {table} "
                "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"'"
            )
        for i in range(len(FOREIGN_KEYS)):
            index = fk_index_sql(i)
            if index:
                cur.execute(index)
            cur.execute(fk_sql(i))
        cur.execute("CREATE TABLE bench_loaded (at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)")
    conn.close()
    print(f"MariaDB {db}: loaded in {time.perf_counter() - started:.0f} s")


# ---------------------------------------------------------------------------- measuring


def timed(cmd: list[str]) -> tuple[float, float, str]:
    """Run a command: (wall seconds, peak RSS of its process in MiB, stdout)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{err.read().decode()[-3000:]}")
        return seconds, usage.ru_maxrss / 1024, out.read().decode()


def subsetter_cmd(engine: str, source: str, target: str, customers: int, work: Path) -> list[str]:
    base = PG_URL if engine == "postgres" else MY_URL
    config = work / f"{engine}.yml"
    config.write_text(
        f"source: {{url: '{base}/{source}'}}\n"
        f"seeds: [{{table: customer, where: 'c_custkey <= {customers}'}}]\n"
    )
    return [str(SUBSET), "run", str(config), "--target-url", f"{base}/{target}", "--replace",
            "--quiet", "--report", str(work / "report.json")]  # fmt: skip


def measure(engine: str, sf: float, customers: int, runs: int) -> list[str]:
    source = f"bench_tpch_{sf_name(sf)}"
    targets = {"subsetter": "bench_tpch_target_a", "hand-written SQL": "bench_tpch_target_b"}
    recreate = pg_recreate if engine == "postgres" else my_recreate
    for db in targets.values():
        recreate(db)
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in targets}
    rows: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cmds = {
            "subsetter": subsetter_cmd(engine, source, targets["subsetter"], customers, work),
            "hand-written SQL": [str(PYTHON), str(BENCH / "baselines.py"), engine, source,
                                 targets["hand-written SQL"], str(customers)],
        }  # fmt: skip
        for _ in range(runs):
            for name, cmd in cmds.items():
                seconds, rss, out = timed(cmd)
                results[name].append((seconds, rss))
                if name == "subsetter":
                    rows[name] = json.loads((work / "report.json").read_text())["total_rows"]
                else:
                    rows[name] = int(out.strip().splitlines()[-1])
    base = statistics.median(s for s, _ in results["hand-written SQL"])
    lines = []
    for name, values in results.items():
        median = statistics.median(s for s, _ in values)
        lines.append(
            f"| {engine} SF{sf:g} c_custkey<={customers} | {name} | {rows[name]:,} | "
            f"{median:.2f} s | {min(s for s, _ in values):.2f} s | {median / base:.2f}x | "
            f"{max(r for _, r in values):.0f} MiB |"
        )
    for db in targets.values():
        recreate(db)  # leave no copies behind
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("action", choices=["load", "run"])
    parser.add_argument("--sf", type=float, default=1.0)
    parser.add_argument("--engines", default="postgres,mariadb")
    parser.add_argument("--customers", type=int, default=1500)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    engines = args.engines.split(",")
    if args.action == "load":
        if "postgres" in engines:
            pg_load(args.sf)
        if "mariadb" in engines:
            my_load(args.sf)
        return
    print(f"{args.runs} runs each, alternating; wall time of the whole process, start included")
    print("| task | tool | rows | median | min | vs hand-written | peak RSS |")
    print("|---|---|---|---|---|---|---|")
    for engine in engines:
        for line in measure(engine, args.sf, args.customers, args.runs):
            print(line, flush=True)


if __name__ == "__main__":
    main()
