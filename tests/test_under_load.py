"""Runs against a busy source, and long runs against servers that end idle sessions.

A writer process keeps inserting, growing and deleting orders with their lines (each order
stores its line count and sum) while subsets run. Every target must equal the source as it was
at one moment: the run copies `writer_version` (bumped by each write transaction) whole, and the
target's orders and lines must be exactly those of that version, rebuilt from the writer's
journal: nothing newer, nothing missing.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import psycopg
import pymysql
import pytest

import subsetter
from tests.conftest import MYSQL, PG, Backend
from tests.reliability import Hook, build_load_source, state_at, writer

pytestmark = pytest.mark.server

SERVERS = ["postgres", "mysql"]
RUNS = 3
SEEDS = "seeds: [{table: account, where: 'id <= 10'}]\npassthrough: [writer_version]\n"


def _target_state(target: Backend) -> tuple[int, dict[int, tuple[int, list[tuple[int, int]]]]]:
    (version,) = target.query("SELECT v FROM writer_version")[0]
    orders = target.query("SELECT id, account_id, n_lines, total FROM orders")
    lines = target.query("SELECT id, order_id, amount FROM line ORDER BY id")
    state: dict[int, tuple[int, list[tuple[int, int]]]] = {o[0]: (o[1], []) for o in orders}
    for line_id, order, amount in lines:
        state[order][1].append((line_id, amount))
    for order_id, _, n_lines, total in orders:
        got = state[order_id][1]
        assert (len(got), sum(a for _, a in got)) == (n_lines, total), f"order {order_id}"
    return version, state


@pytest.mark.parametrize("engine", SERVERS)
def test_runs_during_concurrent_writes_match_one_snapshot(
    engine: str, make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    source = make_backend(engine)
    build_load_source(source)
    journal = tmp_path / "journal.jsonl"
    journal.touch()
    spawn = multiprocessing.get_context("spawn")
    commits, stop = spawn.Value("i", 0), spawn.Event()
    proc = spawn.Process(
        target=writer, args=(engine, source.database, str(journal), commits, stop), daemon=True
    )
    proc.start()

    def wait_for_writes(n: int) -> None:
        """Hold the run (after its seed was read) until the writer committed `n` more times."""
        goal, deadline = commits.value + 20, time.monotonic() + 30
        while commits.value < goal and time.monotonic() < deadline and proc.is_alive():
            time.sleep(0.01)

    config = subsetter.parse_config(f"source: {{url: '{source.url}'}}\n{SEEDS}", None, {})
    results = []
    try:
        deadline = time.monotonic() + 30
        while commits.value < 5 and time.monotonic() < deadline:
            time.sleep(0.05)  # the writer is up before the first run
        for _ in range(RUNS):
            target = make_backend(engine)
            before = commits.value
            hook = Hook(on_seed=wait_for_writes)
            result = subsetter.run(config, subsetter.RunOptions(target_url=target.url), hook)
            results.append((target, result, commits.value - before))
    finally:
        stop.set()
        proc.join(30)
    assert proc.exitcode == 0, "the writer ran without error"
    final = source.query("SELECT v FROM writer_version")[0][0]
    for target, result, during in results:
        assert result.verification is not None and result.verification.ok
        assert during >= 20, "writes were committed while the run read the source"
        version, got = _target_state(target)
        assert 0 < version < final, "the run saw some writes, not the ones after its snapshot"
        expected = {
            order: (account, sorted(lines))
            for order, (account, lines) in state_at(str(journal), version).items()
            if account <= 10
        }
        assert {o: (a, sorted(ls)) for o, (a, ls) in got.items()} == expected
    during_runs = [d for _, _, d in results]
    assert sum(during_runs) >= RUNS * 20
    print(f"{engine}: {RUNS} runs; writer commits during each run {during_runs}; {final} in all")


def _pause(seconds: float) -> Callable[[int], None]:
    return lambda n: time.sleep(seconds) if n == 0 else None


@pytest.mark.parametrize("engine", SERVERS)
def test_long_idle_gaps_survive_server_idle_timeouts(
    engine: str, make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    """Idle timeouts of 1 s; the run idles 2 s mid-extract (source) and mid-load (target)."""
    source, target = make_backend(engine), make_backend(engine)
    build_load_source(source)
    if engine == "postgres":
        for db in (source, target):
            db.execute(
                f'ALTER DATABASE "{db.database}" SET idle_in_transaction_session_timeout = 1000'
            )
            db.execute(f'ALTER DATABASE "{db.database}" SET idle_session_timeout = 1000')
        source_url, target_url = source.url, target.url
        control = psycopg.connect(**PG, dbname=source.database)
        control.execute("SELECT 1")  # a transaction left idle, as a snapshot would be
        time.sleep(2.0)
        with pytest.raises(psycopg.Error, match="idle-in-transaction timeout"):
            control.execute("SELECT 1")
    else:
        # MariaDB's wait_timeout is global; a session's own can be set as it starts.
        init = "?init_command=" + quote("SET SESSION wait_timeout = 1")
        source_url, target_url = source.url + init, target.url + init
        control = pymysql.connect(**MYSQL, database=source.database, init_command=
                                  "SET SESSION wait_timeout = 1")  # fmt: skip
        time.sleep(2.0)
        with pytest.raises(pymysql.err.OperationalError), control.cursor() as cur:
            cur.execute("SELECT 1")
    control.close()
    config = subsetter.parse_config(f"source: {{url: '{source_url}'}}\n{SEEDS}", None, {})
    hook = Hook(on_seed=_pause(2.0), on_loaded=_pause(2.0))
    result = subsetter.run(config, subsetter.RunOptions(target_url=target_url), hook)
    assert result.verification is not None and result.verification.ok
    assert result.rows["account"] == 10
    assert hook.warnings == [], "no connection was lost, so nothing was retried"
