"""Masking throughput per strategy, in rows per second, inside a DuckDB staging file.

Each strategy masks one column of a staged table whose values are all distinct (the worst case:
fakes are computed once per distinct value). Strategies with a DuckDB SQL form run as one
UPDATE; Faker fakes, JSON paths and hooks run in Python over a mapping of distinct values (or
rows, for hooks). `hash (python)` forces the Python form of hash, to compare it with the SQL
one; `hash (key group)` masks a unique key and the column referencing it, with the collision
check.

    python bench/mask.py [--rows 200000] [--fake-rows 20000] [--only first_name,email]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from subsetter import mask as stage
from subsetter.catalog import Column, ColumnType, Table, TableRef
from subsetter.config import MaskRule
from subsetter.reporting import NullReporter
from subsetter.staging import Staging
from subsetter.strategies import STRATEGIES

KINDS: dict[str, tuple[ColumnType, Any]] = {
    "text": (ColumnType("string", length=120), lambda i: f"person.{i}@example.org"),
    "int": (ColumnType("integer", bits=64), lambda i: i * 7 + 3),
    "num": (ColumnType("decimal", precision=12, scale=2), lambda i: Decimal(i) / 100 + 1),
    "float": (ColumnType("float"), lambda i: i * 1.5 + 0.25),
    "date": (ColumnType("date"), lambda i: dt.date(1950, 1, 1) + dt.timedelta(days=i % 25000)),
    "json": (ColumnType("text"), lambda i: f'{{"email": "p{i}@example.org", "n": {i}}}'),
}

CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("null", "text", {"strategy": "null"}),
    ("constant", "text", {"strategy": "constant", "value": "x"}),
    ("hash", "text", {"strategy": "hash"}),
    ("hash (integer)", "int", {"strategy": "hash"}),
    ("redact", "text", {"strategy": "redact"}),
    ("partial", "text", {"strategy": "partial", "keep": 4}),
    ("noise (float)", "float", {"strategy": "noise", "relative": 0.1}),
    ("noise (decimal)", "num", {"strategy": "noise", "relative": 0.1}),
    ("date_shift", "date", {"strategy": "date_shift", "max_days": 30}),
    *[(name, "text", {"strategy": name}) for name, s in STRATEGIES.items() if s.faker],
    ("json $.email", "json", {"json": {"$.email": "email"}}),
]


def staged(rows: int, kind: str, key_group: bool = False) -> tuple[Staging, list[Table]]:
    ctype, make = KINDS[kind]
    parent = Table(
        TableRef(None, "p"),
        (Column("id", ColumnType("integer")), Column("v", ctype)),
        primary_key=("id",),
        unique_keys=(("v",),) if key_group else (),
    )
    staging = Staging(batch_size=10_000)
    staging.create(parent)
    tables = [parent]
    for start in range(0, rows, 10_000):
        batch = [(i, make(i)) for i in range(start, min(rows, start + 10_000))]
        staging.add_rows(parent.ref, batch, gen=0, down=False)
    if key_group:
        child = Table(
            TableRef(None, "c"),
            (Column("id", ColumnType("integer")), Column("pv", ctype)),
            primary_key=("id",),
        )
        staging.create(child)
        for start in range(0, rows, 10_000):
            batch = [(i, make(i)) for i in range(start, min(rows, start + 10_000))]
            staging.add_rows(child.ref, batch, gen=0, down=False)
        tables.append(child)
    return staging, tables


def measure(name: str, kind: str, rule: dict[str, Any], rows: int, **how: Any) -> float:
    staging, tables = staged(rows, kind, key_group=how.get("key_group", False))
    try:
        parsed = MaskRule.model_validate(rule)
        masks = [
            stage.ColumnMask(t.ref, t.columns[1], parsed, "bench", f"{t.ref}.{t.columns[1].name}")
            for t in tables
        ]
        if how.get("key_group"):
            plan = stage.MaskPlan(groups=(stage.KeyGroup(tuple(masks), True),), key=b"bench")
        else:
            plan = stage.MaskPlan(columns=tuple(masks), key=b"bench")
        if how.get("python"):
            original = stage.sql_form
            stage.sql_form = lambda *a, **k: None  # type: ignore[assignment]
        started = time.perf_counter()
        try:
            stage.mask(plan, staging, NullReporter())
        finally:
            if how.get("python"):
                stage.sql_form = original
        seconds = time.perf_counter() - started
        total = rows * len(tables)
        print(f"{name:<22} {total:>9,} rows {seconds:8.3f} s {total / seconds:>12,.0f} rows/s")
        return total / seconds
    finally:
        staging.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows for SQL strategies")
    parser.add_argument("--fake-rows", type=int, default=20_000, help="rows for Python ones")
    parser.add_argument("--only", default="", help="comma-separated strategy names to run")
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))
    print(f"{'strategy':<22} {'rows':>14} {'seconds':>10} {'throughput':>19}")
    for name, kind, rule in CASES:
        if only and name not in only:
            continue
        strategy = STRATEGIES.get(str(rule.get("strategy")))
        python_only = "json" in rule or (strategy is not None and strategy.faker is not None)
        python_only = python_only or (name == "noise (decimal)")
        measure(name, kind, rule, args.fake_rows if python_only else args.rows)
    if not only:
        measure("hash (python)", "text", {"strategy": "hash"}, args.fake_rows * 5, python=True)
        measure("hash (key group)", "text", {"strategy": "hash"}, args.rows // 2, key_group=True)
        measure("email (key group)", "text", {"strategy": "email"}, args.fake_rows, key_group=True)


if __name__ == "__main__":
    main()
