"""Tests of subsetter.plan: which tables a run takes and why, and the seed SQL. No database.

The catalog is built by hand: a small Pagila-like rental shop, with a store/staff cycle, a
self-referencing category, two foreign keys from film to language, a virtual foreign key from
rental to inventory and an audit_log table to exclude.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from subsetter.catalog import Catalog, Column, ColumnType, ForeignKey, Table, TableRef
from subsetter.config import Config, parse_config
from subsetter.dialects import dialect_for
from subsetter.errors import ConfigError, PlanError
from subsetter.plan import Plan, build_plan
from subsetter.reflect import with_virtual_foreign_keys

INT = ColumnType("integer")
TEXT = ColumnType("text")
STAMP = ColumnType("timestamp")
DIALECT = dialect_for("sqlite:///x.db")
VIRTUAL = (
    "virtual_foreign_keys:\n  - child: rental(inventory_id)\n    parent: inventory(inventory_id)\n"
)


def t(name: str) -> TableRef:
    return TableRef(None, name)


def col(name: str, kind: ColumnType = INT, nullable: bool = False) -> Column:
    return Column(name, kind, nullable=nullable)


def table(name: str, *columns: Column, pk: tuple[str, ...] | None = None) -> Table:
    return Table(t(name), columns, primary_key=pk if pk is not None else (columns[0].name,))


def fk(child: str, column: str, parent: str, ref: str | None = None) -> ForeignKey:
    return ForeignKey(
        t(child), (column,), t(parent), (ref or f"{parent}_id",), f"fk_{child}_{column}"
    )


def shop(audit_nullable: bool = True) -> Catalog:
    tables = [
        table("country", col("country_id"), col("name", TEXT)),
        table("city", col("city_id"), col("country_id")),
        table("address", col("address_id"), col("city_id")),
        table("language", col("language_id"), col("name", TEXT)),
        table("category", col("category_id"), col("parent_id", nullable=True)),
        table(
            "film",
            col("film_id"),
            col("language_id"),
            col("original_language_id", nullable=True),
            col("title", TEXT),
        ),
        table("film_category", col("film_id"), col("category_id"), pk=("film_id", "category_id")),
        table("store", col("store_id"), col("manager_staff_id"), col("address_id")),
        table("staff", col("staff_id"), col("store_id"), col("address_id")),
        table("inventory", col("inventory_id"), col("film_id"), col("store_id")),
        table(
            "customer",
            col("customer_id"),
            col("store_id"),
            col("address_id"),
            col("last_audit_id", nullable=audit_nullable),
        ),
        table("rental", col("rental_id"), col("inventory_id"), col("customer_id"), col("staff_id")),
        table(
            "payment",
            col("payment_id"),
            col("customer_id"),
            col("rental_id", nullable=True),
            col("staff_id"),
            col("payment_date", STAMP),
        ),
        table("audit_log", col("audit_id"), col("note", TEXT)),
        table("line", col("order_no"), col("line_no"), col("qty"), pk=("order_no", "line_no")),
    ]
    fks = (
        fk("city", "country_id", "country"),
        fk("address", "city_id", "city"),
        fk("category", "parent_id", "category", "category_id"),
        fk("film", "language_id", "language"),
        fk("film", "original_language_id", "language", "language_id"),
        fk("film_category", "film_id", "film"),
        fk("film_category", "category_id", "category"),
        fk("store", "manager_staff_id", "staff", "staff_id"),
        fk("store", "address_id", "address"),
        fk("staff", "store_id", "store"),
        fk("staff", "address_id", "address"),
        fk("inventory", "film_id", "film"),
        fk("inventory", "store_id", "store"),
        fk("customer", "store_id", "store"),
        fk("customer", "address_id", "address"),
        fk("customer", "last_audit_id", "audit_log", "audit_id"),
        fk("rental", "customer_id", "customer"),
        fk("rental", "staff_id", "staff"),
        fk("payment", "customer_id", "customer"),
        fk("payment", "rental_id", "rental"),
        fk("payment", "staff_id", "staff"),
    )
    return Catalog({tb.ref: tb for tb in tables}, fks, None, "sqlite")


def config(body: str) -> Config:
    return parse_config("source:\n  url: sqlite:///src.db\n" + body, Path("/c/shop.yml"), {})


def plan_for(body: str, catalog: Catalog | None = None) -> Plan:
    cfg = config(body)
    cat = with_virtual_foreign_keys(catalog or shop(), cfg)
    return build_plan(cat, cfg, DIALECT)


def edges(fks: tuple[ForeignKey, ...]) -> set[str]:
    return {f"{k.child.name}.{','.join(k.columns)}" for k in fks}


def names(refs: tuple[TableRef, ...] | set[TableRef]) -> set[str]:
    return {r.name for r in refs}


FULL = (
    """\
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
"""
    + VIRTUAL
)


# ---------------------------------------------------------------- which tables and why


def test_parents_only_seed_takes_its_upstream_and_no_children() -> None:
    plan = plan_for("seeds:\n  - table: payment\n    limit: 10\n    children: false\n" + VIRTUAL)
    assert names(set(plan.tables)) == {
        "payment", "customer", "rental", "staff", "store", "address", "city", "country",
        "inventory", "film", "language", "audit_log",
    }  # fmt: skip
    # no table is reached downstream: film_category (a child of film) stays out
    assert plan.downstream == ()
    assert "film_category" not in names(set(plan.tables))
    assert plan.reasons[t("payment")] == ["seed payment (limit 10)"]
    assert (
        "parent of payment via fk_payment_customer_id (customer_id)" in plan.reasons[t("customer")]
    )
    assert "parent of rental via (inventory_id)" in plan.reasons[t("inventory")]


def test_downstream_edges_only_from_seed_and_child_tables() -> None:
    plan = plan_for("seeds:\n  - table: customer\n    where: customer_id < 5\n" + VIRTUAL)
    # customer is the seed; rental and payment are its children (payment also via rental)
    assert edges(plan.downstream) == {
        "rental.customer_id",
        "payment.customer_id",
        "payment.rental_id",
    }
    # store, staff, inventory, film... are only parents: their children are not followed
    for parent_only in ("store", "staff", "inventory", "film", "address"):
        assert all(k.parent != t(parent_only) for k in plan.downstream), parent_only
    assert "film_category" not in names(set(plan.tables))
    assert "inventory" in names(set(plan.tables))
    assert (
        plan.reasons[t("rental")][0] == "child of customer via fk_rental_customer_id (customer_id)"
    )
    assert "child of rental via fk_payment_rental_id (rental_id)" in plan.reasons[t("payment")]


def test_upstream_is_every_foreign_key_of_every_table_in_the_plan() -> None:
    plan = plan_for("seeds:\n  - table: customer\n" + VIRTUAL)
    expected = {
        f"{k.child.name}.{','.join(k.columns)}"
        for k in with_virtual_foreign_keys(
            shop(), config("seeds: [{table: customer}]\n" + VIRTUAL)
        ).foreign_keys
        if k.child in plan.tables
    }
    assert edges(plan.upstream) == expected


def test_full_example_plan() -> None:
    plan = plan_for(FULL)
    assert "film_category" in names(set(plan.tables))  # child of the film seed
    assert "audit_log" not in names(set(plan.tables))
    assert plan.excluded == (t("audit_log"),)
    assert edges(plan.nulled) == {"customer.last_audit_id"}
    assert [s.label for s in plan.seeds] == [
        "seed customer (where customer_id <= 50)",
        "seed film (5%)",
        "seed payment (limit 100)",
        "passthrough language",
        "passthrough category",
    ]
    assert [s.children for s in plan.seeds] == [True, True, False, False, False]
    assert plan.reasons[t("language")][0] == "passthrough language"
    assert "film.original_language_id" in edges(plan.upstream)
    assert "film.language_id" in edges(plan.upstream)
    assert plan.cycles == ((t("category"),), (t("staff"), t("store")))


def test_plan_tables_in_load_order() -> None:
    plan = plan_for(FULL)
    order = list(plan.tables)
    cyclic = {r for c in plan.cycles for r in c}
    for key in plan.upstream:
        if key.child in cyclic and key.parent in cyclic:
            continue
        assert order.index(key.parent) < order.index(key.child), str(key)
    assert order.index(t("staff")) + 1 == order.index(t("store"))  # a cycle's tables together


def test_passthrough_copies_whole_table_and_pulls_only_parents() -> None:
    plan = plan_for("passthrough: [film]\n")
    (seed,) = plan.seeds
    assert seed.label == "passthrough film"
    assert seed.children is False
    assert seed.sql == (
        'SELECT "film_id", "language_id", "original_language_id", "title" FROM "film"'
    )
    assert names(set(plan.tables)) == {"film", "language"}
    assert plan.downstream == ()


def test_two_seeds_of_one_table() -> None:
    plan = plan_for(
        "seeds:\n  - table: film\n    where: film_id = 1\n  - table: film\n    where: film_id = 2\n"
    )
    assert [s.sql.rsplit("WHERE ", 1)[1] for s in plan.seeds] == ["(film_id = 1)", "(film_id = 2)"]
    assert plan.reasons[t("film")][:2] == [
        "seed film (where film_id = 1)",
        "seed film (where film_id = 2)",
    ]


def test_explain_lists_everything() -> None:
    text = plan_for(FULL).explain()
    assert text.startswith("Tables (load order, parents first):")
    for section in (
        "Seeds:",
        "Followed upstream",
        "Followed downstream",
        "Written as NULL (the parent table is excluded):",
        "  customer(last_audit_id) -> audit_log(audit_id) (fk_customer_last_audit_id)",
        "Cycles",
        "  staff <-> store",
        "Excluded: audit_log",
        "seed payment (limit 100) (parents only):",
    ):
        assert section in text, section
    assert text == plan_for(FULL).explain()  # stable


# ---------------------------------------------------------------- exclude


def test_exclude_with_nullable_foreign_key_writes_null() -> None:
    plan = plan_for("seeds:\n  - table: customer\nexclude: [audit_log]\n")
    assert [str(k) for k in plan.nulled] == [
        "customer(last_audit_id) -> audit_log(audit_id) (fk_customer_last_audit_id)"
    ]
    assert t("audit_log") not in plan.tables
    assert all(k.parent != t("audit_log") for k in plan.upstream)


def test_exclude_with_not_null_foreign_key_is_a_plan_error() -> None:
    with pytest.raises(PlanError) as info:
        plan_for("seeds:\n  - table: customer\nexclude: [audit_log]\n", shop(audit_nullable=False))
    message = str(info.value)
    assert "customer(last_audit_id) -> audit_log(audit_id) (fk_customer_last_audit_id)" in message
    assert "NOT NULL" in message
    assert "exclude customer too" in message


def test_excluded_child_table_is_simply_left_out() -> None:
    plan = plan_for("seeds:\n  - table: customer\nexclude: [payment]\n" + VIRTUAL)
    assert t("payment") not in plan.tables
    assert t("rental") in plan.tables
    assert plan.nulled == ()
    assert all(t("payment") not in (k.child, k.parent) for k in plan.upstream + plan.downstream)


def test_excluding_a_table_nobody_needs_does_nothing_else() -> None:
    plan = plan_for("seeds:\n  - table: country\nexclude: [line]\n")
    assert names(set(plan.tables)) == {"country", "city", "address", "customer", "store", "staff",
                                       "rental", "payment", "inventory", "film", "language",
                                       "audit_log"}  # fmt: skip
    assert plan.excluded == (t("line"),)


def test_seed_that_is_excluded() -> None:
    with pytest.raises(ConfigError) as info:
        plan_for("seeds:\n  - table: film\nexclude: [film]\n")
    assert str(info.value).startswith("shop.yml:4:")
    assert "seeds[0].table" in str(info.value)
    assert "is a seed and also excluded" in str(info.value)


def test_passthrough_that_is_excluded() -> None:
    with pytest.raises(ConfigError) as info:
        plan_for("passthrough: [language]\nexclude: [language]\n")
    assert "shop.yml:3:" in str(info.value)
    assert "both passthrough and excluded" in str(info.value)


# ---------------------------------------------------------------- unknown names


@pytest.mark.parametrize(
    ("body", "where", "hint"),
    [
        ("seeds:\n  - table: custmer\n", "shop.yml:4:5 seeds[0].table: ", '"customer"'),
        ("seeds:\n  - table: film\n  - table: flim\n", "shop.yml:5:5 seeds[1].table: ", '"film"'),
        ("passthrough: [langauge]\n", "shop.yml:3:15 passthrough[0]: ", '"language"'),
        ("seeds: [{table: film}]\nexclude: [audit_lgo]\n", "shop.yml:4:11 exclude[0]: ",
         '"audit_log"'),
    ],
)  # fmt: skip
def test_unknown_table_names_line_key_and_did_you_mean(body: str, where: str, hint: str) -> None:
    with pytest.raises(ConfigError) as info:
        plan_for(body)
    message = str(info.value)
    assert message.startswith(where)
    assert "in the source." in message
    assert f"Did you mean {hint}?" in message


def test_unknown_table_in_schema_catalog_suggests_bare_name() -> None:
    """A bare typo must get a suggestion even when every table lives in a schema."""
    tables = [Table(TableRef("public", n), (col("id"),), ("id",)) for n in ("film", "actor")]
    catalog = Catalog({tb.ref: tb for tb in tables}, (), "public", "postgresql")
    with pytest.raises(ConfigError) as info:
        build_plan(catalog, config("seeds:\n  - table: flim\n"), DIALECT)
    assert "Did you mean" in str(info.value)
    assert "film" in str(info.value).rpartition("Did you mean")[2]


def test_unknown_table_in_virtual_foreign_key() -> None:
    cfg = config(
        "seeds: [{table: film}]\n"
        "virtual_foreign_keys:\n  - child: rental(inventory_id)\n    parent: inventroy(id)\n"
    )
    with pytest.raises(ConfigError) as info:
        with_virtual_foreign_keys(shop(), cfg)
    message = str(info.value)
    assert message.startswith("shop.yml:6:5 virtual_foreign_keys[0].parent: ")
    assert 'Did you mean "inventory"?' in message


def test_unknown_column_in_virtual_foreign_key() -> None:
    cfg = config(
        "seeds: [{table: film}]\n"
        "virtual_foreign_keys:\n  - child: rental(inventory)\n    parent: inventory(inventory_id)\n"
    )
    with pytest.raises(ConfigError) as info:
        with_virtual_foreign_keys(shop(), cfg)
    message = str(info.value)
    assert message.startswith("shop.yml:5:5 virtual_foreign_keys[0].child: ")
    assert 'no column "inventory" in table rental' in message
    assert 'Did you mean "inventory_id"?' in message


def test_schema_qualified_and_case_insensitive_names() -> None:
    tables = [Table(TableRef(s, "film"), (col("id"),), ("id",)) for s in ("public", "archive")]
    catalog = Catalog({tb.ref: tb for tb in tables}, (), "public", "postgresql")
    assert build_plan(catalog, config("seeds: [{table: archive.film}]\n"), DIALECT).tables == (
        TableRef("archive", "film"),
    )
    # the default schema wins for a bare name
    assert build_plan(catalog, config("seeds: [{table: FILM}]\n"), DIALECT).tables == (
        TableRef("public", "film"),
    )


def test_ambiguous_table_without_default_schema() -> None:
    tables = [Table(TableRef(s, "film"), (col("id"),), ("id",)) for s in ("a", "b")]
    catalog = Catalog({tb.ref: tb for tb in tables}, (), None, "postgresql")
    with pytest.raises(ConfigError) as info:
        build_plan(catalog, config("seeds:\n  - table: film\n"), DIALECT)
    assert str(info.value).startswith("shop.yml:4:5 seeds[0].table: ")
    assert 'table "film" is ambiguous (a.film, b.film); add the schema' in str(info.value)


# ---------------------------------------------------------------- seed SQL


def seed_sql(body: str) -> str:
    return plan_for(body).seeds[0].sql


def test_seed_sql_where() -> None:
    assert seed_sql("seeds:\n  - table: customer\n    where: customer_id <= 50\n") == (
        'SELECT "customer_id", "store_id", "address_id", "last_audit_id" FROM "customer" '
        "WHERE (customer_id <= 50)"
    )


def test_seed_sql_where_is_parenthesised_so_or_cannot_escape() -> None:
    sql = seed_sql("seeds:\n  - table: film\n    where: film_id = 1 OR film_id = 2\n    limit: 3\n")
    assert sql.endswith('WHERE (film_id = 1 OR film_id = 2) ORDER BY "film_id" LIMIT 3')


def test_seed_sql_percent() -> None:
    sql = seed_sql("seeds:\n  - table: film\n    percent: 5\n")
    assert sql == (
        'SELECT "film_id", "language_id", "original_language_id", "title" FROM "film" WHERE '
        "substr(md5('subsetter-v1|' || COALESCE(CAST(\"film_id\" AS TEXT), '')), 1, 6) < '0ccccc'"
    )


def test_seed_sql_percent_over_a_composite_key() -> None:
    sql = seed_sql("seeds:\n  - table: line\n    percent: 50\n")
    assert sql.endswith(
        "WHERE substr(md5('subsetter-v1|' || COALESCE(CAST(\"order_no\" AS TEXT), '') || '|' || "
        "COALESCE(CAST(\"line_no\" AS TEXT), '')), 1, 6) < '800000'"
    )


def test_seed_sql_percent_100_takes_everything() -> None:
    assert seed_sql("seeds:\n  - table: film\n    percent: 100\n").endswith(
        ' FROM "film" WHERE 1=1'
    )


def test_seed_sql_limit_orders_by_primary_key_by_default() -> None:
    assert seed_sql("seeds:\n  - table: line\n    limit: 7\n").endswith(
        'FROM "line" ORDER BY "order_no", "line_no" LIMIT 7'
    )


def test_seed_sql_limit_with_order_by() -> None:
    sql = seed_sql("seeds:\n  - table: payment\n    limit: 100\n    order_by: payment_date DESC\n")
    assert sql == (
        'SELECT "payment_id", "customer_id", "rental_id", "staff_id", "payment_date" '
        'FROM "payment" ORDER BY payment_date DESC LIMIT 100'
    )


def test_seed_sql_all_conditions_together() -> None:
    plan = plan_for(
        "seeds:\n  - table: payment\n    where: staff_id = 2\n    percent: 50\n"
        "    limit: 10\n    order_by: payment_id\n"
    )
    (seed,) = plan.seeds
    assert seed.sql.endswith(
        "WHERE (staff_id = 2) AND substr(md5('subsetter-v1|' || "
        "COALESCE(CAST(\"payment_id\" AS TEXT), '')), 1, 6) < '800000' "
        "ORDER BY payment_id LIMIT 10"
    )
    assert seed.label == "seed payment (where staff_id = 2, 50%, limit 10)"


def test_seed_without_condition_takes_all_rows() -> None:
    (seed,) = plan_for("seeds:\n  - table: language\n").seeds
    assert seed.sql == 'SELECT "language_id", "name" FROM "language"'
    assert seed.label == "seed language (all rows)"
    assert seed.children is True


def test_seed_sql_quotes_odd_identifiers() -> None:
    odd = Table(t('we"ird'), (col("my col"), col('q"uote')), ("my col",))
    catalog = Catalog({odd.ref: odd}, (), None, "sqlite")
    plan = build_plan(catalog, config("seeds:\n  - table: 'we\"ird'\n    limit: 1\n"), DIALECT)
    assert plan.seeds[0].sql == (
        'SELECT "my col", "q""uote" FROM "we""ird" ORDER BY "my col" LIMIT 1'
    )


def test_passthrough_seeds_keep_config_order() -> None:
    """The plan must not depend on set order (hash seed): `subset plan` output is reviewed."""
    listed = ["language", "country", "category", "line", "film", "audit_log", "city", "address"]
    plan = plan_for(f"passthrough: [{', '.join(listed)}]\n")
    assert [s.label for s in plan.seeds] == [f"passthrough {n}" for n in listed]
