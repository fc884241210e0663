"""The schemas that break subsetters, defined once and built on all four engines.

`build_nasty(url)` creates and fills, deterministically (a few hundred rows):

- `node`: two self-references (`parent_id`, `root_id`) on one table, trees of depth 4;
  a root has `parent_id` and `root_id` NULL.
- `cyc_a` -> `cyc_b` -> `cyc_c` -> `cyc_a`: a three-table cycle of nullable foreign keys;
  `cyc_c.a_id` is inserted as NULL and set by UPDATE once `cyc_a` is filled.
- `warehouse` / `shipment`: a composite foreign key onto a UNIQUE key that is not the primary key,
  with rows whose key is wholly or partly NULL (MATCH SIMPLE: not checked).
- `event_log`: no primary key, two identical rows, NULL references.
- `Order` (mixed case, reserved word; columns `Select`, `group`, `CamelCase`) and its child
  `order line` (a space in the table name, FK column `Order ID`).
"""

from __future__ import annotations

import random
import sys
from datetime import datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from fixtures_db.loader import Deferred, ExpectedFK, Row, Scenario, load

metadata = sa.MetaData()

node = sa.Table(
    "node",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("parent_id", sa.Integer, sa.ForeignKey("node.id")),
    sa.Column("root_id", sa.Integer, sa.ForeignKey("node.id")),
    sa.Column("name", sa.String(60), nullable=False),
)

cyc_a = sa.Table(
    "cyc_a",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("b_id", sa.Integer, sa.ForeignKey("cyc_b.id")),
    sa.Column("label", sa.String(40), nullable=False),
)

cyc_b = sa.Table(
    "cyc_b",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("c_id", sa.Integer, sa.ForeignKey("cyc_c.id")),
    sa.Column("label", sa.String(40), nullable=False),
)

cyc_c = sa.Table(
    "cyc_c",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    # use_alter: the edge closing the cycle is added by ALTER TABLE once the three tables exist.
    sa.Column("a_id", sa.Integer, sa.ForeignKey("cyc_a.id", use_alter=True, name="fk_cyc_c_a")),
    sa.Column("label", sa.String(40), nullable=False),
)

warehouse = sa.Table(
    "warehouse",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("region", sa.String(10), nullable=False),
    sa.Column("code", sa.String(10), nullable=False),
    sa.UniqueConstraint("region", "code", name="uq_warehouse_region_code"),
)

shipment = sa.Table(
    "shipment",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("wh_region", sa.String(10)),
    sa.Column("wh_code", sa.String(10)),
    sa.Column("weight_kg", sa.Numeric(8, 2), nullable=False),
    sa.ForeignKeyConstraint(["wh_region", "wh_code"], ["warehouse.region", "warehouse.code"]),
)

event_log = sa.Table(
    "event_log",
    metadata,
    sa.Column("node_id", sa.Integer, sa.ForeignKey("node.id")),
    sa.Column("message", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

order = sa.Table(
    "Order",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("Select", sa.String(40), nullable=False),
    sa.Column("group", sa.String(10)),
    sa.Column("CamelCase", sa.Integer),
)

order_line = sa.Table(
    "order line",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("Order ID", sa.Integer, sa.ForeignKey("Order.id"), nullable=False),
    sa.Column("qty", sa.Integer, nullable=False),
)

EXPECTED_FKS: tuple[ExpectedFK, ...] = (
    ExpectedFK("cyc_a", ("b_id",), "cyc_b", ("id",)),
    ExpectedFK("cyc_b", ("c_id",), "cyc_c", ("id",)),
    ExpectedFK("cyc_c", ("a_id",), "cyc_a", ("id",)),
    ExpectedFK("event_log", ("node_id",), "node", ("id",)),
    ExpectedFK("node", ("parent_id",), "node", ("id",)),
    ExpectedFK("node", ("root_id",), "node", ("id",)),
    ExpectedFK("order line", ("Order ID",), "Order", ("id",)),
    ExpectedFK("shipment", ("wh_region", "wh_code"), "warehouse", ("region", "code")),
)
"""Every foreign key `build_nasty` declares, sorted; the catalog of each engine must show these."""

DUCKDB_OMITTED_FKS: frozenset[ExpectedFK] = frozenset(
    {ExpectedFK("cyc_c", ("a_id",), "cyc_a", ("id",))}
)
"""Foreign keys missing on DuckDB: it has no ALTER TABLE ... ADD FOREIGN KEY and a CREATE TABLE
may only reference tables that already exist, so the edge closing the cycle cannot be declared.
The data is the same: `cyc_c.a_id` holds the same values, it is just not a declared key.
Also on DuckDB (data-neutral, not an omission): a row cannot reference itself nor a row inserted
by the same statement, hence roots with NULL `root_id` and level-by-level inserts everywhere."""

_TREES = 6
_DEPTH = 4
_BASE = datetime(2024, 1, 1, 8, 0, 0)


def nasty_rows() -> dict[str, list[Row]]:
    """Generate every table's rows, parents before children, from a fixed seed."""
    rng = random.Random(1729)
    nodes = _nodes(rng)
    rows: dict[str, list[Row]] = {"node": nodes}
    rows.update(_cycle(rng))
    rows.update(_warehouses(rng))
    rows["event_log"] = _events(rng, [n["id"] for n in nodes])
    rows.update(_orders(rng))
    return rows


def scenario() -> Scenario:
    """Bundle the schema and rows for `fixtures_db.loader.load`."""
    return Scenario(
        metadata=metadata,
        rows=nasty_rows(),
        deferred=(Deferred("cyc_c", "a_id"),),
        duckdb_omitted=DUCKDB_OMITTED_FKS,
    )


def expected_row_counts() -> dict[str, int]:
    """Return the number of rows `build_nasty` puts in each table."""
    return {table: len(rows) for table, rows in nasty_rows().items()}


def build_nasty(url: str) -> None:
    """Create and fill the nasty schemas in the empty database at `url`."""
    load(url, scenario())


def _nodes(rng: random.Random) -> list[Row]:
    """Build trees level by level; every non-leaf level gets at least one child per node."""
    out: list[Row] = []
    for tree in range(_TREES):
        root = {"id": len(out) + 1, "parent_id": None, "root_id": None, "name": f"tree{tree}"}
        out.append(root)
        level = [root]
        for depth in range(1, _DEPTH + 1):
            nxt: list[Row] = []
            for parent in level:
                for k in range(rng.randint(1, 3 if depth < 3 else 2)):
                    child = {
                        "id": len(out) + 1,
                        "parent_id": parent["id"],
                        "root_id": root["id"],
                        "name": f"{parent['name']}.{k}",
                    }
                    out.append(child)
                    nxt.append(child)
            level = nxt
    out.append({"id": len(out) + 1, "parent_id": None, "root_id": None, "name": "lonely"})
    return out


def _cycle(rng: random.Random) -> dict[str, list[Row]]:
    n = 20
    c = [{"id": i, "a_id": i if i % 4 else None, "label": f"c{i}"} for i in range(1, n + 1)]
    b = [
        {"id": i, "c_id": rng.randint(1, n) if i % 5 else None, "label": f"b{i}"}
        for i in range(1, n + 1)
    ]
    a = [
        {"id": i, "b_id": rng.randint(1, n) if i % 6 else None, "label": f"a{i}"}
        for i in range(1, n + 1)
    ]
    return {"cyc_c": c, "cyc_b": b, "cyc_a": a}


def _warehouses(rng: random.Random) -> dict[str, list[Row]]:
    keys = [(region, f"W{k}") for region in ("EU", "US", "APAC") for k in range(1, 5)]
    wh = [{"id": i, "region": r, "code": c} for i, (r, c) in enumerate(keys, start=10)]
    ships: list[Row] = []
    for i in range(1, 61):
        region, code = rng.choice(keys)
        if i % 15 == 0:
            region, code = None, None
        elif i % 29 == 0:
            code = None  # a half-NULL composite key is not checked (MATCH SIMPLE)
        weight = Decimal(rng.randint(100, 99999)) / 100
        ships.append({"id": i, "wh_region": region, "wh_code": code, "weight_kg": weight})
    return {"warehouse": wh, "shipment": ships}


def _events(rng: random.Random, node_ids: list[int]) -> list[Row]:
    events: list[Row] = []
    for i in range(80):
        node_id = rng.choice(node_ids) if i % 10 else None
        when = _BASE + timedelta(minutes=rng.randint(0, 60 * 24 * 90))
        events.append({"node_id": node_id, "message": f"event {i % 7}", "created_at": when})
    events.append(dict(events[3]))  # two identical rows: only a whole-row match can tell them
    return events


def _orders(rng: random.Random) -> dict[str, list[Row]]:
    orders = [
        {
            "id": i,
            "Select": f"select #{i}",
            "group": rng.choice(["alpha", "beta", "gamma", None]),
            "CamelCase": rng.randint(-5, 500),
        }
        for i in range(1, 31)
    ]
    lines = [
        {"id": i, "Order ID": rng.randint(1, 25), "qty": rng.randint(1, 9)} for i in range(1, 91)
    ]
    return {"Order": orders, "order line": lines}


if __name__ == "__main__":
    build_nasty(sys.argv[1])
