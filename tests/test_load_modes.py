"""Every target mode on PostgreSQL, MariaDB and SQLite, on the cycle schemas of fixtures_db.

One source per engine and module (`fixtures_db.cycles`, with its 1:100,000 fan-out; and
`fixtures_db.nasty`), then each mode in turn into targets whose tables already exist: which
strategy each cycle gets, that a cycle with no way in fails before any data moves, and that
every load ends intact (the run's verification and the oracle's own anti-joins).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import subsetter
from fixtures_db import nasty
from fixtures_db.cycles import FANOUT, POLYMORPHIC, build_cycles
from tests import oracle
from tests.conftest import SERVERS, Backend, Servers, server_url, unique_name
from tests.e2e import assert_intact, assert_rows_equal, ids, make_config, run_into

ENGINES = [
    pytest.param("postgres", marks=pytest.mark.server, id="postgres"),
    pytest.param("mysql", marks=pytest.mark.server, id="mysql"),
    pytest.param("sqlite", id="sqlite"),
]

SEEDS = """\
seeds:
  - table: person
    where: "id = 4"
  - table: holder
    where: "id = 2"
  - table: post
    where: "id <= 2"
  - table: photo
    where: "id = 1"
  - table: feed
    where: "id IN (1, 2)"
relations:
  - child: feed_item
    parent: feed
    limit: 5
    order_by: seq DESC
  - child: person
    parent: team
    follow: always
"""
HARD = """\
  - table: dfr_a
    where: "id = 1"
  - table: hard_a
    where: "id = 1"
"""


def with_hard(body: str) -> str:
    return body.replace("relations:", HARD.rstrip("\n") + "\nrelations:", 1)


def strategies(result: subsetter.RunResult) -> dict[str, str]:
    """Cycle (its first table's bare name) -> strategy, as the run's plan recorded it."""
    assert result.plan.load is not None
    return {c.tables[0].name: c.strategy for c in result.plan.load.cycles}


@pytest.fixture(scope="module", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _database(
    engine: str, servers: Servers, folder: Path, build: Callable[[str], None]
) -> Iterator[Backend]:
    if engine in SERVERS:
        name = unique_name()
        servers.create(engine, name)
        try:
            backend = Backend(engine, server_url(engine, name), name)
            build(backend.url)
            yield backend
        finally:
            servers.drop(engine, name)
    else:
        path = folder / f"{unique_name()}.sqlite"
        backend = Backend("sqlite", f"sqlite:///{path}", str(path))
        build(backend.url)
        yield backend


@pytest.fixture(scope="module")
def cycles_source(
    engine: str, servers: Servers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    """The cycles schema with its fan-out, once per engine. Read only."""
    yield from _database(engine, servers, tmp_path_factory.mktemp("cyc"), build_cycles)


@pytest.fixture
def existing(
    engine: str, servers: Servers, tmp_path: Path
) -> Callable[[Callable[[str], None]], Iterator[Backend]]:
    """A target whose tables exist already (built by `build`, rows and keys in place)."""
    return lambda build: _database(engine, servers, tmp_path, build)


def without_fanout(url: str) -> None:
    build_cycles(url, fanout=False)


def test_every_mode_on_the_cycle_schemas(
    cycles_source: Backend,
    existing: Callable[[Callable[[str], None]], Iterator[Backend]],
    make_backend: Callable[[str], Backend],
    tmp_path: Path,
) -> None:
    source, engine = cycles_source, cycles_source.name
    plain = make_config(tmp_path, source.url, SEEDS + POLYMORPHIC)
    hard = make_config(tmp_path, source.url, with_hard(SEEDS) + POLYMORPHIC)

    # create, then replace: the run makes the tables; a cycle with no nullable key is fine.
    fresh = make_backend(engine)
    for mode in ("create", "replace"):
        result = run_into(hard, fresh, mode=mode, yes=True)
        assert_intact(source, fresh, result)
        assert set(strategies(result).values()) == {"after_load"}
    assert_rows_equal(source, fresh)
    # limit 5 newest items of feed 1 (of 100,000), all 3 of feed 2; polymorphic comments
    assert ids(fresh, "feed_item") == set(range(FANOUT - 4, FANOUT + 1)) | {
        FANOUT + 1, FANOUT + 2, FANOUT + 3,
    }  # fmt: skip
    assert ids(fresh, "comment") == ids(
        source, "comment",
        where="(commentable_type = 'Post' AND commentable_id <= 2) OR "
        "(commentable_type = 'Photo' AND commentable_id = 1)",
    )  # fmt: skip
    assert ids(fresh, "person") == {4, 5, 6}  # follow: always from team 2

    gen = existing(without_fanout)
    target = next(gen)
    try:
        before = {t: oracle.count(target, t) for t in ("dfr_a", "hard_a", "team", "post")}
        if engine != "sqlite":  # SQLite does not check keys while loading: nothing to fail
            # No way into hard_a <-> hard_b (nor, on MariaDB, dfr_*): fails before data moves.
            with pytest.raises(subsetter.PlanError) as err:
                run_into(hard, target, mode="truncate", yes=True)
            failing = "dfr_a" if engine == "mysql" else "hard_a"
            message = str(err.value).replace("public.", "")
            assert f"cycle {failing}" in message and "NOT NULL" in message
            assert "allow_disabling_fk_checks" in message
            assert {t: oracle.count(target, t) for t in before} == before

        result = run_into(plain, target, mode="truncate", yes=True)
        assert_intact(source, target, result)
        assert_rows_equal(source, target)
        expect = "unenforced" if engine == "sqlite" else "null_then_update"
        assert strategies(result) == {"badge": expect, "person": expect}

        result = run_into(hard, target, mode="truncate", allow_disabling_fk_checks=True, yes=True)
        assert_intact(source, target, result)
        assert_rows_equal(source, target)
        assert strategies(result) == {
            "postgres": {"badge": "null_then_update", "dfr_a": "deferred",
                         "hard_a": "checks_disabled", "person": "null_then_update"},
            "mysql": {"badge": "null_then_update", "dfr_a": "checks_disabled",
                      "hard_a": "checks_disabled", "person": "null_then_update"},
            "sqlite": dict.fromkeys(("badge", "dfr_a", "hard_a", "person"), "unenforced"),
        }[engine]  # fmt: skip

        # append: duplicates fail (and change nothing), are skipped, or are overwritten
        target.execute("UPDATE post SET title = 'edited' WHERE id = 1")
        with pytest.raises(subsetter.LoadError, match=r"(?i)duplicate|unique"):
            run_into(plain, target, mode="append")
        assert ids(target, "post", "title", "id = 1") == {"edited"}
        result = run_into(plain, target, mode="append", on_conflict="skip")
        assert_intact(source, target, result)
        assert ids(target, "post", "title", "id = 1") == {"edited"}
        result = run_into(plain, target, mode="append", on_conflict="update")
        assert_intact(source, target, result)
        assert_rows_equal(source, target)
    finally:
        gen.close()


NASTY = """\
seeds:
  - table: node
    where: "id IN (3, 20)"
  - table: cyc_a
    where: "id <= 3"
  - table: shipment
    where: "id <= 12"
  - table: event_log
    where: "node_id IS NOT NULL"
    children: false
"""


@pytest.fixture(scope="module")
def nasty_source(
    engine: str, servers: Servers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    yield from _database(engine, servers, tmp_path_factory.mktemp("nasty"), nasty.build_nasty)


def test_truncate_and_append_on_the_nasty_schemas(
    nasty_source: Backend,
    existing: Callable[[Callable[[str], None]], Iterator[Backend]],
    tmp_path: Path,
) -> None:
    """Two self-references, a nullable three-table cycle, a composite key onto a unique key."""
    source = nasty_source
    config = make_config(tmp_path, source.url, NASTY)
    gen = existing(nasty.build_nasty)
    target = next(gen)
    try:
        result = run_into(config, target, mode="truncate", yes=True)
        assert_intact(source, target, result)
        assert_rows_equal(source, target)
        got = strategies(result)
        if source.name == "sqlite":
            assert set(got.values()) == {"unenforced"}
        else:
            assert got == {"cyc_a": "null_then_update", "node": "null_then_update"}
            assert result.plan.load is not None
            nulled = {c.tables[0].name: c.nulled for c in result.plan.load.cycles}
            assert {fk.columns for fk in nulled["node"]} == {("parent_id",), ("root_id",)}
            assert len(nulled["cyc_a"]) == 1
        logged = oracle.count(target, "event_log")
        result = run_into(config, target, mode="append", on_conflict="skip")
        assert result.verification is not None and result.verification.ok
        assert oracle.all_orphans(target) == {}
        # rows with a key were skipped; a table without any key has no duplicates to detect
        assert oracle.count(target, "event_log") == 2 * logged
        oracle.assert_subset_of(source, target, [t for t in oracle.tables(target)
                                                  if t != "event_log"])  # fmt: skip
    finally:
        gen.close()


def test_duckdb_appends_and_names_what_it_cannot_do(
    make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    """DuckDB refuses to delete or update rows other rows reference, even in one transaction."""
    source, target = make_backend("sqlite"), make_backend("duckdb")
    nasty.build_nasty(source.url)
    nasty.build_nasty(target.url)
    body = 'seeds:\n  - table: shipment\n    where: "id <= 12"\n  - table: "order line"\n'
    config = make_config(tmp_path, source.url, body)
    with pytest.raises(subsetter.PlanError, match="DuckDB cannot empty tables that other"):
        run_into(config, target, mode="truncate", yes=True)
    result = run_into(config, target, mode="append", on_conflict="skip")
    assert result.verification is not None and result.verification.ok
    assert oracle.all_orphans(target) == {}
    assert_rows_equal(source, target)
    cyclic = make_config(tmp_path, source.url, "seeds:\n  - table: node\n    where: id = 3\n")
    with pytest.raises(subsetter.PlanError, match="DuckDB cannot UPDATE a row that other rows"):
        run_into(cyclic, target, mode="append")


def test_schema_drift_is_named_before_any_data_moves(
    make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    source, target = make_backend("sqlite"), make_backend("sqlite")
    build_cycles(source.url, fanout=False)
    build_cycles(target.url, fanout=False)
    config = make_config(tmp_path, source.url, 'seeds:\n  - table: post\n    where: "id = 1"\n')
    # a column only the target has takes its default
    target.execute("ALTER TABLE post ADD COLUMN views INTEGER NOT NULL DEFAULT 7")
    result = run_into(config, target, mode="truncate", yes=True)
    assert result.verification is not None and result.verification.ok
    assert target.query("SELECT id, views FROM post") == [(1, 7)]
    target.execute("ALTER TABLE post DROP COLUMN title")
    with pytest.raises(subsetter.TargetError, match="table post has no column title, which the"):
        run_into(config, target, mode="append")
    with pytest.raises(subsetter.TargetError, match="has no table photo"):
        target.execute("DROP TABLE photo")
        photos = make_config(tmp_path, source.url, "seeds:\n  - table: photo\n")
        run_into(photos, target, mode="truncate", yes=True)
    assert target.query("SELECT id, views FROM post") == [(1, 7)]


def test_depth_follow_and_seed_number_on_rows(
    make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    """max_depth counts per row, follow: false stops a relation, seed: N picks another sample."""
    source = make_backend("sqlite")
    nasty.build_nasty(source.url)
    children = {r[0] for r in source.query("SELECT id FROM node WHERE parent_id = 1")}
    by_root = "relations:\n  - {child: node, parent: node, columns: [root_id], follow: false}\n"
    deep = "seeds:\n  - table: node\n    where: id = 1\nmax_depth: 1\n" + by_root
    target = make_backend("sqlite")
    run_into(make_config(tmp_path, source.url, deep), target)
    assert ids(target, "node") == {1} | children  # the root and one step down, no grandchildren
    stop = deep.replace("max_depth: 1\n", "") + (
        "  - {child: node, parent: node, columns: [parent_id], follow: false}\n"
        "  - {child: event_log, parent: node, follow: false}\n"
    )
    target = make_backend("sqlite")
    result = run_into(make_config(tmp_path, source.url, stop), target)
    assert ids(target, "node") == {1} and "event_log" not in result.rows

    def sample(seed: int) -> set[object]:
        body = f"seeds:\n  - table: shipment\n    percent: 50\n    seed: {seed}\n"
        db = make_backend("sqlite")
        run_into(make_config(tmp_path, source.url, body), db)
        return ids(db, "shipment")

    one, two = sample(1), sample(2)
    assert one != two and one == sample(1) and 10 < len(one) < 50


TREE = (
    "CREATE TABLE tree (id int PRIMARY KEY, parent_id int, label varchar(20), "
    "FOREIGN KEY (parent_id) REFERENCES tree (id))"
)


@pytest.mark.server
@pytest.mark.parametrize("engine", ["postgres", "mysql"])
def test_null_then_update_is_set_based_and_rolls_back(
    engine: str,
    make_backend: Callable[[str], Backend],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A self-referencing table's keys are set by one joined UPDATE per batch, in the load's
    transaction: a failure after it leaves the target as it was, and no scratch table stays."""
    source, target = make_backend(engine), make_backend(engine)
    values = ", ".join(f"({n}, {n // 2 or 'NULL'}, 'n{n}')" for n in range(1, 3001))
    for db in (source, target):
        db.execute(TREE)
    source.execute(f"INSERT INTO tree VALUES {values}")
    target.execute("INSERT INTO tree VALUES (1, NULL, 'old'), (2, 1, 'old')")
    config = make_config(tmp_path, source.url, "seeds:\n  - table: tree\n")

    def broken_verify(*args: object, **kwargs: object) -> None:
        raise subsetter.IntegrityError("injected after the UPDATE")

    with monkeypatch.context() as patched:
        patched.setattr("subsetter.load.verify_target", broken_verify)
        with pytest.raises(subsetter.IntegrityError, match="injected"):
            run_into(config, target, mode="truncate", batch_size=1000)
    old = [(1, None, "old"), (2, 1, "old")]
    assert target.query("SELECT id, parent_id, label FROM tree ORDER BY id") == old
    # a failing UPDATE is reported as itself (not as a statement refused after it), undone
    target.execute("ALTER TABLE tree ADD CONSTRAINT no_two CHECK (parent_id <> 2)")
    with pytest.raises(subsetter.LoadError, match="no_two") as err:
        run_into(config, target, mode="truncate", batch_size=1000)
    assert "abort" not in str(err.value)
    assert target.query("SELECT id, parent_id, label FROM tree ORDER BY id") == old
    target.execute("ALTER TABLE tree DROP CONSTRAINT no_two")

    result = run_into(config, target, mode="truncate", batch_size=1000)
    assert strategies(result) == {"tree": "null_then_update"}
    assert_intact(source, target, result)
    assert_rows_equal(source, target)
    assert target.query("SELECT count(*) FROM tree WHERE parent_id IS NULL") == [(1,)]
    if engine == "postgres":  # the scratch table lived in pg_temp, in no schema of the target
        assert target.query(
            "SELECT count(*) FROM information_schema.tables WHERE table_name LIKE '%subsetter%'"
        ) == [(0,)]


@pytest.mark.server
def test_polymorphic_condition_on_columns_named_like_staging_ones(
    make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    """A source column called c0 (staging's first positional name) or _gen (its round) is the
    column the polymorphic `where` means, in staging as on the source and the target."""
    source, target = make_backend("postgres"), make_backend("postgres")
    source.execute(
        "CREATE TABLE post (id int PRIMARY KEY);"
        "CREATE TABLE photo (id int PRIMARY KEY);"
        'CREATE TABLE note (id int PRIMARY KEY, c0 text NOT NULL, c1 int, "_gen" int, '
        '"_rowid" int);'
        "INSERT INTO post VALUES (1), (2), (3); INSERT INTO photo VALUES (1), (2), (3);"
        "INSERT INTO note VALUES (1, 'Post', 1, 0, 7), (2, 'Photo', 2, 0, 7), "
        "(3, 'Video', 9, 0, 7), (4, 'Photo', 1, 1, 7), (5, 'Post', 3, 0, 7)"
    )
    body = """\
        seeds:
          - table: note
            where: "id <= 4"
        virtual_foreign_keys:
          - child: note(c1)
            parent: post(id)
            where: "c0 = 'Post' AND _gen = 0 AND _rowid = 7"
          - child: note(c1)
            parent: photo(id)
            where: "c0 = 'Photo'"
    """
    result = run_into(make_config(tmp_path, source.url, body), target)
    assert result.verification is not None and result.verification.ok
    assert ids(target, "note") == {1, 2, 3, 4}
    assert ids(target, "post") == {1}  # note 1's; note 5 is no seed
    assert ids(target, "photo") == {1, 2}  # notes 2 and 4; the Video has no table
    assert_rows_equal(source, target)
