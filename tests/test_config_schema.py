"""Tests of ``subset schema``: the config's JSON Schema, committed in docs/ for editors.

Every example config names it on its first line (``# yaml-language-server: $schema=...``), so
the committed file must match the models, and it must accept what the loader accepts.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

import subsetter
from subsetter.cli import app

REPO = Path(__file__).resolve().parent.parent
COMMITTED = REPO / "docs" / "config.schema.json"
SCHEMA_LINE = "# yaml-language-server: $schema="


def test_subset_schema_prints_the_committed_schema() -> None:
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed == json.loads(COMMITTED.read_text()), (
        "docs/config.schema.json is stale: run `subset schema -o docs/config.schema.json`"
    )
    jsonschema.Draft202012Validator.check_schema(printed)
    assert printed["additionalProperties"] is False


def test_schema_out_file(tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    result = CliRunner().invoke(app, ["schema", "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    assert json.loads(out.read_text()) == subsetter.config_json_schema()
    bad = CliRunner().invoke(app, ["schema", "--out", str(tmp_path / "no" / "s.json")])
    assert bad.exit_code == 1
    assert "cannot write" in bad.stderr


@pytest.mark.parametrize("config", sorted((REPO / "configs").glob("*.yml")), ids=lambda p: p.name)
def test_every_example_config_names_the_schema_and_passes_it(config: Path) -> None:
    first = config.read_text().splitlines()[0]
    assert first.startswith(SCHEMA_LINE), f"{config.name}: first line must be {SCHEMA_LINE}..."
    target = (config.parent / first.removeprefix(SCHEMA_LINE)).resolve()
    assert target == COMMITTED
    jsonschema.validate(yaml.safe_load(config.read_text()), subsetter.config_json_schema())


def test_the_schema_rejects_what_the_loader_rejects() -> None:
    schema = subsetter.config_json_schema()
    good = {"source": {"url": "sqlite:///x.db"}, "seeds": [{"table": "t", "percent": 5}]}
    jsonschema.validate(good, schema)
    for bad in (
        {**good, "seedz": []},
        {"source": {"url": "sqlite:///x.db"}, "seeds": [{"table": "t", "percent": 500}]},
        {"seeds": [{"table": "t"}]},
        {**good, "budget": {"tables": {"t": 0}}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
