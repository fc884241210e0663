"""End to end on the public sample databases: Pagila, Sakila and Chinook, within and across engines.

Each run ends with the integrity check (`e2e.assert_intact`) and the row equality check
(`e2e.assert_rows_equal`); the Pagila and Chinook runs also check that the subset is exactly the
closure of the seeds, computed with SQL or Python on the source.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests import oracle
from tests.conftest import Backend
from tests.e2e import assert_intact, assert_rows_equal, ids, make_config, run_into

PAGILA_SEEDS = """
seeds:
  - table: customer
    where: customer_id <= 50
"""
# psycopg reads a tsrange as a Range object, while other engines hold the text PostgreSQL
# prints for it: `assert_pagila_rows` compares that column as text instead.
PAGILA_SKIP = {"rental": {"rental_period"}}


def assert_pagila_rows(source: Backend, target: Backend) -> None:
    """Assert row equality, with `rental.rental_period` compared as PostgreSQL's range text."""
    assert_rows_equal(source, target, skip=PAGILA_SKIP)
    as_text = dict(source.query("SELECT rental_id, rental_period::text FROM rental"))
    column = "rental_period::text" if target.name == "postgres" else "rental_period"
    copied = target.query(f"SELECT rental_id, {column} FROM rental")
    assert copied
    for rental_id, period in copied:
        assert period == as_text[rental_id], rental_id


def test_pagila_postgres_to_postgres_is_the_minimal_closure(
    pagila_pg: Backend, make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    target = make_backend("postgres")
    result = run_into(make_config(tmp_path, pagila_pg.url, PAGILA_SEEDS), target)

    assert_intact(pagila_pg, target, result)
    assert_pagila_rows(pagila_pg, target)
    seeds = ids(pagila_pg, "customer", "customer_id", "customer_id <= 50")
    assert len(seeds) == 50
    # customer rows are only reached as seeds: nothing references a customer from a parent row
    assert ids(target, "customer", "customer_id") == seeds
    # minimality: the rentals, inventory and films are exactly those of the seed customers
    rentals = ids(pagila_pg, "rental", "rental_id", "customer_id <= 50")
    assert ids(target, "rental", "rental_id") == rentals
    assert ids(target, "rental", "customer_id") <= seeds
    their_inventory = "SELECT inventory_id FROM rental WHERE customer_id <= 50"
    inventory = ids(pagila_pg, "inventory", "inventory_id", f"inventory_id IN ({their_inventory})")
    assert ids(target, "inventory", "inventory_id") == inventory
    films = {
        r[0]
        for r in pagila_pg.query(
            "SELECT DISTINCT i.film_id FROM rental r "
            "JOIN inventory i ON i.inventory_id = r.inventory_id WHERE r.customer_id <= 50"
        )
    }
    assert films and ids(target, "film", "film_id") == films
    payments = ids(pagila_pg, "payment", "payment_id", "customer_id <= 50")
    assert ids(target, "payment", "payment_id") == payments
    # films reached as parents do not pull their other rentals, actors or categories
    assert target.query("SELECT COUNT(*) FROM rental WHERE customer_id > 50") == [(0,)]
    assert "film_actor" not in oracle.tables(target)
    assert "film_category" not in oracle.tables(target)


@pytest.mark.parametrize("engine", ["sqlite", "duckdb"])
def test_pagila_across_engines_matches_the_postgres_subset(
    engine: str, pagila_pg: Backend, make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    config = make_config(tmp_path, pagila_pg.url, PAGILA_SEEDS)
    reference = run_into(config, make_backend("postgres"))
    target = make_backend(engine)

    result = run_into(config, target)

    assert_intact(pagila_pg, target, result)
    assert_pagila_rows(pagila_pg, target)
    assert result.rows == reference.rows
    assert {t: oracle.count(target, t) for t in oracle.tables(target)} == reference.rows


SAKILA_SEEDS = """
seeds:
  - table: customer
    where: customer_id <= 50
"""


@pytest.mark.parametrize("engine", ["postgres", "mysql"])
def test_sakila_mariadb_to(
    engine: str, sakila_mysql: Backend, make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    target = make_backend(engine)

    result = run_into(make_config(tmp_path, sakila_mysql.url, SAKILA_SEEDS), target)

    assert_intact(sakila_mysql, target, result)
    assert_rows_equal(sakila_mysql, target)
    assert ids(target, "customer", "customer_id") == set(range(1, 51))
    rentals = ids(sakila_mysql, "rental", "rental_id", "customer_id <= 50")
    assert rentals and ids(target, "rental", "rental_id") == rentals


def chinook_employees_expected(source: Backend, names: dict[str, str], seeds: set[int]) -> set[int]:
    """The support reps of the seed customers and all their managers, walked in Python."""
    q = oracle.quote
    manager = dict(
        source.query(
            f"SELECT {q(source, names['EmployeeId'])}, {q(source, names['ReportsTo'])} "
            f"FROM {q(source, names['Employee'])}"
        )
    )
    reps = source.query(
        f"SELECT {q(source, names['CustomerId'])}, {q(source, names['SupportRepId'])} "
        f"FROM {q(source, names['Customer'])}"
    )
    todo = [rep for customer, rep in reps if customer in seeds and rep is not None]
    found: set[int] = set()
    while todo:
        employee = todo.pop()
        if employee not in found:
            found.add(employee)
            if manager[employee] is not None:
                todo.append(manager[employee])
    return found


MIXED_CASE = {
    n: n for n in ("Employee", "EmployeeId", "ReportsTo", "Customer", "CustomerId", "SupportRepId")
}
SNAKE_CASE = {
    "Employee": "employee",
    "EmployeeId": "employee_id",
    "ReportsTo": "reports_to",
    "Customer": "customer",
    "CustomerId": "customer_id",
    "SupportRepId": "support_rep_id",
}


@pytest.mark.parametrize(
    ("source_fixture", "engine", "seeds", "names"),
    [
        pytest.param(
            "chinook_pg",
            "mysql",
            "- table: customer\n    where: customer_id <= 5",
            SNAKE_CASE,
            id="postgres-to-mysql",
        ),
        pytest.param(
            "chinook_mysql",
            "sqlite",
            "- table: Customer\n    where: CustomerId <= 5",
            MIXED_CASE,
            id="mysql-to-sqlite",
        ),
    ],
)
def test_chinook_across_engines_keeps_the_manager_chain(
    source_fixture: str,
    engine: str,
    seeds: str,
    names: dict[str, str],
    request: pytest.FixtureRequest,
    make_backend: Callable[[str], Backend],
    tmp_path: Path,
) -> None:
    source: Backend = request.getfixturevalue(source_fixture)
    target = make_backend(engine)

    result = run_into(make_config(tmp_path, source.url, f"seeds:\n  {seeds}\n"), target)

    assert_intact(source, target, result)
    assert_rows_equal(source, target)
    assert oracle.tables(target) == sorted(result.rows)
    assert names["Employee"] in result.rows
    copied = ids(target, names["Customer"], names["CustomerId"])
    assert copied == {1, 2, 3, 4, 5}
    # the closure of Employee.ReportsTo is complete and minimal: the reps and their managers
    expected = chinook_employees_expected(source, names, copied)
    assert len(expected) > 1
    assert ids(target, names["Employee"], names["EmployeeId"]) == expected
    assert (
        oracle.orphans(
            target,
            names["Employee"],
            [names["ReportsTo"]],
            names["Employee"],
            [names["EmployeeId"]],
        )
        == 0
    )
