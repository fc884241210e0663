"""Several source schemas with foreign keys across them; the staging file kept on request."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

import subsetter
from tests.conftest import Backend

SCHEMA = """
CREATE SCHEMA sales;
CREATE SCHEMA hr;
CREATE TABLE hr.employee (id int PRIMARY KEY, boss_id int REFERENCES hr.employee(id));
CREATE TABLE public.customer (id int PRIMARY KEY, name text);
CREATE TABLE sales.orders (
  id int PRIMARY KEY,
  customer_id int NOT NULL REFERENCES public.customer(id),
  rep_id int REFERENCES hr.employee(id)
);
INSERT INTO hr.employee VALUES (1, NULL), (2, 1), (3, 2), (4, 1);
INSERT INTO public.customer VALUES (1, 'a'), (2, 'b'), (3, 'c');
INSERT INTO sales.orders VALUES (10, 1, 3), (11, 1, NULL), (12, 2, 4), (13, 3, 4);
"""


@pytest.fixture
def source(make_backend: Callable[[str], Backend]) -> Backend:
    """A PostgreSQL source holding SCHEMA."""
    backend = make_backend("postgres")
    backend.execute(SCHEMA)
    return backend


def _customer_1(source: Backend, tmp_path: Path) -> subsetter.Config:
    """The config reading the three schemas, seeded with customer 1."""
    return subsetter.parse_config(
        f"source: {{url: '{source.url}', schemas: [public, sales, hr]}}\n"
        "seeds: [{table: customer, where: 'id = 1'}]\n",
        tmp_path / "c.yml",
        {},
    )


@pytest.mark.server
def test_foreign_keys_across_schemas(
    source: Backend, make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    target = make_backend("postgres")
    config = _customer_1(source, tmp_path)
    staging = tmp_path / "kept.duckdb"

    result = subsetter.run(
        config, subsetter.RunOptions(target_url=target.url, keep_staging=str(staging))
    )

    assert result.verification is not None and result.verification.ok
    assert target.query("SELECT id FROM customer ORDER BY id") == [(1,)]
    assert target.query("SELECT id FROM sales.orders ORDER BY id") == [(10,), (11,)]
    # order 10's rep is 3, whose chain of bosses is 2 then 1; employee 4 is nobody's parent here
    assert target.query("SELECT id FROM hr.employee ORDER BY id") == [(1,), (2,), (3,)]
    fks = target.query(
        "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint "
        "WHERE contype = 'f' ORDER BY 1, 2"
    )
    assert fks == [("hr.employee", "hr.employee"), ("sales.orders", "customer"),
                   ("sales.orders", "hr.employee")]  # fmt: skip
    with duckdb.connect(str(staging), read_only=True) as kept:
        names = {r[0] for r in kept.execute("SELECT table_name FROM _tables").fetchall()}
    assert names == {"customer", "orders", "employee"}


@pytest.mark.server
def test_truncate_and_append_into_existing_schemas(
    source: Backend, make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    """A multi-schema source loads into a target whose schemas and keys exist (migrations)."""
    target = make_backend("postgres")
    target.execute(SCHEMA.replace("(4, 1);", "(4, 1), (5, NULL);"))  # rows the load replaces
    config = _customer_1(source, tmp_path)

    def run(**options: str) -> subsetter.RunResult:
        return subsetter.run(config, subsetter.RunOptions(target_url=target.url, **options))

    def contents() -> list[list[tuple[int, ...]]]:
        return [
            target.query(f"SELECT id FROM {t} ORDER BY id")
            for t in ("customer", "sales.orders", "hr.employee")
        ]

    result = run(mode="truncate")
    assert result.verification is not None and result.verification.ok
    assert contents() == [[(1,)], [(10,), (11,)], [(1,), (2,), (3,)]]
    assert result.plan.load is not None
    order = [str(r) for r in result.plan.load.order]
    assert order.index("public.customer") < order.index("sales.orders")
    assert order.index("hr.employee") < order.index("sales.orders")
    # all three keys, two of them across schemas, checked (the target's and the plan's)
    assert result.verification.checked == 3

    target.execute("INSERT INTO hr.employee VALUES (9, 1); UPDATE public.customer SET name = 'x'")
    result = run(mode="append", on_conflict="skip")
    assert result.verification is not None and result.verification.ok
    assert contents() == [[(1,)], [(10,), (11,)], [(1,), (2,), (3,), (9,)]]
    assert target.query("SELECT name FROM customer") == [("x",)]
    result = run(mode="append", on_conflict="update")
    assert target.query("SELECT name FROM customer") == [("a",)]


@pytest.mark.server
def test_truncate_into_mariadb_names_other_schemas_by_prefix(
    source: Backend, make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    """MariaDB has no schemas inside a database: sales.orders is the target's sales_orders."""
    target = make_backend("mysql")
    for statement in (
        "CREATE TABLE hr_employee (id int PRIMARY KEY, boss_id int, "
        "FOREIGN KEY (boss_id) REFERENCES hr_employee (id))",
        "CREATE TABLE customer (id int PRIMARY KEY, name text)",
        "CREATE TABLE sales_orders (id int PRIMARY KEY, customer_id int NOT NULL, rep_id int, "
        "FOREIGN KEY (customer_id) REFERENCES customer (id), "
        "FOREIGN KEY (rep_id) REFERENCES hr_employee (id))",
        "INSERT INTO hr_employee VALUES (7, NULL)",
        "INSERT INTO customer VALUES (7, 'old')",
        "INSERT INTO sales_orders VALUES (70, 7, 7)",
    ):
        target.execute(statement)
    config = _customer_1(source, tmp_path)
    result = subsetter.run(config, subsetter.RunOptions(target_url=target.url, mode="truncate"))
    assert result.verification is not None and result.verification.ok
    assert result.verification.checked == 3
    assert target.query("SELECT id FROM customer ORDER BY id") == [(1,)]
    assert target.query("SELECT id FROM sales_orders ORDER BY id") == [(10,), (11,)]
    assert target.query("SELECT id FROM hr_employee ORDER BY id") == [(1,), (2,), (3,)]


@pytest.mark.server
def test_staging_file_removed_by_default(
    source: Backend,
    make_backend: Callable[[str], Backend],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    target = make_backend("sqlite")
    config = subsetter.parse_config(
        f"source: {{url: '{source.url}'}}\nseeds: [{{table: customer}}]\n", tmp_path / "c.yml", {}
    )
    subsetter.run(config, subsetter.RunOptions(target_url=target.url))
    assert not list(tmp_path.glob("subsetter-*.duckdb*"))
