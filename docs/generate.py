"""Regenerate the reference pages from the code: ``python docs/generate.py``.

- ``docs/reference/config.md`` from the Pydantic models of the config file;
- ``docs/reference/cli.md`` from ``subset --help`` and each command's ``--help``;
- ``docs/config.schema.json`` from ``subset schema``.

``tests/test_docs.py`` fails when a committed page differs from what this script writes, so
the reference cannot drift from the code.
"""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined
from typer.testing import CliRunner

import subsetter
from subsetter.cli import app
from subsetter.config import Config

DOCS = Path(__file__).resolve().parent
WIDTH = "100"


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        return " or ".join(names) + (" or null" if type(None) in args else "")
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (tuple, list):
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"mapping of {_type_name(args[0])} to {_type_name(args[1])}"
    if origin is typing.Annotated:
        return _type_name(args[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation.__name__
    return getattr(annotation, "__name__", str(annotation)).replace("typing.", "")


def _models(annotation: Any) -> list[tuple[str, type[BaseModel]]]:
    """Nested models of a field, each with the path suffix that reaches it."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [("", annotation)]
    if origin in (tuple, list) and args:
        return [("[]" + s, m) for s, m in _models(args[0])]
    if origin is dict and len(args) == 2:
        return [(".NAME" + s, m) for s, m in _models(args[1])]
    found = []
    for arg in args:
        found += _models(arg)
    return found


def _default(field: Any) -> str:
    if field.is_required():
        return "required"
    value = field.default
    if value is PydanticUndefined:
        value = field.default_factory() if field.default_factory else None
    if isinstance(value, BaseModel):
        return "see below"
    return f"`{json.dumps(value, default=str)}`"


def config_reference() -> str:
    """One table per model of the config file: key, type, default, meaning."""
    lines = [
        "# Config reference",
        "",
        "Generated from the Pydantic models by `python docs/generate.py`; editors can validate",
        "a config against [config.schema.json](../config.schema.json) (`subset schema`).",
        "Unknown keys are errors, reported with the file, line and column.",
        "",
    ]
    seen: set[type[BaseModel]] = set()
    queue: list[tuple[str, type[BaseModel]]] = [("", Config)]
    while queue:
        prefix, model = queue.pop(0)
        if model in seen:
            continue
        seen.add(model)
        title = prefix or "top level"
        lines += [f"## `{title}`" if prefix else "## Top level", ""]
        doc = (model.__doc__ or "").strip().splitlines()[0]
        lines += [doc, "", "| key | type | default | meaning |", "|---|---|---|---|"]
        for name, field in model.model_fields.items():
            key = f"{prefix}.{name}" if prefix else name
            nested_models = _models(field.annotation)
            text = field.description or ""
            if not text and nested_models:
                text = (nested_models[0][1].__doc__ or "").strip().splitlines()[0]
            meaning = text.replace("|", "\\|").replace("\n", " ")
            row = f"| `{key}` | {_type_name(field.annotation)} | {_default(field)} | {meaning} |"
            lines.append(row)
            for suffix, nested in nested_models:
                queue.append((key + suffix, nested))
        lines.append("")
    return "\n".join(lines)


def _help(*args: str) -> str:
    runner = CliRunner(env={"COLUMNS": WIDTH, "TERMINAL_WIDTH": WIDTH, "NO_COLOR": "1"})
    result = runner.invoke(app, [*args, "--help"])
    assert result.exit_code == 0, result.output
    return "\n".join(line.rstrip() for line in result.stdout.strip("\n").splitlines())


def commands() -> list[str]:
    """The ``subset`` commands, in the order ``subset --help`` lists them."""
    return [c.name or c.callback.__name__ for c in app.registered_commands if c.callback]


def cli_reference() -> str:
    """``subset --help`` and every command's ``--help``, verbatim."""
    lines = [
        "# CLI reference",
        "",
        "The output of `--help`, as the installed `subset` prints it (checked by a test).",
        "Exit codes: 0 success, 1 error, 2 bad usage, 3 integrity check or audit failed,",
        "4 budget exceeded (nothing loaded), 130 interrupted.",
        "",
        "## subset",
        "",
        "```text",
        _help(),
        "```",
        "",
    ]
    for name in commands():
        lines += [f"## subset {name}", "", "```text", _help(name), "```", ""]
    return "\n".join(lines)


def pages() -> dict[Path, str]:
    """Every generated file and its content."""
    return {
        DOCS / "reference" / "config.md": config_reference(),
        DOCS / "reference" / "cli.md": cli_reference(),
        DOCS / "config.schema.json": json.dumps(
            subsetter.config_json_schema(), indent=2, sort_keys=True
        )
        + "\n",
    }


if __name__ == "__main__":
    for path, text in pages().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(DOCS.parent)}")
