"""Loading while the source is read (`load.EarlyLoad`), PostgreSQL to PostgreSQL.

Each closure round's new rows go into the target's open transaction while later rounds read
the source. These tests watch which rows went in early and prove the target still ends up
holding exactly the subset: rows changed in staging after they went in (keys set to NULL) are
loaded again, and masked runs never load early (an original value must not reach the target).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import subsetter
from subsetter import load
from tests import oracle
from tests.conftest import Backend
from tests.e2e import assert_intact, assert_rows_equal, ids, make_config, run_into

pytestmark = pytest.mark.server

DEMO_SEEDS = "seeds: [{table: customer, where: 'id <= 10'}]\n"


@pytest.fixture
def early_loads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[load.EarlyLoad, list[int]]]:
    """Every EarlyLoad a run makes, with the rounds extraction handed it."""
    made: list[tuple[load.EarlyLoad, list[int]]] = []
    real_init, real_round = load.EarlyLoad.__init__, load.EarlyLoad.round_staged

    def init(self: load.EarlyLoad, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        made.append((self, []))

    def round_staged(self: load.EarlyLoad, gen: int, refs: list[subsetter.TableRef]) -> None:
        next(rounds for early, rounds in made if early is self).append(gen)
        real_round(self, gen, refs)

    monkeypatch.setattr(load.EarlyLoad, "__init__", init)
    monkeypatch.setattr(load.EarlyLoad, "round_staged", round_staged)
    return made


def test_rows_go_in_round_by_round_while_the_source_is_read(
    demo_on: Callable[[str], Backend],
    make_backend: Callable[[str], Backend],
    early_loads: list[tuple[load.EarlyLoad, list[int]]],
    tmp_path: Path,
) -> None:
    source = demo_on("postgres")
    target = make_backend("postgres")

    result = run_into(make_config(tmp_path, source.url, DEMO_SEEDS), target)

    assert_intact(source, target, result)
    assert_rows_equal(source, target)
    [(early, rounds)] = early_loads
    assert rounds == list(range(len(rounds))) and len(rounds) >= 3, rounds
    # every table's rows went in while the source was read; load only added the keys
    loaded_early = {str(early.tables[ref].ref): n for ref, n in early.rows.items()}
    assert loaded_early == {t: n for t, n in result.rows.items() if n}
    assert ids(target, "customer") == set(range(1, 11))


def build_dangling(db: Backend) -> None:
    """`note.account_ref -> account.id`, undeclared; note 8 points at a missing account."""
    db.execute("CREATE TABLE account (id INTEGER PRIMARY KEY, name VARCHAR(20) NOT NULL)")
    db.execute("CREATE TABLE note (id INTEGER PRIMARY KEY, account_ref INTEGER, body VARCHAR(20))")
    db.execute("INSERT INTO account VALUES (1, 'a1'), (2, 'a2')")
    db.execute("INSERT INTO note VALUES (1, 1, 'n1'), (2, 2, 'n2'), (8, 999, 'dangling')")


def test_a_table_changed_after_it_went_in_is_loaded_again(
    make_backend: Callable[[str], Backend],
    early_loads: list[tuple[load.EarlyLoad, list[int]]],
    tmp_path: Path,
) -> None:
    """Note 8's key is set to NULL in staging after its round went in: the target gets NULL."""
    source = make_backend("postgres")
    build_dangling(source)
    body = (
        "seeds: [{table: note, where: 'id IN (2, 8)'}]\n"
        "virtual_foreign_keys: [{child: note(account_ref), parent: account(id)}]\n"
    )
    target = make_backend("postgres")

    result = run_into(make_config(tmp_path, source.url, body), target)

    assert_intact(source, target, result)
    assert sorted(oracle.rows(target, "note"), key=lambda r: r["id"]) == [
        {"id": 2, "account_ref": 2, "body": "n2"},
        {"id": 8, "account_ref": None, "body": "dangling"},
    ]
    [(early, _)] = early_loads
    kept = {ref.name for ref in early.rows}
    assert "account" in kept and "note" not in kept, kept
    assert result.rows == {"account": 1, "note": 2}


def test_a_masked_run_does_not_load_early(
    demo_on: Callable[[str], Backend],
    make_backend: Callable[[str], Backend],
    early_loads: list[tuple[load.EarlyLoad, list[int]]],
    tmp_path: Path,
) -> None:
    source = demo_on("postgres")
    target = make_backend("postgres")
    body = DEMO_SEEDS + "mask_key: k\nmasks:\n  customer.email: email\n"

    result = run_into(make_config(tmp_path, source.url, body), target)

    assert early_loads == []
    assert result.rows["customer"] == 10
    originals = {r[0] for r in source.query("SELECT email FROM customer WHERE id <= 10")}
    assert not originals & {r[0] for r in target.query("SELECT email FROM customer")}
