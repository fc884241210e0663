"""End to end on the scenario databases of `fixtures_db`: nasty schemas, the demo shop, options.

Every run ends with the integrity check and the row equality check of `tests.e2e`; the nasty
scenarios also compare the target with the closure of their seeds computed in Python from the
source rows (`e2e.expected_closure`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

import subsetter
from fixtures_db import demo, nasty
from tests import oracle
from tests.conftest import REPO, Backend
from tests.e2e import (
    assert_intact,
    assert_rows_equal,
    expected_closure,
    ids,
    make_config,
    run_into,
)

DEMO = Backend("sqlite", f"sqlite:///{demo.BUNDLED}", str(demo.BUNDLED))
"""The bundled demo shop, a source only: tests read it and never write to it."""


def frozen(rows: Iterable[oracle.Row]) -> Counter[tuple[tuple[str, Any], ...]]:
    """Count rows as hashable tuples, to compare tables as multisets."""
    return Counter(tuple(r.items()) for r in rows)


def assert_holds_exactly(target: Backend, expected: dict[str, list[oracle.Row]]) -> None:
    """Assert the target holds exactly the expected rows, as a multiset.

    A target table the expectation does not name must be empty (a table the plan reaches may
    receive no row). Identical source rows of a table without a key arrive as many times as
    the source holds them; a row reached twice is never copied twice.
    """
    present = oracle.tables(target)
    assert set(expected) <= set(present)
    for table in present:
        want = frozen(expected.get(table, []))
        assert frozen(oracle.rows(target, table)) == want, table


def subset_of_nasty(
    source: Backend, make_backend: Callable[[str], Backend], tmp_path: Path, body: str
) -> tuple[Backend, subsetter.RunResult]:
    """Run `body`'s seeds from the nasty source into a fresh database of the same engine."""
    target = make_backend(source.name)
    result = run_into(make_config(tmp_path, source.url, body), target)
    assert_intact(source, target, result)
    assert_rows_equal(source, target)
    return target, result


# --- nasty: node, two self-references -----------------------------------------------------


def node_tree(source: Backend) -> tuple[dict[int, int | None], dict[int, int]]:
    """Return each node's parent and depth (a root is at depth 0), read from the source."""
    parent = {r["id"]: r["parent_id"] for r in oracle.rows(source, "node")}

    def depth(node: int) -> int:
        up = parent[node]
        return 0 if up is None else 1 + depth(up)

    return parent, {n: depth(n) for n in parent}


def ancestors(parent: dict[int, int | None], node: int) -> set[int]:
    found = set()
    while (up := parent[node]) is not None:
        found.add(up)
        node = up
    return found


def descendants(parent: dict[int, int | None], node: int) -> set[int]:
    found: set[int] = set()
    todo = [node]
    while todo:
        node = todo.pop()
        kids = [n for n, p in parent.items() if p == node]
        found.update(kids)
        todo.extend(kids)
    return found


@pytest.mark.parametrize("level", ["leaf", "middle"])
def test_node_seed_pulls_its_ancestors_and_descendants_only(
    level: str, backend: Backend, make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    nasty.build_nasty(backend.url)
    parent, depth = node_tree(backend)
    has_kids = set(parent.values())
    if level == "leaf":
        seed = min(n for n, d in depth.items() if d == 4 and n not in has_kids)
    else:
        seed = min(n for n, d in depth.items() if d == 2 and n in has_kids)

    target, _ = subset_of_nasty(
        backend, make_backend, tmp_path, f"seeds:\n  - table: node\n    where: id = {seed}\n"
    )

    # computed by hand: the chain up (parent_id; its top is every member's root_id) and the
    # subtree below (parent_id; root_id adds nobody below a non-root)
    up, down = ancestors(parent, seed), descendants(parent, seed)
    assert len(up) == depth[seed] and (down == set()) == (level == "leaf")
    assert ids(target, "node") == up | {seed} | down
    # and by the generic rule, with event_log: the events of the seed and its subtree
    closure = expected_closure(backend, [("node", lambda r: r["id"] == seed, True)])
    assert {r["id"] for r in closure["node"]} == up | {seed} | down
    assert {r["node_id"] for r in closure.get("event_log", [])} <= {seed} | down
    assert_holds_exactly(target, closure)


# --- nasty: the three-table cycle ----------------------------------------------------------


@pytest.mark.parametrize("children", [True, False])
def test_cycle_seed_terminates_with_the_minimal_closure(
    children: bool, backend: Backend, make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    nasty.build_nasty(backend.url)
    flag = "true" if children else "false"
    body = f"seeds:\n  - table: cyc_a\n    where: id = 2\n    children: {flag}\n"

    target, result = subset_of_nasty(backend, make_backend, tmp_path, body)

    closure = expected_closure(backend, [("cyc_a", lambda r: r["id"] == 2, children)])
    assert_holds_exactly(target, closure)
    assert sum(map(len, closure.values())) < sum(
        oracle.count(backend, t) for t in ("cyc_a", "cyc_b", "cyc_c")
    )
    if backend.name != "duckdb":  # DuckDB cannot declare the key closing the cycle
        assert any(
            {t.name for t in c} == {"cyc_a", "cyc_b", "cyc_c"} for c in result.plan.cycles
        ), result.plan.cycles


# --- nasty: a composite key onto a unique key that is not the primary key -------------------


def test_shipment_pulls_the_warehouse_of_its_composite_key(
    backend: Backend, make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    nasty.build_nasty(backend.url)
    ships = {r["id"]: r for r in oracle.rows(backend, "shipment")}
    whole = min(i for i, r in ships.items() if r["wh_code"] is not None)
    half = min(i for i, r in ships.items() if r["wh_region"] and r["wh_code"] is None)
    none = min(i for i, r in ships.items() if r["wh_region"] is None)
    chosen = {whole, half, none}

    target, _ = subset_of_nasty(
        backend,
        make_backend,
        tmp_path,
        f"seeds:\n  - table: shipment\n    where: id IN ({', '.join(map(str, chosen))})\n",
    )

    assert ids(target, "shipment") == chosen
    key = (ships[whole]["wh_region"], ships[whole]["wh_code"])
    warehouses = {
        r["id"] for r in oracle.rows(backend, "warehouse") if (r["region"], r["code"]) == key
    }
    assert len(warehouses) == 1
    # exactly the warehouse of the whole key: the half-NULL key is not checked, so pulls nothing
    assert ids(target, "warehouse") == warehouses
    closure = expected_closure(backend, [("shipment", lambda r: r["id"] in chosen, True)])
    assert_holds_exactly(target, closure)


# --- nasty: a table without a primary key --------------------------------------------------


def test_event_log_without_key_keeps_source_duplicates_only(
    backend: Backend, make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    nasty.build_nasty(backend.url)
    events = frozen(oracle.rows(backend, "event_log"))
    twin = next(dict(r) for r, n in events.items() if n == 2)
    node = twin["node_id"]
    # every event of `node` is reached twice: as a seed and as a child of the seed node
    body = f"""
    seeds:
      - table: event_log
        where: node_id = {node} OR node_id IS NULL
      - table: node
        where: id = {node}
    """

    target, _ = subset_of_nasty(backend, make_backend, tmp_path, body)

    closure = expected_closure(
        backend,
        [
            ("event_log", lambda r: r["node_id"] in (node, None), True),
            ("node", lambda r: r["id"] == node, True),
        ],
    )
    copied = frozen(oracle.rows(target, "event_log"))
    assert copied[tuple(twin.items())] == 2  # both identical source rows, each copied once
    assert max(copied.values()) == 2, "a row reached twice (seed and child) is not duplicated"
    assert sum(1 for r in copied if dict(r)["node_id"] is None) == sum(
        1 for r in events if dict(r)["node_id"] is None
    )
    assert_holds_exactly(target, closure)


# --- nasty: mixed case, reserved words, spaces ----------------------------------------------


def test_quoted_names_order_and_order_line(
    backend: Backend, make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    nasty.build_nasty(backend.url)
    body = """
    seeds:
      - table: Order
        where: id IN (2, 7)
      - table: order line
        where: id <= 3
        children: false
    """

    target, result = subset_of_nasty(backend, make_backend, tmp_path, body)

    lines = oracle.rows(backend, "order line")
    want_lines = {r["id"] for r in lines if r["Order ID"] in (2, 7) or r["id"] <= 3}
    assert ids(target, "order line") == want_lines
    assert ids(target, "Order") == {2, 7} | {r["Order ID"] for r in lines if r["id"] <= 3}
    assert set(result.rows) == {"Order", "order line"}
    closure = expected_closure(
        backend,
        [
            ("Order", lambda r: r["id"] in (2, 7), True),
            ("order line", lambda r: r["id"] <= 3, False),
        ],
    )
    assert_holds_exactly(target, closure)


# --- the demo shop, through configs/demo.yml ------------------------------------------------


@pytest.mark.parametrize(
    "engine",
    [
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.server),
        pytest.param("mysql", marks=pytest.mark.server),
    ],
)
def test_demo_config_into(engine: str, make_backend: Callable[[str], Backend]) -> None:
    config = subsetter.load_config(REPO / "configs" / "demo.yml", environ={})
    target = make_backend(engine)

    result = run_into(config, target)

    assert_intact(DEMO, target, result)
    assert_rows_equal(DEMO, target)
    seeds = ids(DEMO, "customer", where="id <= 20")
    assert seeds <= ids(target, "customer")
    # the seed customers' orders, all of them and nothing else: the product sample has
    # `children: false`, so no order (or order_item) is in only because of a sampled product
    their_orders = ids(DEMO, "orders", where="customer_id <= 20")
    assert ids(target, "orders") == their_orders
    assert ids(target, "orders", "customer_id") <= seeds
    items = target.query("SELECT order_id FROM order_item")
    assert items and {r[0] for r in items} <= their_orders
    assert len(items) == len(
        DEMO.query(
            "SELECT 1 FROM order_item WHERE order_id IN "
            "(SELECT id FROM orders WHERE customer_id <= 20)"
        )
    )
    # and the sample did bring products of its own, whose order items stayed behind
    sampled_only = ids(target, "product") - ids(target, "order_item", "product_id")
    assert sampled_only & ids(DEMO, "order_item", "product_id")
    assert oracle.count(target, "category") == oracle.count(DEMO, "category")  # passthrough


# --- options: --replace, percent, passthrough, exclude -------------------------------------

DEMO_SEEDS = """
seeds:
  - table: customer
    where: id <= 10
"""


def counts(db: Backend) -> dict[str, int]:
    return {t: oracle.count(db, t) for t in oracle.tables(db)}


def test_replace_drops_and_reloads_only_the_subset_tables(backend: Backend, tmp_path: Path) -> None:
    backend.execute("CREATE TABLE keepme (id INTEGER PRIMARY KEY, note VARCHAR(20))")
    backend.execute("INSERT INTO keepme VALUES (1, 'untouched')")
    config = make_config(tmp_path, DEMO.url, DEMO_SEEDS)
    first = run_into(config, backend)
    loaded = counts(backend)

    with pytest.raises(subsetter.TargetError, match=r"already has table\(s\).*\bcustomer\b"):
        run_into(config, backend)
    assert counts(backend) == loaded

    with pytest.raises(subsetter.ConfirmationNeeded, match="keepme"):
        run_into(config, backend, replace=True)  # the target holds a table the config lacks
    assert counts(backend) == loaded
    again = run_into(config, backend, replace=True, yes=True)

    assert again.rows == first.rows
    assert counts(backend) == loaded
    assert backend.query("SELECT id, note FROM keepme") == [(1, "untouched")]
    assert_intact(DEMO, backend, again)
    oracle.assert_subset_of(DEMO, backend, [t for t in oracle.tables(backend) if t != "keepme"])


def test_percent_seed_is_deterministic(
    backend: Backend, make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    demo.load_demo(backend.url)
    config = make_config(tmp_path, backend.url, "seeds:\n  - table: customer\n    percent: 10\n")
    first, second = make_backend("sqlite"), make_backend("sqlite")

    run_into(config, first)
    run_into(config, second)

    sampled = oracle.count(first, "customer")
    assert 10 <= sampled <= 60  # about 10% of 300
    assert oracle.tables(first) == oracle.tables(second)
    for table in oracle.tables(first):
        assert frozen(oracle.rows(first, table)) == frozen(oracle.rows(second, table)), table


def test_passthrough_copies_whole_table_and_exclude_writes_null(
    backend: Backend, tmp_path: Path
) -> None:
    body = DEMO_SEEDS + "passthrough: [product]\nexclude: [employee]\n"
    config = make_config(tmp_path, DEMO.url, body)

    result = run_into(config, backend)

    assert_intact(DEMO, backend, result)
    assert "employee" not in oracle.tables(backend)
    assert frozen(oracle.rows(backend, "product")) == frozen(oracle.rows(DEMO, "product"))
    # the source's orders have sales reps; the excluded parent leaves NULL in the target
    assert (
        DEMO.query(
            "SELECT COUNT(*) FROM orders WHERE customer_id <= 10 AND sales_rep_id IS NOT NULL"
        )[0][0]
        > 0
    )
    assert ids(backend, "orders") == ids(DEMO, "orders", where="customer_id <= 10")
    assert ids(backend, "orders", "sales_rep_id") == {None}
    assert_rows_equal(DEMO, backend, skip={"orders": {"sales_rep_id"}})


def test_exclude_of_a_not_null_parent_is_a_plan_error(
    make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    config = make_config(tmp_path, DEMO.url, DEMO_SEEDS + "exclude: [product]\n")
    target = make_backend("sqlite")

    with pytest.raises(subsetter.PlanError, match=r"order_item.*product_id"):
        subsetter.plan_subset(config)
    with pytest.raises(subsetter.PlanError, match=r"order_item.*product_id"):
        run_into(config, target)
    assert oracle.tables(target) == []


# --- virtual foreign keys ------------------------------------------------------------------


def build_undeclared(db: Backend) -> None:
    """Two tables related by `note.account_ref -> account.id`, which no constraint declares."""
    db.execute("CREATE TABLE account (id INTEGER PRIMARY KEY, name VARCHAR(20) NOT NULL)")
    db.execute("CREATE TABLE note (id INTEGER PRIMARY KEY, account_ref INTEGER, body VARCHAR(20))")
    db.execute("INSERT INTO account VALUES (1, 'a1'), (2, 'a2'), (3, 'a3'), (4, 'a4'), (5, 'a5')")
    db.execute(
        "INSERT INTO note VALUES (1, 1, 'n1'), (2, 2, 'n2'), (3, 2, 'n3'), (4, 3, 'n4'), "
        "(5, 3, 'n5'), (6, 4, 'n6'), (7, NULL, 'n7'), (8, 999, 'dangling')"
    )


VIRTUAL = """
virtual_foreign_keys:
  - child: note(account_ref)
    parent: account(id)
"""
VIRTUAL_FK = oracle.FK("note", ("account_ref",), "account", ("id",))


def test_virtual_foreign_key_is_followed_and_verified(
    backend: Backend, make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    build_undeclared(backend)
    body = """
    seeds:
      - table: note
        where: id IN (1, 7)
        children: false
      - table: account
        where: id = 3
    virtual_foreign_keys:
      - child: note(account_ref)
        parent: account(id)
    """
    config = make_config(tmp_path, backend.url, body)
    target = make_backend(backend.name)

    result = run_into(config, target)

    assert_intact(backend, target, result)
    assert_rows_equal(backend, target)
    assert oracle.orphans(target, *VIRTUAL_FK) == 0
    assert ids(target, "account") == {1, 3}  # note 1's parent, and the seed
    assert ids(target, "note") == {1, 7, 4, 5}  # the seeds, and account 3's children
    assert result.verification is not None and result.verification.checked == 1

    target.execute("DELETE FROM account WHERE id = 1")
    broken = subsetter.verify(config, subsetter.RunOptions(target_url=target.url))

    assert not broken.ok
    assert list(broken.orphans.values()) == [1]
    assert "note" in next(iter(broken.orphans)) and "account" in next(iter(broken.orphans))
    assert oracle.orphans(target, *VIRTUAL_FK) == 1


def test_virtual_foreign_key_to_a_missing_row_is_written_as_null(
    backend: Backend, make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    build_undeclared(backend)
    body = "seeds:\n  - table: note\n    where: id IN (2, 8)\n" + VIRTUAL
    target = make_backend(backend.name)

    result = run_into(make_config(tmp_path, backend.url, body), target)

    assert_intact(backend, target, result)
    assert sorted(oracle.rows(target, "note"), key=lambda r: r["id"]) == [
        {"id": 2, "account_ref": 2, "body": "n2"},
        {"id": 8, "account_ref": None, "body": "dangling"},
    ]
    assert ids(target, "account") == {2}
    assert any("note" in w and "NULL" in w for w in result.warnings)
