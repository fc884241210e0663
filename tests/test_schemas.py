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


@pytest.mark.server
def test_foreign_keys_across_schemas(
    make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    source = make_backend("postgres")
    source.execute(SCHEMA)
    target = make_backend("postgres")
    config = subsetter.parse_config(
        f"source: {{url: '{source.url}', schemas: [public, sales, hr]}}\n"
        "seeds: [{table: customer, where: 'id = 1'}]\n",
        tmp_path / "c.yml",
        {},
    )
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
def test_staging_file_removed_by_default(
    make_backend: Callable[[str], Backend], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    source = make_backend("postgres")
    source.execute(SCHEMA)
    target = make_backend("sqlite")
    config = subsetter.parse_config(
        f"source: {{url: '{source.url}'}}\nseeds: [{{table: customer}}]\n", tmp_path / "c.yml", {}
    )
    subsetter.run(config, subsetter.RunOptions(target_url=target.url))
    assert not list(tmp_path.glob("subsetter-*.duckdb*"))
