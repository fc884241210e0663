"""Tests of ``budget:``: a run over budget stops before loading anything, with exit code 4.

Runs the bundled demo (SQLite) through the CLI, so the exit code and the message are what a CI
job sees.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from subsetter.cli import app

DEMO_SOURCE = Path(__file__).resolve().parent.parent / "fixtures_db" / "demo.sqlite"


def demo_config(tmp_path: Path, budget: str) -> Path:
    path = tmp_path / "budget.yml"
    path.write_text(
        f"source:\n  url: sqlite:///{DEMO_SOURCE}\n"
        "seeds:\n  - table: customer\n    where: id <= 20\n"
        f"budget:\n{budget}"
    )
    return path


def run(config: Path, target: Path, *extra: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        app, ["run", str(config), "--target-url", f"sqlite:///{target}", *extra]
    )
    return result.exit_code, result.stdout, result.stderr


def no_tables(path: Path) -> bool:
    if not path.exists():
        return True
    conn = sqlite3.connect(path)
    try:
        return not conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    finally:
        conn.close()


def test_a_table_over_its_budget_stops_the_run_with_exit_4(tmp_path: Path) -> None:
    config = demo_config(tmp_path, "  tables:\n    order_item: 10\n")
    target = tmp_path / "t.sqlite"
    code, _, stderr = run(config, target)
    assert code == 4, stderr
    assert "budget.yml:8:5 budget.tables.order_item: table order_item would get" in stderr
    assert "over its budget of 10" in stderr
    assert "grew through customer -> orders -> order_item" in stderr
    assert "Nothing was loaded" in stderr
    assert "Traceback" not in stderr
    assert no_tables(target)


@pytest.mark.parametrize(
    ("budget", "words"),
    [
        ("  max_rows: 100\n", ["budget.max_rows:", "over the budget of 100", "order_item"]),
        ("  max_bytes: 2000\n", ["budget.max_bytes:", "over the budget of 2000 bytes"]),
    ],
)
def test_the_whole_subset_over_budget_exits_4(
    tmp_path: Path, budget: str, words: list[str]
) -> None:
    target = tmp_path / "t.sqlite"
    code, _, stderr = run(demo_config(tmp_path, budget), target, "--report", str(tmp_path / "r"))
    assert code == 4, stderr
    for word in words:
        assert word in stderr, (word, stderr)
    assert "grown through customer -> " in stderr
    assert no_tables(target)
    report = json.loads((tmp_path / "r").read_text())
    assert (report["status"], report["exit_code"]) == ("failed", 4)


def test_a_run_within_budget_loads(tmp_path: Path) -> None:
    config = demo_config(
        tmp_path, "  max_rows: 100000\n  max_bytes: 100000000\n  tables:\n    orders: 1000\n"
    )
    code, stdout, stderr = run(config, tmp_path / "t.sqlite")
    assert code == 0, stderr
    assert "integrity verified" in stdout


def test_budget_names_an_unknown_table_at_its_line(tmp_path: Path) -> None:
    config = demo_config(tmp_path, "  tables:\n    oders: 10\n")
    code, _, stderr = run(config, tmp_path / "t.sqlite")
    assert code == 1
    assert 'budget.yml:8:5 budget.tables.oders: no table "oders" in the source.' in stderr
    assert 'Did you mean "orders"?' in stderr


def test_budget_rejects_a_non_positive_limit_at_its_line(tmp_path: Path) -> None:
    config = demo_config(tmp_path, "  tables:\n    orders: 0\n  max_rows: -1\n")
    result = CliRunner().invoke(app, ["validate", str(config)])
    assert result.exit_code == 1
    assert "budget.yml:8:5 budget.tables.orders: Input should be greater than 0" in result.stderr
    assert "budget.yml:9:3 budget.max_rows: Input should be greater than 0" in result.stderr


def test_plan_warns_when_the_estimate_is_over_budget(tmp_path: Path) -> None:
    config = demo_config(tmp_path, "  tables:\n    order_item: 10\n  max_rows: 50\n")
    result = CliRunner().invoke(app, ["plan", str(config), "--format", "json"])
    assert result.exit_code == 0, result.stderr
    warnings = json.loads(result.stdout)["warnings"]
    assert any(w.startswith("order_item: ~") and "over its budget of 10" in w for w in warnings)
    assert any("over the budget of 50" in w for w in warnings)
