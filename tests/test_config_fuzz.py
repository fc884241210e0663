"""Config fuzzing with Hypothesis: whatever the file holds, the answer is a config or a ConfigError.

Three sources of input: arbitrary text (mostly not YAML), arbitrary YAML documents (any
structure of scalars, lists and mappings), and the repository's valid configs mutated one or a
few keys at a time (a key deleted, renamed, given a value of another type, an unknown key
added). Each must parse or fail with a ConfigError naming the file, never with another exception.
Example counts stay modest (a few hundred per test) so the file runs in seconds.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from subsetter import Config, ConfigError, parse_config

REPO = Path(__file__).resolve().parent.parent
CONFIGS = sorted((REPO / "configs").glob("*.yml"))
ENV = {"PROD_URL": "postgresql://u:pw@h/db", "EMPTY": ""}
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["${PROD_URL}", "${MISSING}", "${EMPTY:-x}", "sqlite:///x.db", "a(b)"])
)
documents = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=12) | st.integers(-3, 3), inner, max_size=5)
    ),
    max_leaves=25,
)
KEYS = ["source", "url", "targets", "seeds", "table", "where", "percent", "limit", "order_by",
        "children", "passthrough", "exclude", "virtual_foreign_keys", "child", "parent", "masks",
        "mask_key", "relations", "mode", "protected", "budget"]  # fmt: skip
YAML_BITS = ["source:", " url:", "\n", "  ", "- ", "table: t", "[", "]", "{", "}", ",", ":",
             "&a ", "*a", "!!python/object:os.system ", "!!binary ", "'", '"', "#", "? ", "|",
             ">", "---", "...", "%YAML 1.1", "${X}", "\t", "\x00", "\ufeff", "<<: *a"]  # fmt: skip


def check(text: str) -> Config | None:
    """Parse; the only failure allowed is a ConfigError with a message that names the file."""
    try:
        return parse_config(text, Path("fuzz.yml"), ENV)
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith("fuzz.yml"), message
        assert "Traceback" not in message
        return None


@SETTINGS
@given(st.text(max_size=300))
@example("&a [*a]")  # a list that contains itself
@example("a: &a {b: *a}")
@example("source: &s {url: *s}")
@example("!!python/object/apply:os.system ['echo hacked']")
@example("source: {url: sqlite:///x.db}\nseeds: [{table: t, percent: .nan}]")
@example("source: {url: sqlite:///x.db}\nseeds: [{table: t, limit: 1e400}]")
@example("? [a, b]\n: c")
@example("[" * 3000 + "]" * 3000)
@example("a: " + "{b: " * 3000 + "1" + "}" * 3000)
def test_arbitrary_text(text: str) -> None:
    check(text)


@SETTINGS
@given(st.lists(st.sampled_from(YAML_BITS + KEYS), max_size=40))
def test_yaml_shaped_text(bits: list[str]) -> None:
    check("".join(bits))


@SETTINGS
@given(documents)
def test_arbitrary_documents(document: Any) -> None:
    check(yaml.safe_dump(document, allow_unicode=True))


def _valid(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path of a document (mapping keys and list indexes)."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


def _mutate(document: dict[str, Any], path: tuple[Any, ...], how: str, value: Any) -> None:
    parent: Any = document
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if how == "delete":
        del parent[last]
    elif how == "replace":
        parent[last] = value
    elif how == "rename" and isinstance(parent, dict):
        parent[str(last) + "x"] = parent.pop(last)
    elif how == "add" and isinstance(parent, dict):
        parent[value if isinstance(value, str) else "unknown_key"] = value
    elif how == "wrap":
        parent[last] = [parent[last]]


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
@SETTINGS
@given(data=st.data())
def test_mutated_valid_configs(path: Path, data: st.DataObject) -> None:
    document = copy.deepcopy(_valid(path))
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        paths = _paths(document)
        if not paths:
            break
        where = data.draw(st.sampled_from(paths), label="path")
        how = data.draw(st.sampled_from(["delete", "replace", "rename", "add", "wrap"]))
        _mutate(document, where, how, data.draw(documents, label="value"))
    check(yaml.safe_dump(document, allow_unicode=True))


def test_the_valid_configs_parse() -> None:
    for path in CONFIGS:
        assert check(path.read_text()) is not None, path
