"""Hand-written SQL doing the benchmark's task, the yardstick subsetter is measured against.

PostgreSQL: the key sets go into temp tables on the source, then each table travels as
``COPY (SELECT ...) TO STDOUT`` piped into ``COPY ... FROM STDIN`` on the target; primary and
foreign keys are added after the rows. MariaDB: the same temp tables, each table read by the
``mariadb`` client in batch mode and written with ``LOAD DATA LOCAL INFILE``; keys likewise.

    python bench/baselines.py postgres SOURCE_DB TARGET_DB CUSTOMERS
    python bench/baselines.py mariadb SOURCE_DB TARGET_DB CUSTOMERS
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tpch_schema import (
    FOREIGN_KEYS,
    PRIMARY_KEYS,
    TABLES,
    create_sql,
    fk_sql,
    subset_queries,
    table_selects,
)

PG = "host=127.0.0.1 port=5432 user=postgres"
MY = ["-h", "127.0.0.1", "-P", "3306", "-u", "root"]


def postgres(source: str, target: str, customers: int) -> int:
    import psycopg

    rows = 0
    with (
        psycopg.connect(f"{PG} dbname={source}") as src,
        psycopg.connect(f"{PG} dbname={target}") as tgt,
    ):
        for name, select in subset_queries(customers):
            src.execute(f"CREATE TEMP TABLE {name} AS {select}")
        for table in TABLES:
            tgt.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
            tgt.execute(create_sql(table, keys=False))
        selects = table_selects()
        for table in TABLES:
            with (
                src.cursor().copy(f"COPY ({selects[table]}) TO STDOUT") as out,
                tgt.cursor().copy(f"COPY {table} FROM STDIN") as into,
            ):
                for chunk in out:
                    into.write(chunk)
        for table in TABLES:
            cols = ", ".join(PRIMARY_KEYS[table])
            tgt.execute(f"ALTER TABLE {table} ADD PRIMARY KEY ({cols})")
        for i in range(len(FOREIGN_KEYS)):
            tgt.execute(fk_sql(i))
        for table in TABLES:
            rows += tgt.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        tgt.commit()
    return rows


def mariadb(source: str, target: str, customers: int) -> int:
    import pymysql

    with tempfile.TemporaryDirectory() as tmp:
        # One client session: the temp tables live as long as it does.
        script = [f"CREATE TEMPORARY TABLE {n} AS {s};" for n, s in subset_queries(customers)]
        selects = table_selects()
        for table in TABLES:
            script.append(f"SELECT '#{table}';")
            script.append(f"{selects[table]};")
        dumped = subprocess.run(
            ["mariadb", *MY, "-N", "-B", source],
            input="\n".join(script),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        files: dict[str, Path] = {}
        current = None
        handle = None
        for line in dumped.splitlines(keepends=True):
            if line.startswith("#") and line.strip()[1:] in TABLES:
                if handle:
                    handle.close()
                current = line.strip()[1:]
                files[current] = Path(tmp) / f"{current}.tsv"
                handle = files[current].open("w")
                continue
            assert handle is not None and current
            handle.write(line)
        if handle:
            handle.close()
        conn = pymysql.connect(
            host="127.0.0.1", user="root", database=target, local_infile=True, autocommit=True
        )
        rows = 0
        with conn.cursor() as cur:
            cur.execute("SET foreign_key_checks = 0")
            for table in TABLES:
                cur.execute(f"DROP TABLE IF EXISTS {table}")
                cur.execute(create_sql(table, keys=True) + " ENGINE=InnoDB")
            for table in TABLES:
                rows += cur.execute(f"LOAD DATA LOCAL INFILE '{files[table]}' INTO TABLE {table}")
            cur.execute("SET foreign_key_checks = 1")
            for i in range(len(FOREIGN_KEYS)):
                cur.execute(fk_sql(i))
        conn.close()
    return rows


def main() -> None:
    engine, source, target, customers = sys.argv[1:5]
    rows = {"postgres": postgres, "mariadb": mariadb}[engine](source, target, int(customers))
    print(rows)


if __name__ == "__main__":
    main()
