"""The docs are tested like code: every example config and command in them runs.

Code blocks are read from the Markdown itself. A block preceded by ``<!-- file: NAME -->`` is
written to NAME in a sandbox; each line of a ``bash`` block that starts with ``subset`` is run
there, in page order, and must exit 0 (or the ``# exit N`` its comment says). Recipes (CI
workflows) run their ``subset`` steps against a fresh PostgreSQL database, with the demo shop
as production. The reference pages must match what ``docs/generate.py`` writes, and the site
must build with ``mkdocs build --strict``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

import subsetter
from subsetter.cli import app

if TYPE_CHECKING:
    from conftest import Backend

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
DEMO_SOURCE = REPO / "fixtures_db" / "demo.sqlite"
BIN = Path(sys.executable).parent
PAGES = [*sorted(DOCS.rglob("*.md")), REPO / "README.md"]
RECIPES = sorted((DOCS / "recipes").glob("*.md"))
BLOCK = re.compile(
    r"(?:<!-- file: (?P<file>[\w./-]+) -->\n)?```(?P<lang>\w*)\n(?P<body>.*?)```", re.S
)

sys.path.insert(0, str(DOCS))
import generate  # noqa: E402  (docs/generate.py)


@dataclass(frozen=True)
class Block:
    lang: str
    body: str
    file: str | None


def blocks(page: Path) -> list[Block]:
    return [Block(m["lang"], m["body"], m["file"]) for m in BLOCK.finditer(page.read_text())]


def commands(body: str) -> Iterator[tuple[str, int]]:
    """``subset`` command lines of a shell block, with the exit code each expects."""
    for line in body.replace("\\\n", " ").splitlines():
        line = line.strip()
        if not line.startswith("subset "):
            continue
        expected = re.search(r"#\s*exit (\d+)\s*$", line)
        yield line, int(expected[1]) if expected else 0


class AnyVariable(Mapping[str, str]):
    """An environment in which every ``${VAR}`` is set, to validate configs that use them."""

    def __getitem__(self, key: str) -> str:
        return "sqlite:///x.db"

    def __contains__(self, key: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def sandbox(tmp_path: Path) -> Path:
    (tmp_path / "fixtures_db").mkdir(parents=True)
    shutil.copy(DEMO_SOURCE, tmp_path / "fixtures_db" / "demo.sqlite")
    return tmp_path


ENV = {"CI": "true", "SUBSET_MASK_KEY": "docs-test-key"}  # the quickstart exports a key


@dataclass(frozen=True)
class Done:
    returncode: int
    stderr: str


def sh(command: str, cwd: Path, env: Mapping[str, str] | None = None) -> Done:
    """Run a documented command: in-process when plain, through bash when it uses the shell."""
    line = command.split(" #")[0]
    if not any(c in line for c in "<>|$;&`"):
        previous = Path.cwd()
        os.chdir(cwd)  # file paths in the command are relative to the sandbox
        try:
            result = CliRunner(env={**ENV, **(env or {})}).invoke(app, shlex.split(line)[1:])
        finally:
            os.chdir(previous)
        return Done(result.exit_code, result.stderr)
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", **ENV, **(env or {})},
    )
    return Done(done.returncode, done.stderr)


def run_page(page: Path, folder: Path, env: Mapping[str, str] | None = None) -> list[str]:
    """Write the page's files and run its commands in order; return the commands run."""
    ran = []
    for block in blocks(page):
        if block.file:
            (folder / block.file).write_text(block.body)
        if block.lang != "bash":
            continue
        for command, expected in commands(block.body):
            done = sh(command, folder, env)
            assert done.returncode == expected, f"{page.name}: {command}\n{done.stderr}"
            assert "Traceback" not in done.stderr, done.stderr
            ran.append(command)
    return ran


# ---------------------------------------------------------------- generated pages


@pytest.mark.parametrize("path", sorted(generate.pages()), ids=lambda p: p.name)
def test_generated_pages_match_the_code(path: Path) -> None:
    assert path.read_text() == generate.pages()[path], (
        f"{path.relative_to(REPO)} is stale: run `python docs/generate.py`"
    )


def test_the_cli_reference_is_the_help_of_every_command() -> None:
    text = (DOCS / "reference" / "cli.md").read_text()
    names = generate.commands()
    assert {"run", "plan", "graph", "explain", "init", "validate", "verify", "schema"} <= set(names)
    for name in names:
        assert f"## subset {name}\n" in text
        assert f"Usage: subset {name} [OPTIONS]" in text
        mentioned = any(
            f"subset {name}" in p.read_text() for p in PAGES if "reference" not in p.parts
        )
        assert mentioned, f"subset {name} is not described outside the reference"


def test_mkdocs_builds_strict(tmp_path: Path) -> None:
    started = time.perf_counter()
    done = subprocess.run(
        [str(BIN / "mkdocs"), "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "quickstart" / "index.html").exists()
    assert time.perf_counter() - started < 60


# ---------------------------------------------------------------- examples


def test_every_example_config_in_the_docs_is_valid() -> None:
    found = 0
    for page in PAGES:
        for block in blocks(page):
            if block.lang != "yaml":
                continue
            data = yaml.safe_load(block.body)
            if not isinstance(data, dict) or "source" not in data:
                continue
            assert block.body.startswith("# yaml-language-server: $schema="), page.name
            subsetter.parse_config(block.body, Path(block.file or "example.yml"), AnyVariable())
            found += 1
    assert found >= 4


def test_every_subset_command_in_the_docs_runs(tmp_path: Path) -> None:
    ran: list[str] = []
    quickstart = DOCS / "quickstart.md"
    assert "export SUBSET_MASK_KEY=" in quickstart.read_text()
    ran += run_page(quickstart, sandbox(tmp_path / "quickstart"))
    folder = tmp_path / "quickstart"
    report = json.loads((folder / "report.json").read_text())
    schema = json.loads((DOCS / "report.schema.json").read_text())
    jsonschema.validate(report, schema)
    assert report["masked"]["customer.email"] == "email", "the report lists masked columns"
    assert "flowchart LR" in (folder / "graph.mmd").read_text()
    conn = sqlite3.connect(folder / "subset.sqlite")
    emails = {r[0] for r in conn.execute("SELECT email FROM customer")}
    conn.close()
    source = sqlite3.connect(DEMO_SOURCE)
    assert emails and not emails & {r[0] for r in source.execute("SELECT email FROM customer")}
    source.close()
    # Other pages run against the quickstart's config, named prod.yml like theirs.
    config = next(b.body for b in blocks(quickstart) if b.file == "prod.yml")
    for page in PAGES:
        if page in RECIPES or page == quickstart:
            continue
        folder = sandbox(tmp_path / page.stem)
        (folder / "prod.yml").write_text(config)
        ran += run_page(page, folder)
    assert any(c.startswith("subset run prod.yml") for c in ran)
    assert len(ran) >= 15


def test_the_pytest_fixture_example_runs(tmp_path: Path) -> None:
    folder = sandbox(tmp_path)
    quickstart = blocks(DOCS / "quickstart.md")
    (folder / "prod.yml").write_text(next(b.body for b in quickstart if b.file == "prod.yml"))
    written = [b.file for b in blocks(DOCS / "api.md") if b.file]
    for block in blocks(DOCS / "api.md"):
        if block.file:
            (folder / block.file).write_text(block.body)
    assert written == ["conftest.py", "test_orders.py"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)],
        cwd=folder, capture_output=True, text=True, timeout=180,
        env={**os.environ, "SUBSET_MASK_KEY": "docs-test-key"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def _ci_commands(data: Any) -> Iterator[str]:
    """``subset`` commands in a CI file: GitHub's ``run:`` steps, GitLab's ``script:`` lines."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "run" and isinstance(value, str):
                yield from (c for c, _ in commands(value))
            elif key == "script" and isinstance(value, list):
                yield from (c for item in value for c, _ in commands(str(item)))
            else:
                yield from _ci_commands(value)
    elif isinstance(data, list):
        for item in data:
            yield from _ci_commands(item)


@pytest.mark.server
@pytest.mark.parametrize("page", RECIPES, ids=lambda p: p.stem)
def test_recipe_steps_run_against_postgres(
    page: Path, tmp_path: Path, make_backend: Callable[[str], Backend]
) -> None:
    folder = sandbox(tmp_path)
    for recipe in [DOCS / "recipes" / "github-actions.md", page]:  # GitLab's uses GitHub's file
        for block in blocks(recipe):
            if block.file:
                (folder / block.file).write_text(block.body)
    target = make_backend("postgres")
    env = {
        "PROD_DATABASE_URL": f"sqlite:///{folder / 'fixtures_db' / 'demo.sqlite'}",
        "CI_DATABASE_URL": target.url,
        "STAGING_DATABASE_URL": target.url,
    }
    steps = [
        c
        for b in blocks(page)
        if b.lang == "yaml" and not b.file
        for c in _ci_commands(yaml.safe_load(b.body))
    ]
    assert any(c.startswith("subset run") for c in steps), page.name
    repeat = 2 if page.stem == "nightly" else 1  # a refresh replaces what the last one loaded
    for _ in range(repeat):
        for command in steps:
            done = sh(command.split(" && ")[0], folder, env)
            assert done.returncode == 0, f"{command}\n{done.stderr}"
    emails = {r[0] for r in target.query("SELECT email FROM customer")}
    source = sqlite3.connect(DEMO_SOURCE)
    assert emails and not emails & {r[0] for r in source.execute("SELECT email FROM customer")}
    source.close()


def test_the_exit_codes_page_matches_the_errors() -> None:
    documented = {
        int(m[1]) for m in re.finditer(r"^\| (\d+) \|", (DOCS / "ci.md").read_text(), re.M)
    }
    assert documented == {0, 1, 2, 3, 4, 130}

    def tree(cls: type[subsetter.SubsetterError]) -> Iterator[type[subsetter.SubsetterError]]:
        yield cls
        for sub in cls.__subclasses__():
            yield from tree(sub)

    assert {cls.exit_code for cls in tree(subsetter.SubsetterError)} <= documented
    assert subsetter.BudgetError.exit_code == 4 and subsetter.IntegrityError.exit_code == 3
