"""Tests of the review and onboarding commands: ``subset graph``, ``subset explain``,
``subset init``, on the bundled demo (and Pagila on PostgreSQL for init's suggestions).
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import pydot
import pytest
from typer.testing import CliRunner, Result

import subsetter
from subsetter.cli import app

if TYPE_CHECKING:
    from conftest import Backend

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "configs" / "demo.yml"
DEMO_SOURCE = REPO / "fixtures_db" / "demo.sqlite"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


# ---------------------------------------------------------------- graph


def test_graph_mermaid_marks_seeds_relations_cycles_and_collapses_passthrough() -> None:
    result = invoke("graph", str(DEMO))
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert text.startswith("flowchart LR\n")
    assert 't_customer["customer (seed)"]' in text
    assert '  t_orders ==>|"customer_id"| t_customer' in text, "followed to children: thick"
    assert '  t_order_item -.->|"product_id"| t_product' in text, "parents only: dotted"
    assert '  t_employee -.->|"manager_id [cycle]"| t_employee' in text
    assert 'passthrough[("passthrough: category")]' in text
    assert "t_category" not in text, "passthrough tables are collapsed"
    assert "class t_employee cycle" in text
    assert invoke("graph", str(DEMO)).stdout == text, "stable"
    expanded = invoke("graph", str(DEMO), "--expand-passthrough").stdout
    assert 't_category["category"]' in expanded


def test_graph_dot_parses_and_clusters_by_schema(tmp_path: Path) -> None:
    result = invoke("graph", str(DEMO), "--format", "dot")
    assert result.exit_code == 0, result.stderr
    (graph,) = pydot.graph_from_dot_data(result.stdout)
    names = {n.get_name().strip('"') for n in graph.get_nodes()}
    assert {"t_customer", "t_orders", "t_order_item", "passthrough"} <= names
    edges = {
        (e.get_source().strip('"'), e.get_destination().strip('"')): e for e in graph.get_edges()
    }
    assert edges[("t_order_item", "t_product")].get("style") == "dashed"
    assert edges[("t_orders", "t_customer")].get("penwidth") == "2"


def test_the_rendered_example_in_the_docs_is_of_the_demo() -> None:
    svg = (REPO / "docs" / "img" / "demo-graph.svg").read_text()
    dot = invoke("graph", str(DEMO), "--format", "dot").stdout
    for node in re.findall(r'^  "(t_\w+)" \[', dot, re.M):
        assert f"<title>{node}</title>" in svg, f"{node}: regenerate docs/img/demo-graph.svg"


def test_graph_clusters_by_schema() -> None:
    from subsetter.catalog import TableRef
    from subsetter.diagram import render_diagram
    from subsetter.plan import Plan

    a, b = TableRef("sales", "orders"), TableRef("crm", "customer")
    plan = Plan((b, a), (), (), (), (), ())
    mermaid = render_diagram(plan, "mermaid")
    assert '  subgraph s_crm["crm"]\n    t_crm_customer["customer"]\n  end' in mermaid
    dot = render_diagram(plan, "dot")
    (graph,) = pydot.graph_from_dot_data(dot)
    assert {s.get_name().strip('"') for s in graph.get_subgraphs()} == {
        "cluster_crm",
        "cluster_sales",
    }


# ---------------------------------------------------------------- explain


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("explain")
    staging, target = folder / "staging.duckdb", folder / "t.sqlite"
    result = invoke(
        "run", str(DEMO), "--target-url", f"sqlite:///{target}", "-q",
        "--keep-staging", str(staging),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return staging, target


def test_explain_walks_from_a_seed_row_to_the_row(kept: tuple[Path, Path]) -> None:
    staging, target = kept
    conn = sqlite3.connect(target)
    order, line = conn.execute(
        "SELECT order_id, line_no FROM order_item ORDER BY order_id, line_no LIMIT 1"
    ).fetchone()
    (customer,) = conn.execute("SELECT customer_id FROM orders WHERE id = ?", (order,)).fetchone()
    conn.close()
    result = invoke("explain", str(DEMO), "order_item", str(order), str(line), "-s", str(staging))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"customer(id={customer}): seed customer (where id <= 20)"
    assert lines[-1].strip().startswith(f"-> order_item(order_id={order}, line_no={line}): ")
    assert "child of the orders row above, via order_item(order_id) -> orders(id)" in lines[-1]
    steps = subsetter.explain(subsetter.load_config(DEMO), staging, "order_item", [order, line])
    assert steps[0].table.name == "customer"
    assert steps[-1].key == {"order_id": order, "line_no": line}


def test_explain_a_parent_row_and_a_passthrough_row(kept: tuple[Path, Path]) -> None:
    staging, target = kept
    conn = sqlite3.connect(target)
    (boss,) = conn.execute("SELECT id FROM employee WHERE manager_id IS NULL").fetchone()
    conn.close()
    result = invoke("explain", str(DEMO), "employee", str(boss), "--staging", str(staging))
    assert result.exit_code == 0, result.stderr
    assert "seed customer" in result.stdout.splitlines()[0]
    assert re.search(r"employee\(id=\d+\): parent of the employee row above", result.stdout)
    passthrough = invoke("explain", str(DEMO), "category", "1", "-s", str(staging))
    assert passthrough.stdout.strip() == "category(id=1): passthrough category"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("customer", "299"), "no row of customer with id=299 is in the subset"),
        (("customer", "1", "2"), "identified by 1 column(s) (id); got 2 value(s)"),
        (("custmer", "1"), 'Did you mean "customer"?'),
    ],
)
def test_explain_errors(kept: tuple[Path, Path], args: tuple[str, ...], message: str) -> None:
    result = invoke("explain", str(DEMO), *args, "-s", str(kept[0]))
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_explain_needs_a_staging_file(tmp_path: Path) -> None:
    result = invoke("explain", str(DEMO), "customer", "1", "-s", str(DEMO))
    assert result.exit_code == 1
    assert "not a staging file" in result.stderr


# ---------------------------------------------------------------- init


def test_init_writes_a_config_that_plans_and_runs(tmp_path: Path) -> None:
    out = tmp_path / "prod.yml"
    result = invoke("init", "--source", f"sqlite:///{DEMO_SOURCE}", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    text = out.read_text()
    assert text.startswith("# yaml-language-server: $schema=")
    config = subsetter.load_config(out)
    assert [s.table for s in config.seeds] == ["customer"], "most child tables"
    assert config.passthrough == ("category", "employee"), "small lookups"
    for table in ("address", "order_item", "orders", "payment", "product"):
        assert f"#   {table}: " in text, "every table is listed"
    assert "  customer.email: email\n" in text, "personal columns get a mask"
    assert config.masks, "the suggested masks are valid config"
    run = CliRunner(env={"SUBSET_MASK_KEY": "k"}).invoke(
        app, ["run", str(out), "--target", "staging", "-q"]
    )
    assert run.exit_code == 0, run.stderr
    conn = sqlite3.connect(tmp_path / "subset.sqlite")
    emails = {r[0] for r in conn.execute("SELECT email FROM customer")}
    conn.close()
    source = sqlite3.connect(DEMO_SOURCE)
    assert not emails & {r[0] for r in source.execute("SELECT email FROM customer")}
    source.close()
    assert (tmp_path / "subset.sqlite").exists()
    again = invoke("init", "--source", f"sqlite:///{DEMO_SOURCE}", "--out", str(out))
    assert again.exit_code == 1 and "--force" in again.stderr


def test_init_never_writes_a_password() -> None:
    result = invoke("init", "--source", "postgresql://u:s3cret@127.0.0.1:1/db")
    assert result.exit_code == 1
    assert "s3cret" not in result.stdout + result.stderr


@pytest.mark.server
@pytest.mark.datasets
def test_init_on_pagila_suggests_lookups_and_a_seed(pagila_pg: Backend) -> None:
    url = pagila_pg.url.replace("postgres@", "postgres:pw@")
    text = subsetter.init_config(url)
    assert "pw" not in text.replace("password", "")
    assert "url: ${SOURCE_DATABASE_URL}" in text
    config = subsetter.parse_config(text.replace("${SOURCE_DATABASE_URL}", pagila_pg.url), None, {})
    assert "public.language" in config.passthrough or "language" in config.passthrough
    assert len(config.seeds) == 1
    assert "#   public.rental: " in text or "#   rental: " in text
