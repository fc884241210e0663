"""The scenario databases build on every engine, with the rows and keys they promise.

Also exercises the fixtures and the oracle themselves: an oracle that cannot see an orphan or a
changed row would let every end-to-end test pass.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from fixtures_db import demo, nasty
from fixtures_db.loader import expected_fks
from tests import oracle
from tests.conftest import Backend

DEMO_COUNTS = {
    "address": 506,
    "category": 18,
    "customer": 300,
    "employee": 25,
    "order_item": 5729,
    "orders": 2000,
    "payment": 2101,
    "product": 200,
}
NASTY_TABLES = [
    "Order",
    "cyc_a",
    "cyc_b",
    "cyc_c",
    "event_log",
    "node",
    "order line",
    "shipment",
    "warehouse",
]


def _engine_fks(backend: Backend) -> set[tuple[object, ...]]:
    omitted = nasty.DUCKDB_OMITTED_FKS if backend.name == "duckdb" else frozenset()
    return set(nasty.EXPECTED_FKS) - omitted


# --- nasty ---------------------------------------------------------------------------------


def test_nasty_constant_matches_its_metadata() -> None:
    assert list(nasty.EXPECTED_FKS) == expected_fks(nasty.metadata)


def test_nasty_builds_with_its_tables_rows_and_keys(backend: Backend) -> None:
    nasty.build_nasty(backend.url)

    assert oracle.tables(backend) == sorted(NASTY_TABLES)
    assert {t: oracle.count(backend, t) for t in NASTY_TABLES} == nasty.expected_row_counts()
    assert set(oracle.foreign_keys(backend)) == _engine_fks(backend)
    assert oracle.all_orphans(backend, [oracle.FK(*fk) for fk in nasty.EXPECTED_FKS]) == {}


def test_nasty_rows_read_back_equal_to_what_was_written(backend: Backend) -> None:
    nasty.build_nasty(backend.url)

    for table, written in nasty.nasty_rows().items():
        expected = sorted(
            map(repr, ({k: oracle.normalise(v) for k, v in r.items()} for r in written))
        )
        assert sorted(map(repr, oracle.rows(backend, table))) == expected, table


def test_nasty_has_the_shapes_that_break_subsetters(backend: Backend) -> None:
    nasty.build_nasty(backend.url)
    q = backend.query

    depth = q(
        "SELECT COUNT(*) FROM node a JOIN node b ON b.id = a.parent_id "
        "JOIN node c ON c.id = b.parent_id JOIN node d ON d.id = c.parent_id "
        "WHERE d.parent_id IS NOT NULL"
    )
    assert depth[0][0] > 0, "no path of depth 4 in node"
    assert q("SELECT COUNT(*) FROM cyc_c WHERE a_id IS NOT NULL")[0][0] == 15
    assert q("SELECT COUNT(*) FROM cyc_c WHERE a_id IS NULL")[0][0] == 5
    assert oracle.primary_key(backend, "event_log") == []
    dupes = q(
        "SELECT COUNT(*) FROM (SELECT node_id, message, created_at FROM event_log "
        "GROUP BY node_id, message, created_at HAVING COUNT(*) > 1) d"
    )
    assert dupes[0][0] == 1
    assert oracle.primary_key(backend, "order line") == ["id"]
    assert oracle.columns(backend, "Order") == ["id", "Select", "group", "CamelCase"]


# --- demo ----------------------------------------------------------------------------------


def test_demo_builds_on_every_engine(backend: Backend) -> None:
    demo.load_demo(backend.url)

    assert {t: oracle.count(backend, t) for t in oracle.tables(backend)} == DEMO_COUNTS
    fks = oracle.foreign_keys(backend)
    assert set(fks) == set(expected_fks(demo.metadata))
    assert oracle.all_orphans(backend, fks) == {}
    assert oracle.primary_key(backend, "order_item") == ["order_id", "line_no"]


def test_demo_build_is_reproducible(tmp_path: Path) -> None:
    first, second = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    demo.build_demo(str(first))
    demo.build_demo(str(second))
    a, b = _sqlite(first), _sqlite(second)

    for table in DEMO_COUNTS:
        assert _sorted_rows(a, table) == _sorted_rows(b, table), table


def test_bundled_demo_is_up_to_date(tmp_path: Path) -> None:
    """The committed demo.sqlite must be what build_demo writes today: rerun demo.py if not."""
    fresh = tmp_path / "demo.sqlite"
    demo.build_demo(str(fresh))
    bundled, rebuilt = _sqlite(demo.BUNDLED), _sqlite(fresh)

    for table in DEMO_COUNTS:
        assert _sorted_rows(bundled, table) == _sorted_rows(rebuilt, table), table


def test_demo_data_looks_like_a_shop() -> None:
    rows = demo.demo_rows()
    dates = [o["order_date"] for o in rows["orders"]]
    assert (max(dates) - min(dates)).days > 700
    assert {e["manager_id"] for e in rows["employee"]} >= {None, 1}
    depth = {c["id"]: c["parent_id"] for c in rows["category"]}
    assert any(depth.get(depth[c] or 0) is not None for c in depth if depth[c])
    assert len({c["email"] for c in rows["customer"]}) == demo.CUSTOMERS


# --- oracle --------------------------------------------------------------------------------


def test_oracle_sees_orphans_and_ignores_null_keys(backend: Backend) -> None:
    nasty.build_nasty(backend.url)
    _orphan_one_shipment(backend)

    fk = oracle.FK("shipment", ("wh_region", "wh_code"), "warehouse", ("region", "code"))
    assert oracle.orphans(backend, *fk) == 1


def test_oracle_subset_accepts_a_true_subset_and_names_a_changed_row(
    backend: Backend, make_backend: Callable[[str], Backend]
) -> None:
    nasty.build_nasty(backend.url)
    target = make_backend("sqlite")
    nasty.build_nasty(target.url)
    target.execute('DELETE FROM "order line" WHERE id > 10')
    target.execute("DELETE FROM event_log WHERE node_id IS NULL")

    oracle.assert_subset_of(backend, target)

    target.execute('UPDATE "Order" SET "Select" = ? WHERE id = 3', ("changed",))
    target.execute("INSERT INTO event_log SELECT * FROM event_log LIMIT 1")
    with pytest.raises(AssertionError) as err:
        oracle.assert_subset_of(backend, target)
    message = str(err.value)
    assert "Order (id=3): Select: source 'select #3' != target 'changed'" in message
    assert "event_log (no primary key)" in message


def test_oracle_normalises_values_across_engines() -> None:
    n = oracle.normalise
    assert n(Decimal("9.90")) == n(9.9) == Decimal("9.9")
    assert n(Decimal("10.00")) == 10 and isinstance(n(Decimal("10.00")), int)
    assert n(True) == 1
    assert n("2024-01-02 03:04:05.000000") == datetime(2024, 1, 2, 3, 4, 5)
    aware = datetime(2024, 1, 2, 5, 4, 5, tzinfo=timezone.utc).astimezone()
    assert n(aware) == datetime(2024, 1, 2, 5, 4, 5)
    assert n(memoryview(b"ab")) == b"ab"
    assert n(["a", "b"]) == n('["a", "b"]')
    assert n({"b": 1, "a": [1.0]}) == n('{"a": [1], "b": 1}')
    assert n("abc  ") == "abc"
    assert n(timedelta(hours=10, minutes=5)) == n("10:05:00") == time(10, 5)
    assert n({"b", "a"}) == "a,b"


@pytest.mark.server
def test_oracle_sees_chinook_equal_on_sqlite_and_mariadb(
    chinook_sqlite: Backend, chinook_mysql: Backend
) -> None:
    """Same rows, different drivers: REAL vs DECIMAL money, text vs DATETIME dates.

    `Track` is left out: the upstream MySQL script drops the backslash from four track names
    (`\\` read as an escape), a real difference the oracle reports.
    """
    names = [t for t in oracle.tables(chinook_sqlite) if t != "Track"]
    oracle.assert_subset_of(chinook_sqlite, chinook_mysql, names)
    oracle.assert_subset_of(chinook_mysql, chinook_sqlite, names)
    with pytest.raises(AssertionError, match=r"Track \(TrackId=3435\): Name"):
        oracle.assert_subset_of(chinook_sqlite, chinook_mysql, ["Track"])


def test_oracle_quotes_awkward_names(backend: Backend) -> None:
    name = 'we"ird `Name` with space'
    backend.execute(f"CREATE TABLE {oracle.quote(backend, name)} (x INTEGER)")
    backend.execute(f"INSERT INTO {oracle.quote(backend, name)} VALUES (1)")
    assert oracle.tables(backend) == [name]
    assert oracle.rows(backend, name) == [{"x": 1}]


# --- fixtures ------------------------------------------------------------------------------


def test_backend_is_a_fresh_empty_database(backend: Backend) -> None:
    assert oracle.tables(backend) == []
    assert backend.query("SELECT 1") == [(1,)]


def test_chinook_sqlite_is_a_readable_copy(chinook_sqlite: Backend) -> None:
    assert oracle.count(chinook_sqlite, "Track") == 3503
    assert oracle.all_orphans(chinook_sqlite) == {}


@pytest.mark.server
@pytest.mark.datasets
@pytest.mark.parametrize(
    ("fixture", "table", "rows"),
    [
        ("chinook_pg", "track", 3503),
        ("chinook_mysql", "Track", 3503),
        ("sakila_mysql", "rental", 16044),
        ("pagila_pg", "rental", 16044),
    ],
)
def test_server_datasets_load(
    request: pytest.FixtureRequest, fixture: str, table: str, rows: int
) -> None:
    db: Backend = request.getfixturevalue(fixture)
    assert oracle.count(db, table) == rows
    assert oracle.all_orphans(db) == {}


def _orphan_one_shipment(backend: Backend) -> None:
    """Point one shipment at a warehouse key that does not exist, bypassing FK enforcement."""
    if backend.name == "postgres":
        backend.execute("ALTER TABLE shipment DROP CONSTRAINT shipment_wh_region_wh_code_fkey")
    elif backend.name == "mysql":
        (name,) = backend.query(
            "SELECT constraint_name FROM information_schema.referential_constraints "
            "WHERE constraint_schema = DATABASE() AND table_name = 'shipment'"
        )[0]
        backend.execute(f"ALTER TABLE shipment DROP FOREIGN KEY `{name}`")
    elif backend.name == "duckdb":
        backend.execute("CREATE TABLE s2 AS SELECT * FROM shipment")
        backend.execute("DROP TABLE shipment")
        backend.execute("ALTER TABLE s2 RENAME TO shipment")
    p = backend.placeholder
    backend.execute(f"UPDATE shipment SET wh_code = {p} WHERE id = 1", ("NOPE",))


def _sqlite(path: Path) -> Backend:
    return Backend("sqlite", f"sqlite:///{path}", str(path))


def _sorted_rows(db: Backend, table: str) -> list[str]:
    return sorted(map(repr, oracle.rows(db, table)))
