"""Tests of subsetter.config: parsing, interpolation, file:line:key-precise errors. No database."""

from __future__ import annotations

from pathlib import Path

import pytest

from subsetter.config import Config, load_config, parse_config, resolve_file_url
from subsetter.errors import ConfigError, SubsetterError

FULL = """\
source:
  url: ${PROD_DATABASE_URL}
  schemas: [public]
targets:
  staging:
    url: ${STAGING_DATABASE_URL}
  local:
    url: sqlite:///subset.db
seeds:
  - table: customer
    where: "customer_id <= 50"
  - table: film
    percent: 5
  - table: payment
    limit: 100
    order_by: "payment_date DESC"
    children: false
passthrough: [language, category]
exclude: [audit_log]
virtual_foreign_keys:
  - child: rental(inventory_id)
    parent: inventory(inventory_id)
"""

ENV = {
    "PROD_DATABASE_URL": "postgresql://reader@prod.example/shop",
    "STAGING_DATABASE_URL": "postgresql://writer@staging.example/shop",
}

MINIMAL = "source:\n  url: sqlite:///a.db\nseeds:\n  - table: a\n"


def parse(text: str, env: dict[str, str] | None = None, name: str = "prod.yml") -> Config:
    return parse_config(text, Path("/configs") / name, env or {})


def error_of(text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        parse(text, env)
    return str(info.value)


def test_full_example_keeps_every_key() -> None:
    config = parse(FULL, ENV)

    assert config.source.url == "postgresql://reader@prod.example/shop"
    assert config.source.schemas == ("public",)
    assert set(config.targets) == {"staging", "local"}
    assert config.targets["staging"].url == "postgresql://writer@staging.example/shop"
    assert config.targets["local"].url == "sqlite:///subset.db"

    customer, film, payment = config.seeds
    assert customer.table == "customer"
    assert customer.where == "customer_id <= 50"
    assert (customer.percent, customer.limit, customer.order_by) == (None, None, None)
    assert customer.children is True
    assert film.table == "film"
    assert film.percent == 5
    assert film.where is None
    assert film.children is True
    assert payment.table == "payment"
    assert payment.limit == 100
    assert payment.order_by == "payment_date DESC"
    assert payment.children is False

    assert config.passthrough == ("language", "category")
    assert config.exclude == ("audit_log",)
    (vfk,) = config.virtual_foreign_keys
    assert vfk.child_spec.table == "rental"
    assert vfk.child_spec.columns == ("inventory_id",)
    assert vfk.parent_spec.table == "inventory"
    assert vfk.parent_spec.columns == ("inventory_id",)


def test_config_is_frozen() -> None:
    config = parse(FULL, ENV)
    with pytest.raises(ValueError, match="frozen"):
        config.seeds[0].table = "other"  # type: ignore[misc]


def test_interpolation_substitutes_inside_a_string() -> None:
    text = "source:\n  url: postgresql://${DB_USER}@${DB_HOST}/shop\nseeds:\n  - table: a\n"
    config = parse(text, {"DB_USER": "reader", "DB_HOST": "db.internal"})
    assert config.source.url == "postgresql://reader@db.internal/shop"


def test_interpolation_default_used_when_unset_or_empty() -> None:
    text = "source:\n  url: ${SRC:-sqlite:///fallback.db}\nseeds:\n  - table: a\n"
    assert parse(text, {}).source.url == "sqlite:///fallback.db"
    assert parse(text, {"SRC": ""}).source.url == "sqlite:///fallback.db"
    assert parse(text, {"SRC": "sqlite:///set.db"}).source.url == "sqlite:///set.db"


def test_interpolation_in_lists_and_where() -> None:
    text = (
        "source:\n  url: sqlite:///a.db\n"
        'seeds:\n  - table: ${SEED_TABLE}\n    where: "id <= ${MAX_ID:-10}"\n'
    )
    config = parse(text, {"SEED_TABLE": "customer"})
    assert config.seeds[0].table == "customer"
    assert config.seeds[0].where == "id <= 10"


def test_unset_variable_names_file_line_and_key() -> None:
    message = error_of(FULL, {"PROD_DATABASE_URL": "sqlite:///x.db"})
    assert message.startswith("prod.yml:6:")
    assert "targets.staging.url" in message
    assert "STAGING_DATABASE_URL is not set" in message
    assert "${STAGING_DATABASE_URL:-default}" in message


def test_unset_variable_in_source_is_reported_first() -> None:
    message = error_of(FULL, {})
    assert message.startswith("prod.yml:2:")
    assert "source.url" in message
    assert "PROD_DATABASE_URL" in message


def test_unknown_key_did_you_mean_with_line() -> None:
    message = error_of(MINIMAL + "    wher: id < 3\n")
    assert message.startswith("prod.yml:5:")
    assert "seeds[0].wher" in message
    assert 'unknown key "wher"' in message
    assert 'Did you mean "where"?' in message


def test_unknown_top_level_key_did_you_mean() -> None:
    message = error_of("source:\n  url: sqlite:///a.db\nsedes:\n  - table: a\n")
    assert message.startswith("prod.yml:3:")
    assert 'unknown key "sedes"' in message
    assert 'Did you mean "seeds"?' in message


def test_unknown_key_inside_virtual_foreign_key() -> None:
    text = MINIMAL + "virtual_foreign_keys:\n  - child: a(x)\n    parnet: b(y)\n"
    message = error_of(text)
    assert "prod.yml:7:5 virtual_foreign_keys[0].parnet: " in message
    assert "prod.yml:6:5 virtual_foreign_keys[0].parent: missing required key" in message
    assert 'Did you mean "parent"?' in message


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("source:\n  url: sqlite:///a.db\nseeds: [{table: a]\n", 3),
        ("source:\n  url: sqlite:///a.db\nseeds:\n  - table: a\n - table: b\n", 5),
        ('source:\n  url: "sqlite:///a.db\nseeds: []\n', 4),
    ],
)
def test_malformed_yaml_names_line(text: str, line: int) -> None:
    message = error_of(text)
    assert message.startswith(f"prod.yml:{line}:")
    assert "not valid YAML" in message


def test_unclosed_quote_names_where_it_was_opened() -> None:
    message = error_of(MINIMAL + "    where: 'id < 3\n")
    assert message.startswith("prod.yml:6:1: not valid YAML: found unexpected end of stream")
    assert "while scanning a quoted scalar started at line 5, column 12" in message


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just a string\n"])
def test_top_level_must_be_a_mapping(text: str) -> None:
    assert "expected a mapping" in error_of(text)


@pytest.mark.parametrize(
    ("extra", "key", "words"),
    [
        ("    limit: many\n", "seeds[0].limit", "valid integer"),
        ("    limit: 0\n", "seeds[0].limit", "greater than 0"),
        ("    percent: 500\n", "seeds[0].percent", "less than or equal to 100"),
        ("    percent: 0\n", "seeds[0].percent", "greater than 0"),
        ("    children: maybe\n", "seeds[0].children", "valid boolean"),
        ("    where: [1, 2]\n", "seeds[0].where", "valid string"),
    ],
)
def test_wrong_types_name_line_and_key(extra: str, key: str, words: str) -> None:
    message = error_of(MINIMAL + extra)
    assert message.startswith("prod.yml:5:")
    assert f"{key}:" in message
    assert words in message


def test_seeds_must_be_a_list() -> None:
    message = error_of("source:\n  url: sqlite:///a.db\nseeds: customer\n")
    assert message.startswith("prod.yml:3:")
    assert "seeds:" in message


def test_missing_source_url() -> None:
    message = error_of("source:\n  schemas: [public]\nseeds:\n  - table: a\n")
    assert 'missing required key "url"' in message
    assert "source.url" in message


def test_nothing_to_copy() -> None:
    assert "nothing would be copied" in error_of("source:\n  url: sqlite:///a.db\n")


def test_passthrough_alone_is_enough() -> None:
    config = parse("source:\n  url: sqlite:///a.db\npassthrough: [lookup]\n")
    assert config.passthrough == ("lookup",)
    assert config.seeds == ()


def test_order_by_without_limit() -> None:
    message = error_of(MINIMAL + "    order_by: created_at DESC\n")
    assert message.startswith("prod.yml:4:")
    assert "seeds[0]" in message
    assert "order_by only makes sense with limit" in message


@pytest.mark.parametrize(
    ("child", "parent", "child_cols", "parent_cols"),
    [
        ("rental(inventory_id)", "inventory(inventory_id)", ("inventory_id",), ("inventory_id",)),
        ("line(order_id, line_no)", "order_line( order_id ,line_no )", ("order_id", "line_no"),
         ("order_id", "line_no")),
        ("public.rental(inventory_id)", "inventory(id)", ("inventory_id",), ("id",)),
    ],
)  # fmt: skip
def test_virtual_fk_spec_parsing(
    child: str, parent: str, child_cols: tuple[str, ...], parent_cols: tuple[str, ...]
) -> None:
    text = MINIMAL + f"virtual_foreign_keys:\n  - child: {child}\n    parent: {parent}\n"
    (vfk,) = parse(text).virtual_foreign_keys
    assert vfk.child_spec.table == child.partition("(")[0]
    assert vfk.child_spec.columns == child_cols
    assert vfk.parent_spec.table == parent.partition("(")[0].strip()
    assert vfk.parent_spec.columns == parent_cols


def test_virtual_fk_mismatched_column_counts() -> None:
    text = MINIMAL + "virtual_foreign_keys:\n  - child: line(a, b)\n    parent: head(a)\n"
    message = error_of(text)
    assert message.startswith("prod.yml:6:")
    assert "virtual_foreign_keys[0]" in message
    assert "child has 2 column(s) but parent has 1" in message


@pytest.mark.parametrize(
    ("child", "words"),
    [
        ("rental", 'child must look like "table(column, ...)", got "rental"'),
        ("rental()", 'child must look like "table(column, ...)"'),
        ("rental(a,,b)", "child has an empty column name"),
    ],
)
def test_virtual_fk_malformed_spec(child: str, words: str) -> None:
    text = MINIMAL + f"virtual_foreign_keys:\n  - child: {child}\n    parent: inv(a, b)\n"
    message = error_of(text)
    assert "virtual_foreign_keys[0]" in message
    assert words in message


def test_relative_sqlite_paths_resolve_against_config_folder(tmp_path: Path) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    file = folder / "c.yml"
    file.write_text(
        "source:\n  url: sqlite:///../data/src.db\n"
        "targets:\n  local:\n    url: sqlite:///out/subset.db\n"
        "  abs:\n    url: sqlite:////srv/abs.db\n"
        "  mem:\n    url: 'sqlite:///:memory:'\n"
        "  pg:\n    url: postgresql://u@h/db\n"
        "  duck:\n    url: duckdb:///stage.duckdb?threads=1\n"
        "seeds:\n  - table: a\n"
    )
    config = load_config(file, environ={})
    assert config.path == file.resolve()
    assert config.source_url == f"sqlite:///{(tmp_path / 'data' / 'src.db').resolve()}"
    assert config.target_url("local") == f"sqlite:///{(folder / 'out' / 'subset.db').resolve()}"
    assert config.target_url("abs") == "sqlite:////srv/abs.db"
    assert config.target_url("mem") == "sqlite:///:memory:"
    assert config.target_url("pg") == "postgresql://u@h/db"
    assert config.target_url("duck") == f"duckdb:///{(folder / 'stage.duckdb').resolve()}?threads=1"


def test_relative_paths_do_not_depend_on_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "c.yml"
    file.write_text("source:\n  url: sqlite:///src.db\nseeds:\n  - table: a\n")
    monkeypatch.chdir("/")
    assert load_config(file, environ={}).source_url == f"sqlite:///{tmp_path.resolve()}/src.db"


def test_resolve_file_url_keeps_driver() -> None:
    assert (
        resolve_file_url("sqlite+pysqlite:///a.db", Path("/base"))
        == "sqlite+pysqlite:////base/a.db"
    )


def test_unknown_target_lists_known_ones() -> None:
    config = parse(FULL, ENV)
    with pytest.raises(ConfigError) as info:
        config.target_url("stagin")
    message = str(info.value)
    assert message.startswith("prod.yml:4:")
    assert 'no target "stagin"' in message
    assert "local, staging" in message


def test_locate_names_line_and_key() -> None:
    config = parse(FULL, ENV)
    assert config.locate("seeds", 1, "table") == "prod.yml:12:5 seeds[1].table: "
    assert config.locate("passthrough", 1) == "prod.yml:18:25 passthrough[1]: "
    assert config.locate("virtual_foreign_keys", 0, "child") == (
        "prod.yml:21:5 virtual_foreign_keys[0].child: "
    )


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yml")
    assert "nope.yml" in str(info.value)
    assert "cannot read the config file" in str(info.value)


def test_config_errors_are_subsetter_errors_with_exit_code_1() -> None:
    with pytest.raises(SubsetterError) as info:
        parse("source: [\n")
    assert info.value.exit_code == 1


def test_demo_config_loads() -> None:
    demo = Path(__file__).resolve().parent.parent / "configs" / "demo.yml"
    config = load_config(demo, environ={})
    assert [s.table for s in config.seeds] == ["customer", "product"]
    assert config.passthrough == ("category",)
    assert config.source_url == f"sqlite:///{demo.parent.parent / 'fixtures_db' / 'demo.sqlite'}"
    assert config.target_url("local") == f"sqlite:///{demo.parent.parent / 'demo_subset.sqlite'}"
