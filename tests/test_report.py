"""Tests of what CI reads from a run: the --report JSON (against docs/report.schema.json),
exit codes, and progress output (plain lines under CI=true, bars on a terminal).
"""

from __future__ import annotations

import hashlib
import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from subsetter.cli import app

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "configs" / "demo.yml"
DEMO_SOURCE = REPO / "fixtures_db" / "demo.sqlite"
SCHEMA = json.loads((REPO / "docs" / "report.schema.json").read_text())
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
DEMO_TABLES = 8


def validate(document: dict[str, object]) -> None:
    jsonschema.validate(document, SCHEMA, format_checker=jsonschema.FormatChecker())


def subset(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "subsetter", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_the_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_a_real_report_validates_and_says_what_ci_needs(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    done = subset(
        "run", str(DEMO), "--target-url", f"sqlite:///{tmp_path / 't.sqlite'}",
        "--report", str(report), env={"CI": "true"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(report.read_text())
    validate(doc)
    assert doc["status"] == "ok" and doc["exit_code"] == 0
    assert doc["config"]["sha256"] == hashlib.sha256(DEMO.read_bytes()).hexdigest()
    assert len(doc["tables"]) == DEMO_TABLES
    assert all(t["bytes"] > 0 for t in doc["tables"].values())
    assert doc["total_bytes"] == sum(t["bytes"] for t in doc["tables"].values())
    assert doc["verification"]["ok"] is True
    assert doc["started_at"] <= doc["finished_at"]
    assert {r["follow"] for r in doc["relations"]} <= {"yes", "no", "always"}
    bad = dict(doc, status="maybe")
    with pytest.raises(jsonschema.ValidationError):
        validate(bad)


def test_a_report_of_a_stopped_run_validates(tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text(
        "source:\n  url: postgresql://u:s3cret@127.0.0.1:1/x\nseeds:\n  - table: customer\n"
    )
    report = tmp_path / "r.json"
    result = CliRunner().invoke(
        app, ["run", str(config), "--target-url", "sqlite:///t.db", "--report", str(report)]
    )
    assert result.exit_code == 1
    doc = json.loads(report.read_text())
    validate(doc)
    assert doc["status"] == "failed" and doc["exit_code"] == 1
    assert doc["error_type"] == "ConnectionFailed"
    assert "s3cret" not in report.read_text()
    assert "***" in doc["error"]


def test_budget_stop_is_reported_with_exit_4(tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text(
        f"source:\n  url: sqlite:///{DEMO_SOURCE}\nseeds:\n  - table: customer\n"
        "budget:\n  max_rows: 10\n"
    )
    report = tmp_path / "r.json"
    result = CliRunner().invoke(
        app, ["run", str(config), "--target-url", f"sqlite:///{tmp_path / 't.db'}",
              "--report", str(report)],
    )  # fmt: skip
    assert result.exit_code == 4
    doc = json.loads(report.read_text())
    validate(doc)
    assert (doc["exit_code"], doc["error_type"]) == (4, "BudgetError")
    assert "over the budget of 10" in doc["error"]


# ---------------------------------------------------------------- progress output


def test_ci_output_is_one_plain_line_per_table(tmp_path: Path) -> None:
    done = subset(
        "run", str(DEMO), "--target-url", f"sqlite:///{tmp_path / 't.sqlite'}",
        env={"CI": "true"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not CONTROL.search(done.stderr + done.stdout), repr(done.stderr)
    loaded = [line for line in done.stderr.splitlines() if line.startswith("  loaded ")]
    assert len(loaded) == DEMO_TABLES
    assert all(
        re.fullmatch(r"  loaded \w+: \d+ rows \([\d.]+s(, [\d,]+ rows/s)?\)", x) for x in loaded
    )
    for stage in ("reflect", "plan", "extract", "load"):
        assert stage in done.stderr.splitlines()
    assert "closure round" not in done.stderr, "closure rounds only with --verbose"


def test_quiet_and_verbose(tmp_path: Path) -> None:
    target = f"sqlite:///{tmp_path / 't.sqlite'}"
    quiet = subset("run", str(DEMO), "--target-url", target, "--quiet", env={"CI": "true"})
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    assert "subset loaded into" in quiet.stdout
    verbose = subset(
        "run", str(DEMO), "--target-url", target, "--replace", "--verbose", env={"CI": "true"}
    )
    assert verbose.returncode == 0, verbose.stderr
    assert "closure round 1 done" in verbose.stderr
    assert not CONTROL.search(verbose.stderr)


def test_a_terminal_gets_progress_bars(tmp_path: Path) -> None:
    """Run under a pseudo-terminal, as a person would: bars with rows/s, then the summary."""
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(TERM="xterm-256color", COLUMNS="120")
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "subsetter", "run", str(DEMO),
         "--target-url", f"sqlite:///{tmp_path / 't.sqlite'}", "--batch-size", "100"],
        stdin=child, stdout=child, stderr=child, env=env, close_fds=True,
    )  # fmt: skip
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    assert proc.wait(timeout=120) == 0
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert "\x1b[" in screen, "a terminal gets live output"
    assert "loaded order_item: 330 rows" in screen
    assert "subset loaded into" in screen
