"""Tests of the ``subset`` command: exit codes, messages and reports, on the bundled demo.

Most tests call the Typer app in-process (fast); a few run the real entry point in a subprocess
to prove that what a user types behaves the same.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pymysql
import pytest
import yaml
from typer.testing import CliRunner, Result

from subsetter.cli import app

if TYPE_CHECKING:
    from conftest import Backend

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "configs" / "demo.yml"
DEMO_SOURCE = REPO / "fixtures_db" / "demo.sqlite"
DEMO_TABLES = {
    "category", "product", "customer", "address", "employee", "orders", "order_item", "payment",
}  # fmt: skip


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner(env=env).invoke(app, list(args))


def subset(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "subsetter", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def tables_in(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()


def count(path: Path, table: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0])
    finally:
        conn.close()


def assert_one_error_line(stderr: str, *words: str) -> None:
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr
    for word in words:
        assert word in errors[0], (word, errors[0])


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object], Result]:
    """The demo subset loaded once into a SQLite file with a --report; tests copy it."""
    folder = tmp_path_factory.mktemp("demo_target")
    target, report = folder / "subset.sqlite", folder / "report.json"
    result = invoke(
        "run", str(DEMO), "--target-url", f"sqlite:///{target}", "--report", str(report)
    )
    assert result.exit_code == 0, result.stderr
    return target, json.loads(report.read_text()), result


# ---------------------------------------------------------------- start-up

# Imported where used, not by every command: each costs start-up time (pyarrow.compute and rich
# ~20 ms each) and a run without masks, into a pipe rather than a terminal, needs none of them.
LAZY_MODULES = ("faker", "pyarrow.compute", "rich", "presidio_analyzer")

LOADED_AFTER = """
import sys
{action}
print(" ".join(m for m in {lazy!r} if m in sys.modules))
"""


def loaded_after(action: str, cwd: Path | None = None) -> set[str]:
    """Which of LAZY_MODULES a fresh interpreter holds after ``action``."""
    code = LOADED_AFTER.format(action=action, lazy=LAZY_MODULES)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=cwd
    )
    assert done.returncode == 0, done.stderr
    return set(done.stdout.splitlines()[-1].split())


def test_import_of_the_cli_loads_no_optional_module() -> None:
    assert loaded_after("import subsetter.cli") == set()


def test_demo_run_without_masks_loads_no_optional_module(tmp_path: Path) -> None:
    run = (
        "import subsetter.cli\n"
        f"sys.argv = ['subset', 'run', {str(DEMO)!r}, '--target-url', "
        f"'sqlite:///{tmp_path / 'out.sqlite'}', '--quiet']\n"
        "try:\n    subsetter.cli.app()\nexcept SystemExit as stop:\n    assert not stop.code\n"
    )
    assert loaded_after(run) == set()
    assert count(tmp_path / "out.sqlite", "customer") == 20


@pytest.mark.server
def test_small_postgres_run_loads_no_optional_module(
    make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    source, target = make_backend("postgres"), make_backend("postgres")
    source.execute(
        "CREATE TABLE parent (id int PRIMARY KEY, name text);"
        "CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent (id));"
        "INSERT INTO parent VALUES (1, 'a'), (2, 'b'); INSERT INTO child VALUES (1, 1), (2, 2);"
    )
    config = tmp_path / "pg.yml"
    config.write_text(
        f"source: {{url: '{source.url}'}}\nseeds: [{{table: child, where: 'id = 1'}}]\n"
    )
    run = (
        "import subsetter.cli\n"
        f"sys.argv = ['subset', 'run', {str(config)!r}, '--target-url', {target.url!r}, '-q']\n"
        "try:\n    subsetter.cli.app()\nexcept SystemExit as stop:\n    assert not stop.code\n"
    )
    assert loaded_after(run) == set()  # keys sent as arrays are spelled without pyarrow.compute
    assert target.query("SELECT id FROM parent") == [(1,)]


def test_entry_point_flushes_everything_and_keeps_the_exit_status(tmp_path: Path) -> None:
    """main() ends the process without the interpreter's teardown: nothing may be lost."""
    import subsetter

    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}

    def entry(*args: str, before: str = "") -> subprocess.CompletedProcess[str]:
        code = f"import sys, subsetter.cli\n{before}\nsys.argv = ['subset', *{args!r}]\n"
        return subprocess.run(
            [sys.executable, "-c", code + "subsetter.cli.main()"],
            capture_output=True, text=True, timeout=60, env=buffered,
        )  # fmt: skip

    shown = entry("schema")  # ~30 KB into a block-buffered pipe, just before the process ends
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == json.loads(json.dumps(subsetter.config_json_schema()))
    bad = tmp_path / "bad.yml"
    bad.write_text("source: {url: 'sqlite:///x.db'}\nseedz: []\n")
    refused = entry("validate", str(bad))
    assert refused.returncode == 1
    assert_one_error_line(refused.stderr, "seedz")
    assert entry("run").returncode == 2  # click's usage error
    # Exit handlers still run: logging's flushes a buffering handler into its file.
    log = tmp_path / "log.txt"
    logged = entry(
        "schema",
        before="import logging, logging.handlers\n"
        f"to_file = logging.FileHandler({str(log)!r})\n"
        "logging.getLogger('x').addHandler(logging.handlers.MemoryHandler(100, target=to_file))\n"
        "logging.getLogger('x').warning('kept')",
    )
    assert logged.returncode == 0, logged.stderr
    assert log.read_text() == "kept\n"


@pytest.mark.parametrize("terminal", [True, False])
def test_colour_only_on_a_terminal(tmp_path: Path, terminal: bool) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "FORCE_COLOR", "NO_COLOR")}
    env["TTY_COMPATIBLE"] = "1" if terminal else "0"
    done = subprocess.run(
        [sys.executable, "-m", "subsetter", "validate", str(tmp_path / "missing.yml")],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert done.returncode == 1
    assert ("\x1b[31m" in done.stderr) is terminal, done.stderr
    assert "cannot read the config file" in done.stderr


# ---------------------------------------------------------------- validate


def test_validate_good_file() -> None:
    result = invoke("validate", str(DEMO))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == f"{DEMO}: valid (2 seeds, 1 targets)"


def test_validate_bad_file_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("source:\n  url: sqlite:///a.db\nseeds:\n  - table: a\n    wehre: id = 1\n")
    result = invoke("validate", str(bad))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert_one_error_line(result.stderr, "bad.yml:5:5", "seeds[0].wehre", 'Did you mean "where"?')


def test_validate_does_not_connect(tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text("source:\n  url: postgresql://u:pw@127.0.0.1:1/x\nseeds: [{table: a}]\n")
    result = invoke("validate", str(config))
    assert result.exit_code == 0, result.stderr


# ---------------------------------------------------------------- plan


def test_plan_prints_tables_seeds_cycles_and_load_order() -> None:
    result = invoke("plan", str(DEMO))
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    section = text.split("Seeds:")[0].splitlines()[1:]
    order = [line.strip().split(":")[0] for line in section]
    assert set(order) == DEMO_TABLES
    for parent, child in [
        ("category", "product"),
        ("customer", "address"),
        ("address", "orders"),
        ("employee", "orders"),
        ("orders", "order_item"),
        ("product", "order_item"),
        ("orders", "payment"),
    ]:
        assert order.index(parent) < order.index(child), (parent, child)
    assert "  customer: seed customer (where id <= 20)" in text
    assert (
        'SELECT "id", "first_name", "last_name", "email", "created_at" FROM "customer" '
        "WHERE (id <= 20)"
    ) in text
    assert "seed product (5%) (parents only, ~10 rows):" in text
    assert "substr(md5('subsetter-v1|' || COALESCE(CAST(\"id\" AS TEXT), '')), 1, 6)" in text
    assert (
        "passthrough category (parents only, ~18 rows):\n"
        '    SELECT "id", "parent_id", "name" FROM "category"' in text
    )
    cycles = text.split("Cycles")[1].split("Estimated subset")[0].splitlines()[1:]
    assert [c.strip() for c in cycles] == ["category", "employee"]
    assert "  customer: seed customer (where id <= 20); " in text
    assert "[~20 of 300 rows (6.7%)" in text, "estimated rows of the seed table"
    assert "\nEstimated subset: ~" in text


@pytest.mark.parametrize("fmt", ["text", "json", "yaml"])
def test_plan_output_is_stable(fmt: str) -> None:
    first = invoke("plan", str(DEMO), "--format", fmt)
    assert first.exit_code == 0, first.stderr
    assert first.stdout == invoke("plan", str(DEMO), "--format", fmt).stdout


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_plan_as_data(fmt: str) -> None:
    result = invoke("plan", str(DEMO), "-f", fmt)
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout) if fmt == "json" else yaml.safe_load(result.stdout)
    assert list(doc) == [
        "tables", "seeds", "relations", "cycles", "load_order", "excluded", "warnings", "estimate"
    ]  # fmt: skip
    assert doc["load_order"] == [t["table"] for t in doc["tables"]]
    assert set(doc["load_order"]) == DEMO_TABLES
    customer = next(t for t in doc["tables"] if t["table"] == "customer")
    assert customer["why"][0] == "seed customer (where id <= 20)"
    assert customer["estimate"]["rows"] == 20
    assert customer["estimate"]["source_rows"] == 300
    order_item = next(t for t in doc["tables"] if t["table"] == "order_item")
    assert order_item["estimate"]["path"] == ["customer", "orders", "order_item"]
    assert doc["seeds"][0] == {
        "label": "seed customer (where id <= 20)",
        "table": "customer",
        "kind": "seed",
        "children": True,
        "where": "id <= 20",
        "percent": None,
        "limit": None,
        "sql": 'SELECT "id", "first_name", "last_name", "email", "created_at" FROM "customer" '
        "WHERE (id <= 20)",
        "estimated_rows": 20,
    }
    assert doc["seeds"][2]["kind"] == "passthrough"
    down = doc["relations"]["downstream"]
    assert [r["relation"] for r in down] == sorted(r["relation"] for r in down)
    followed = {r["relation"]: r["follow"] for r in down}
    assert followed["orders(customer_id) -> customer(id)"] == "yes"
    assert followed["order_item(product_id) -> product(id)"] == "no", "product seeds no children"
    assert doc["relations"]["max_depth"] is None
    assert [c["tables"] for c in doc["cycles"]] == [["category"], ["employee"]]
    assert doc["estimate"]["rows"] == sum(t["estimate"]["rows"] for t in doc["tables"])


def test_plan_without_estimates_and_bad_format() -> None:
    result = invoke("plan", str(DEMO), "--no-estimate", "--format", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert "estimate" not in doc and "estimate" not in doc["tables"][0]
    bad = invoke("plan", str(DEMO), "--format", "xml")
    assert bad.exit_code == 2
    assert "xml" in bad.stderr


# ---------------------------------------------------------------- run


def test_run_dry_run_moves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out" / "dry.sqlite"
    result = invoke("run", str(DEMO), "--target-url", f"sqlite:///{target}", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "dry run: no data moved" in result.stdout
    assert "Tables (load order, parents first):" in result.stdout
    assert not target.exists(), "a dry run creates no database file"
    assert not target.parent.exists()


def test_target_url_file_path_is_relative_to_the_working_directory(tmp_path: Path) -> None:
    done = subset("run", str(DEMO), "--target-url", "sqlite:///here.sqlite", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert tables_in(tmp_path / "here.sqlite") == DEMO_TABLES


def test_keep_staging_never_overwrites_the_target(tmp_path: Path) -> None:
    target = tmp_path / "t.sqlite"
    url = f"sqlite:///{target}"
    assert invoke("run", str(DEMO), "--target-url", url, "-q").exit_code == 0
    before = target.read_bytes()
    result = invoke(
        "run", str(DEMO), "--target-url", url, "--replace", "--keep-staging", str(target)
    )
    assert result.exit_code == 1
    assert_one_error_line(result.stderr, "--keep-staging", "source or target")
    assert target.read_bytes() == before


def test_run_with_report(loaded: tuple[Path, dict[str, object], Result]) -> None:
    target, report, result = loaded
    assert f"subset loaded into sqlite:///{target}" in result.stdout
    assert "integrity verified" in result.stdout
    rows = report["tables"]
    assert isinstance(rows, dict)
    assert set(rows) == DEMO_TABLES
    for table, entry in rows.items():
        assert entry["rows"] == count(target, table), table
        assert entry["seconds"] >= 0
    assert rows["customer"]["rows"] == 20
    assert rows["category"]["rows"] == count(DEMO_SOURCE, "category")  # passthrough
    assert report["total_rows"] == sum(e["rows"] for e in rows.values())
    stages = report["stages"]
    assert isinstance(stages, dict)
    assert set(stages) >= {"reflect", "plan", "extract", "load"}
    assert all(isinstance(s, float) and s >= 0 for s in stages.values())
    assert report["verification"] == {
        "ok": True,
        "foreign_keys_checked": 10,
        "orphans": {},
    }
    assert report["dry_run"] is False
    assert [c["tables"] for c in report["cycles"]] == [["category"], ["employee"]]
    assert tables_in(target) == DEMO_TABLES


def test_run_target_by_name_from_config_env(tmp_path: Path) -> None:
    target = tmp_path / "named.sqlite"
    result = invoke(
        "run", str(DEMO), "--target", "local", "--quiet",
        env={"DEMO_TARGET_URL": f"sqlite:///{target}"},
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert tables_in(target) == DEMO_TABLES


def test_run_without_target_is_an_error() -> None:
    result = invoke("run", str(DEMO))
    assert result.exit_code == 1
    assert_one_error_line(result.stderr, "no target", "--target")


def test_run_unknown_target_name() -> None:
    result = invoke("run", str(DEMO), "--target", "staging")
    assert result.exit_code == 1
    assert_one_error_line(result.stderr, "demo.yml:", 'no target "staging"', "local")


# ---------------------------------------------------------------- verify


def test_verify_good_target(loaded: tuple[Path, dict[str, object], Result]) -> None:
    target = loaded[0]
    result = invoke("verify", str(DEMO), "--target-url", f"sqlite:///{target}")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "integrity verified: 10 foreign keys, no orphan rows"


def test_verify_orphan_exits_3(
    loaded: tuple[Path, dict[str, object], Result], tmp_path: Path
) -> None:
    target = tmp_path / "broken.sqlite"
    shutil.copyfile(loaded[0], target)
    conn = sqlite3.connect(target)
    conn.execute("PRAGMA foreign_keys=OFF")
    (customer,) = conn.execute("SELECT customer_id FROM orders ORDER BY id LIMIT 1").fetchone()
    orders = conn.execute("SELECT COUNT(*) FROM orders WHERE customer_id = ?", (customer,))
    (orphans,) = orders.fetchone()
    with conn:
        conn.execute("DELETE FROM customer WHERE id = ?", (customer,))
    conn.close()
    result = invoke("verify", str(DEMO), "--target-url", f"sqlite:///{target}")
    assert result.exit_code == 3, result.stderr
    assert "integrity check failed" in result.stdout
    assert "orders" in result.stdout
    assert "customer_id" in result.stdout
    assert f"{orphans} orphan row(s)" in result.stdout


def test_verify_missing_target_file_is_not_created(tmp_path: Path) -> None:
    target = tmp_path / "never.sqlite"
    result = invoke("verify", str(DEMO), "--target-url", f"sqlite:///{target}")
    assert result.exit_code == 1
    assert_one_error_line(result.stderr, "no such SQLite file")
    assert not target.exists()


ORPHAN_SQL = {
    # Each engine's way to switch foreign key checks off for one session.
    "postgres": "SET session_replication_role = replica",
    "mysql": "SET FOREIGN_KEY_CHECKS = 0",
}


@pytest.mark.server
@pytest.mark.parametrize("engine", ["postgres", "mysql"])
def test_verify_on_server_target(make_backend: Callable[[str], Backend], engine: str) -> None:
    target = make_backend(engine)
    assert invoke("run", str(DEMO), "--target-url", target.url, "-q").exit_code == 0
    result = invoke("verify", str(DEMO), "--target-url", target.url)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "integrity verified: 10 foreign keys, no orphan rows"
    (customer,) = target.query("SELECT MIN(customer_id) FROM orders")[0]
    delete = f"DELETE FROM customer WHERE id = {int(customer)}"
    if engine == "postgres":
        target.execute(f"{ORPHAN_SQL[engine]}; {delete}")
    else:  # pymysql runs one statement per call: keep one session for both
        conn = pymysql.connect(
            host="127.0.0.1", user="root", database=target.database, autocommit=True
        )
        with conn, conn.cursor() as cur:
            cur.execute(ORPHAN_SQL[engine])
            cur.execute(delete)
    assert target.query(f"SELECT COUNT(*) FROM customer WHERE id = {int(customer)}") == [(0,)]
    result = invoke("verify", str(DEMO), "--target-url", target.url)
    assert result.exit_code == 3, result.stderr
    assert "integrity check failed" in result.stdout
    assert "customer_id" in result.stdout


def test_verify_empty_target_is_an_error(tmp_path: Path) -> None:
    target = tmp_path / "empty.sqlite"
    sqlite3.connect(target).close()
    result = invoke("verify", str(DEMO), "--target-url", f"sqlite:///{target}")
    assert result.exit_code == 1
    assert_one_error_line(result.stderr, "holds none of the subset's tables")


# ---------------------------------------------------------------- usage and errors


@pytest.mark.parametrize(
    "args",
    [
        ("run", str(DEMO), "--no-such-option"),
        ("run",),
        ("verify",),
        ("plan", str(DEMO), "extra-argument"),
        ("frobnicate", str(DEMO)),
        ("run", str(DEMO), "--batch-size", "many"),
    ],
)
def test_bad_usage_exits_2(args: tuple[str, ...]) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "Usage:" in result.stderr
    assert "Traceback" not in result.stderr


def test_entry_point_normal_error_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("source:\n  url: sqlite:///a.db\nseeds: [\n")
    done = subset("validate", str(bad))
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("error: bad.yml:")
    assert_one_error_line(done.stderr, "not valid YAML")
    assert done.stderr.count("\n") == 1


def test_entry_point_debug_shows_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("source:\n  url: sqlite:///a.db\nseeds: [\n")
    done = subset("validate", str(bad), "--debug")
    assert done.returncode == 1
    assert "Traceback (most recent call last):" in done.stderr
    assert "subsetter.errors.ConfigError" in done.stderr
    assert_error_line = [ln for ln in done.stderr.splitlines() if ln.startswith("error:")]
    assert len(assert_error_line) == 1


def test_entry_point_bad_usage_exits_2() -> None:
    done = subset("run", "--no-such-option")
    assert done.returncode == 2
    assert "No such option" in done.stderr


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "subset"
    assert script.exists()
    done = subprocess.run(
        [str(script), "validate", str(DEMO)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "valid (2 seeds, 1 targets)" in done.stdout


def test_help_lists_commands() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("run", "plan", "validate", "verify"):
        assert command in result.stdout


def test_report_into_missing_folder_fails_before_moving_data(tmp_path: Path) -> None:
    target = tmp_path / "t.sqlite"
    report = tmp_path / "no" / "such" / "report.json"
    result = invoke(
        "run", str(DEMO), "--target-url", f"sqlite:///{target}", "--report", str(report)
    )
    assert result.exit_code == 1
    assert_one_error_line(result.stderr, "--report", str(report.parent))
    assert not target.exists()


def test_report_that_cannot_be_written(tmp_path: Path) -> None:
    target = tmp_path / "t.sqlite"
    report = tmp_path / "a-folder"
    report.mkdir()
    result = invoke(
        "run", str(DEMO), "--target-url", f"sqlite:///{target}", "--report", str(report)
    )
    assert result.exit_code == 1
    assert_one_error_line(result.stderr, "cannot write the report", str(report))


def test_keep_staging_keeps_a_duckdb_file_and_replaces_it_next_time(tmp_path: Path) -> None:
    staging = tmp_path / "staging.duckdb"
    for extra in ((), ("--replace",)):
        result = invoke(
            "run", str(DEMO), "--target-url", f"sqlite:///{tmp_path / 't.sqlite'}",
            "--keep-staging", str(staging), "-q", *extra,
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
        assert staging.read_bytes()[8:12] == b"DUCK"


def test_plan_with_target_shows_type_mapping_without_connecting(tmp_path: Path) -> None:
    target = tmp_path / "never-created.duckdb"
    result = invoke("plan", str(DEMO), "--target-url", f"duckdb:///{target}")
    assert result.exit_code == 0, result.stderr
    assert "Type mapping on the target:\n  (every column keeps its type)" in result.stdout
    assert not target.exists()
