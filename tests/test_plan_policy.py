"""Tests of the traversal policy in subsetter.plan: relations, max_depth, seed numbers. No database.

Uses the Pagila-like shop catalog of tests/test_plan.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from subsetter.catalog import Catalog, ForeignKey, Table
from subsetter.config import parse_config
from subsetter.dialects import Dialect, dialect_for
from subsetter.errors import ConfigError, PlanError
from subsetter.plan import CycleLoad, Plan, RelationDecision, build_plan, plan_load
from tests.test_plan import (
    DIALECT,
    VIRTUAL,
    col,
    edges,
    names,
    plan_for,
    seed_sql,
    t,
    table,
)

CUSTOMER = "seeds:\n  - table: customer\n    where: customer_id = 1\n"


def decision(plan: Plan, child: str, parent: str) -> RelationDecision:
    found = [r for r in plan.relations if r.fk.child == t(child) and r.fk.parent == t(parent)]
    assert len(found) == 1, found
    return found[0]


def test_follow_false_stops_the_downward_step_but_parents_stay() -> None:
    body = CUSTOMER + "relations:\n  - child: payment\n    parent: customer\n    follow: false\n"
    plan = plan_for(body + VIRTUAL)
    assert "payment.customer_id" not in edges(plan.downstream)
    # payments still come as children of the customer's rentals
    assert "payment.rental_id" in edges(plan.downstream)
    rel = decision(plan, "payment", "customer")
    assert (rel.follow, rel.reason) == ("no", "relations[0]: follow: false")
    assert "payment.customer_id" in edges(plan.upstream)  # integrity is not optional
    assert "customer(customer_id) -> not followed" not in plan.explain()
    assert "payment(customer_id) -> customer(customer_id) (fk_payment_customer_id): not " in (
        plan.explain()
    )


def test_follow_always_pulls_children_of_parent_only_tables() -> None:
    seed = "seeds:\n  - table: payment\n    limit: 10\n    children: false\n"
    plain = plan_for(seed + VIRTUAL)
    assert "film_category" not in names(set(plain.tables))
    body = seed + "relations:\n  - child: film_category\n    parent: film\n    follow: always\n"
    plan = plan_for(body + VIRTUAL)
    assert {"film_category", "category"} <= names(set(plan.tables))
    assert edges(plan.always) == {"film_category.film_id"}
    assert decision(plan, "film_category", "film").follow == "always"
    assert decision(plan, "rental", "inventory").follow == "no"


def test_limit_and_order_by_are_planned_as_a_cap() -> None:
    body = CUSTOMER + (
        "relations:\n  - child: rental\n    parent: customer\n    limit: 10\n"
        "    order_by: rental_id DESC\n"
    )
    plan = plan_for(body + VIRTUAL)
    (fk,) = [k for k in plan.downstream if k.child == t("rental") and k.parent == t("customer")]
    assert plan.limits[fk].limit == 10 and plan.limits[fk].order_by == "rental_id DESC"
    assert "at most 10 per parent row by rental_id DESC" in plan.explain()


def test_max_depth_bounds_the_downward_steps() -> None:
    deep = plan_for("seeds:\n  - table: country\n    where: country_id = 1\n" + VIRTUAL)
    assert "payment" in names(set(deep.tables))
    plan = plan_for("seeds:\n  - table: country\n    where: country_id = 1\nmax_depth: 2\n")
    # country -> city (1) -> address (2): address rows pull no children
    assert "address" in names(set(plan.tables))
    assert "address.city_id" in edges(plan.downstream)
    assert not any(k.parent == t("address") for k in plan.downstream)
    rel = decision(plan, "customer", "address")
    assert rel.follow == "no" and "max_depth 2" in rel.reason
    assert "max_depth 2" in plan.explain()


def test_two_keys_between_the_same_tables_need_columns() -> None:
    rel = "relations:\n  - child: film\n    parent: language\n    follow: false\n"
    with pytest.raises(ConfigError) as err:
        plan_for(CUSTOMER + rel)
    message = str(err.value)
    assert message.startswith("shop.yml:7:5 relations[0].child: 2 foreign keys join film to")
    assert "columns: [language_id]; columns: [original_language_id]" in message
    seed = "seeds:\n  - table: language\n    where: language_id = 1\n"
    ok = plan_for(seed + rel + "    columns: [original_language_id]\n")
    assert decision_by(ok, "language_id").follow == "yes"
    assert decision_by(ok, "original_language_id").follow == "no"


def decision_by(plan: Plan, column: str) -> RelationDecision:
    (found,) = [r for r in plan.relations if r.fk.columns == (column,)]
    return found


def test_relation_without_a_foreign_key_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"relations\[0\].child: no foreign key from rental to"):
        plan_for(CUSTOMER + "relations:\n  - child: rental\n    parent: film\n")
    with pytest.raises(ConfigError, match=r"its keys: columns: \[customer_id\]"):
        plan_for(
            CUSTOMER + "relations:\n  - child: rental\n    parent: customer\n    columns: [x]\n"
        )


def test_relation_policy_rules_are_checked_in_the_config() -> None:
    with pytest.raises(ConfigError, match="follow is false"):
        plan_for(CUSTOMER + "relations:\n  - {child: rental, parent: customer, follow: false, "
                 "limit: 3}\n")  # fmt: skip
    with pytest.raises(ConfigError, match="order_by only makes sense with limit"):
        plan_for(CUSTOMER + "relations:\n  - {child: rental, parent: customer, order_by: x}\n")
    with pytest.raises(ConfigError, match="already sets the policy"):
        plan_for(CUSTOMER + "relations:\n  - {child: rental, parent: customer}\n"
                 "  - {child: rental, parent: customer, follow: false}\n")  # fmt: skip


def test_seed_number_changes_the_sample_and_is_stable() -> None:
    base = seed_sql("seeds:\n  - table: film\n    percent: 5\n")
    one = seed_sql("seeds:\n  - table: film\n    percent: 5\n    seed: 1\n")
    assert "'subsetter-v1|'" in base and "'subsetter-v1/1|'" in one
    assert one == seed_sql("seeds:\n  - table: film\n    percent: 5\n    seed: 1\n")
    limited = seed_sql("seeds:\n  - table: film\n    limit: 5\n    seed: 7\n")
    assert "ORDER BY substr(md5('subsetter-v1/7|'" in limited
    with pytest.raises(ConfigError, match="seed only changes a sample"):
        seed_sql("seeds:\n  - table: film\n    where: film_id < 3\n    seed: 1\n")


def test_polymorphic_virtual_key_is_a_condition_on_the_child() -> None:
    body = CUSTOMER + VIRTUAL + '    where: "staff_id = 1"\n'
    plan = plan_for(body)
    (vfk,) = [k for k in plan.upstream if k.virtual]
    assert vfk.condition == "staff_id = 1"
    assert "where staff_id = 1" in plan.explain()


# ---------------------------------------------------------------- cycle strategies (plan_load)

PG = dialect_for("postgresql://u@h/db")
MYSQL = dialect_for("mysql://u@h/db")


def ring(*, deferrable: bool, nullable: tuple[str, ...] = ()) -> tuple[Plan, Catalog]:
    """a -> b -> c -> a, NOT NULL unless named in ``nullable``."""
    names = ("a", "b", "c")
    tables = [table(n, col("id"), col("next_id", nullable=n in nullable)) for n in names]
    fks = tuple(
        ForeignKey(
            t(n), ("next_id",), t(names[(i + 1) % 3]), ("id",), f"fk_{n}", deferrable=deferrable
        )
        for i, n in enumerate(names)
    )
    catalog = Catalog({tb.ref: tb for tb in tables}, fks, None, "postgresql")
    cfg = parse_config("source:\n  url: sqlite:///x.db\nseeds:\n  - table: a\n", None, {})
    return build_plan(catalog, cfg, DIALECT), catalog


def strategy(plan: Plan, catalog: Catalog, dialect: Dialect, **kw: Any) -> CycleLoad:
    how = plan_load(plan, catalog.foreign_keys, catalog.tables, dialect, "truncate", **kw)
    (cycle,) = how.cycles
    return cycle


def test_cycle_strategy_is_the_first_that_works() -> None:
    plan, cat = ring(deferrable=True)
    assert strategy(plan, cat, PG).strategy == "deferred"
    # MariaDB cannot defer: the same ring has no way in
    with pytest.raises(PlanError, match=r"cycle a <-> b <-> c cannot be loaded") as err:
        strategy(plan, cat, MYSQL)
    assert "a(next_id) -> b(id) (fk_a)" in str(err.value)
    assert strategy(plan, cat, MYSQL, allow_disabling_fk_checks=True).strategy == (
        "checks_disabled"
    )
    plan, cat = ring(deferrable=False, nullable=("b",))
    cycle = strategy(plan, cat, MYSQL)
    assert cycle.strategy == "null_then_update"
    assert [str(fk.child) for fk in cycle.nulled] == ["b"]
    how = plan_load(plan, cat.foreign_keys, cat.tables, MYSQL, "truncate")
    # b goes in first (its key to c is NULL for now), then a (points at b), then c (at a)
    assert [r.name for r in how.order] == ["b", "a", "c"]
    assert strategy(plan, cat, DIALECT).strategy == "unenforced"  # SQLite
    created = plan_load(plan, cat.foreign_keys, cat.tables, MYSQL, "create")
    assert {c.strategy for c in created.cycles} == {"after_load"}


def test_update_on_conflict_needs_a_key() -> None:
    plan, cat = ring(deferrable=True)
    keyless = {ref: Table(ref, tb.columns) for ref, tb in cat.tables.items()}
    with pytest.raises(PlanError, match="on_conflict: update needs a primary or unique key"):
        plan_load(plan, cat.foreign_keys, keyless, PG, "append", "update")
