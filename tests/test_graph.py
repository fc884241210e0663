"""Tests of subsetter.graph: cycles, load order, upstream and downstream sets. No database."""

from __future__ import annotations

import random

import pytest

from subsetter.catalog import ForeignKey, TableRef
from subsetter.graph import FkGraph


def t(name: str) -> TableRef:
    return TableRef(None, name)


def fk(child: str, parent: str, column: str | None = None) -> ForeignKey:
    return ForeignKey(t(child), (column or f"{parent}_id",), t(parent), ("id",))


def graph(tables: str, *fks: ForeignKey) -> FkGraph:
    return FkGraph([t(n) for n in tables.split()], fks)


def assert_parents_first(g: FkGraph, fks: tuple[ForeignKey, ...]) -> None:
    order = g.load_order()
    assert sorted(order) == g.tables, "every table appears once"
    assert len(order) == len(set(order))
    cyclic = {table for cycle in g.cycles() for table in cycle}
    for key in fks:
        if key.child in cyclic and key.parent in cyclic:
            continue
        assert order.index(key.parent) < order.index(key.child), str(key)


SHOP = (
    fk("address", "customer"),
    fk("orders", "customer"),
    fk("orders", "address", "billing_address_id"),
    fk("orders", "address", "shipping_address_id"),
    fk("order_item", "orders"),
    fk("order_item", "product"),
    fk("product", "category"),
    fk("category", "category", "parent_id"),
)
SHOP_TABLES = "customer address orders order_item product category lonely"


def test_self_reference_is_a_cycle() -> None:
    g = graph("employee department", fk("employee", "employee", "manager_id"))
    assert g.cycles() == [(t("employee"),)]


def test_two_foreign_keys_to_one_table_are_not_a_cycle() -> None:
    billing = fk("orders", "address", "billing_address_id")
    shipping = fk("orders", "address", "shipping_address_id")
    g = graph("orders address", billing, shipping)
    assert g.cycles() == []
    assert set(g.parents(t("orders"))) == {billing, shipping}
    assert set(g.children(t("address"))) == {billing, shipping}
    assert g.load_order() == [t("address"), t("orders")]


def test_three_table_cycle() -> None:
    fks = (fk("a", "b"), fk("b", "c"), fk("c", "a"), fk("d", "a"), fk("a", "root"))
    g = graph("a b c d root", *fks)
    assert g.cycles() == [(t("a"), t("b"), t("c"))]
    order = g.load_order()
    assert order[0] == t("root")
    assert order[-1] == t("d")
    # the cycle's members are loaded together, by name
    assert order[1:4] == [t("a"), t("b"), t("c")]


def test_two_table_cycle_and_self_reference_listed_sorted() -> None:
    fks = (
        fk("store", "staff", "manager_staff_id"),
        fk("staff", "store"),
        fk("category", "category", "parent_id"),
    )
    g = graph("store staff category film", *fks)
    assert g.cycles() == [(t("category"),), (t("staff"), t("store"))]


def test_load_order_parents_first() -> None:
    g = graph(SHOP_TABLES, *SHOP)
    assert_parents_first(g, SHOP)
    order = g.load_order()
    assert order.index(t("customer")) < order.index(t("address")) < order.index(t("orders"))
    assert order.index(t("category")) < order.index(t("product")) < order.index(t("order_item"))


def test_load_order_is_deterministic_whatever_the_input_order() -> None:
    rng = random.Random(7)
    tables = [t(n) for n in SHOP_TABLES.split()]
    fks = list(SHOP)
    orders = set()
    for _ in range(20):
        rng.shuffle(tables)
        rng.shuffle(fks)
        orders.add(tuple(FkGraph(tables, fks).load_order()))
    assert len(orders) == 1


def test_load_order_with_cycle_between_parents_and_children() -> None:
    fks = (
        fk("store", "staff", "manager_staff_id"),
        fk("staff", "store"),
        fk("store", "address"),
        fk("staff", "address"),
        fk("rental", "staff"),
        fk("address", "city"),
    )
    g = graph("store staff address rental city", *fks)
    assert_parents_first(g, fks)
    order = g.load_order()
    assert order.index(t("address")) < order.index(t("staff"))
    assert order.index(t("store")) < order.index(t("rental"))


def test_upstream_follows_parents_transitively() -> None:
    g = graph(SHOP_TABLES, *SHOP)
    assert g.upstream([t("order_item")]) == {
        t("order_item"),
        t("orders"),
        t("address"),
        t("customer"),
        t("product"),
        t("category"),
    }
    assert g.upstream([t("customer")]) == {t("customer")}
    assert g.upstream([t("lonely")]) == {t("lonely")}


def test_downstream_follows_children_transitively() -> None:
    g = graph(SHOP_TABLES, *SHOP)
    assert g.downstream([t("customer")]) == {
        t("customer"),
        t("address"),
        t("orders"),
        t("order_item"),
    }
    assert g.downstream([t("category")]) == {t("category"), t("product"), t("order_item")}
    assert g.downstream([t("order_item")]) == {t("order_item")}
    assert g.downstream([]) == set()


def test_upstream_and_downstream_through_a_cycle() -> None:
    fks = (fk("a", "b"), fk("b", "c"), fk("c", "a"), fk("d", "a"), fk("a", "root"))
    g = graph("a b c d root", *fks)
    assert g.upstream([t("d")]) == {t("a"), t("b"), t("c"), t("d"), t("root")}
    assert g.downstream([t("b")]) == {t("a"), t("b"), t("c"), t("d")}


def test_parents_and_children_of_self_reference() -> None:
    manager = fk("employee", "employee", "manager_id")
    g = graph("employee", manager)
    assert g.parents(t("employee")) == [manager]
    assert g.children(t("employee")) == [manager]


def test_foreign_keys_to_tables_outside_the_graph_are_ignored() -> None:
    g = graph("orders", fk("orders", "customer"))
    assert g.tables == [t("orders")]
    assert g.parents(t("orders")) == []
    assert g.load_order() == [t("orders")]


def test_subgraph_keeps_only_edges_inside() -> None:
    g = graph(SHOP_TABLES, *SHOP).subgraph([t("orders"), t("address"), t("order_item")])
    assert g.tables == [t("address"), t("order_item"), t("orders")]
    assert {str(k) for k in g.parents(t("orders"))} == {
        "orders(billing_address_id) -> address(id)",
        "orders(shipping_address_id) -> address(id)",
    }
    assert g.parents(t("order_item")) == [fk("order_item", "orders")]
    assert g.cycles() == []


@pytest.mark.parametrize("schema", [None, "public"])
def test_tables_sorted_by_schema_then_name(schema: str | None) -> None:
    refs = [TableRef(schema, n) for n in ("b", "a", "c")] + [TableRef("aaa", "z")]
    assert FkGraph(refs, []).tables == sorted(refs)
    assert FkGraph(refs, []).tables[0] == (TableRef("aaa", "z") if schema else TableRef(None, "a"))
