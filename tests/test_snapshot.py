"""Every source query of a run reads one snapshot: writes committed mid-run are not seen.

A reporter hook writes to the source (from another connection) right after the seeds ran and
before the closure reads the children: a new order for a seed customer, and the deletion of
one of its existing orders with its items and payments. The target must hold the old order and
not the new one, and still pass the integrity check.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import subsetter
from fixtures_db.demo import load_demo
from subsetter.reporting import NullReporter
from tests.conftest import Backend

pytestmark = pytest.mark.server


class WriteAfterSeeds(NullReporter):
    """Runs ``write`` once, when the first seed has been read."""

    def __init__(self, write: Callable[[], None]) -> None:
        self.write = write
        self.done = False

    def event(self, message: str, seconds: float | None = None) -> None:
        if message.startswith("seed") and not self.done:
            self.done = True
            self.write()


@pytest.mark.parametrize("engine", ["postgres", "mysql"])
def test_run_reads_one_snapshot(
    make_backend: Callable[[str], Backend], tmp_path: Path, engine: str
) -> None:
    source = make_backend(engine)
    load_demo(source.url)
    p = source.placeholder
    victim = source.query(f"SELECT min(id) FROM orders WHERE customer_id = {p}", (1,))[0][0]
    before = {r[0] for r in source.query(f"SELECT id FROM orders WHERE customer_id = {p}", (1,))}
    address = source.query(f"SELECT min(id) FROM address WHERE customer_id = {p}", (1,))[0][0]

    def write() -> None:
        source.execute(
            "INSERT INTO orders (id, customer_id, shipping_address_id, sales_rep_id, order_date,"
            f" status) VALUES (999999, 1, {p}, NULL, '2025-01-01', 'new')",
            (address,),
        )
        source.execute(f"DELETE FROM payment WHERE order_id = {p}", (victim,))
        source.execute(f"DELETE FROM order_item WHERE order_id = {p}", (victim,))
        source.execute(f"DELETE FROM orders WHERE id = {p}", (victim,))

    target = make_backend(engine)
    config = subsetter.parse_config(
        f"source: {{url: '{source.url}'}}\nseeds: [{{table: customer, where: 'id = 1'}}]\n",
        tmp_path / "snap.yml",
        {},
    )
    reporter = WriteAfterSeeds(write)
    result = subsetter.run(config, subsetter.RunOptions(target_url=target.url), reporter)

    assert reporter.done, "the write ran during the run"
    assert source.query("SELECT count(*) FROM orders WHERE id = 999999") == [(1,)]
    copied = {r[0] for r in target.query("SELECT id FROM orders")}
    assert copied == before, "the target matches the snapshot, not the later writes"
    assert victim in copied and 999999 not in copied
    items = target.query(f"SELECT count(*) FROM order_item WHERE order_id = {p}", (victim,))
    assert items[0][0] > 0, "the deleted order's items come from the snapshot too"
    assert result.verification is not None and result.verification.ok
