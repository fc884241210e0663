"""Helpers of the end-to-end tests: inline configs, a run into a target, the checks after it.

Every check reads the databases through `tests.oracle` (the raw drivers), never through
subsetter, so a bug in subsetter's reflection or loading cannot hide itself.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import subsetter
from tests import oracle
from tests.oracle import Database
from tests.readonly import as_reader


def make_config(tmp_path: Path, source_url: str, body: str) -> subsetter.Config:
    """Parse a config whose source is `source_url` and whose other keys are `body` (YAML).

    With SUBSETTER_READONLY_SOURCE=1 a server source is read as a SELECT-only role instead.
    """
    text = f"source:\n  url: {as_reader(source_url)}\n{textwrap.dedent(body)}"
    return subsetter.parse_config(text, tmp_path / "c.yml", {})


def run_into(config: subsetter.Config, target: Database, **options: Any) -> subsetter.RunResult:
    """Run `config` into `target` (by URL) with `RunOptions(**options)`."""
    url: str = target.url  # type: ignore[attr-defined]
    return subsetter.run(config, subsetter.RunOptions(target_url=url, **options))


def assert_intact(source: Database, target: Database, result: subsetter.RunResult) -> None:
    """Assert the run verified itself and the oracle finds no orphan in the target.

    Orphans are counted twice: along the foreign keys the target declares (its own catalog), and
    along every key the source declares between tables the target holds, so a key subsetter
    failed to create in the target is still checked.
    """
    assert result.verification is not None and result.verification.ok, result.verification
    assert oracle.all_orphans(target) == {}
    present = set(oracle.tables(target))
    declared = [fk for fk in oracle.foreign_keys(source) if {fk.child, fk.parent} <= present]
    assert oracle.all_orphans(target, declared) == {}
    assert set(result.rows) <= present
    assert {t: oracle.count(target, t) for t in result.rows} == result.rows


def assert_rows_equal(
    source: Database, target: Database, skip: Mapping[str, Collection[str]] | None = None
) -> None:
    """Assert every target row equals its source row (by primary key), on every target table.

    `skip` names columns left out of the comparison, per table; a caller skipping a column must
    say why and, where it can, compare that column another way.
    """
    skip = skip or {}
    plain = [t for t in oracle.tables(target) if t not in skip]
    oracle.assert_subset_of(source, target, plain)
    for table, columns in skip.items():
        key = oracle.primary_key(source, table)
        assert key, f"{table}: skipping columns needs a primary key to match rows by"

        def project(row: oracle.Row, columns: Collection[str] = columns) -> oracle.Row:
            return {c: v for c, v in row.items() if c not in columns}

        by_key = {tuple(r[c] for c in key): project(r) for r in oracle.rows(source, table)}
        target_rows = [project(r) for r in oracle.rows(target, table)]
        assert target_rows, f"{table}: no rows in the target"
        for row in target_rows:
            assert by_key.get(tuple(row[c] for c in key)) == row, f"{table}: {row}"


def ids(db: Database, table: str, column: str = "id", where: str = "") -> set[Any]:
    """Return the set of `column` values of `table` (optionally filtered by SQL `where`)."""
    q = oracle.quote(db, table), oracle.quote(db, column)
    sql = f"SELECT {q[1]} FROM {q[0]}" + (f" WHERE {where}" if where else "")
    return {oracle.normalise(r[0]) for r in db.query(sql)}


Seed = tuple[str, Callable[[oracle.Row], bool], bool]
"""A seed for `expected_closure`: table, which rows, whether they pull their children."""


def expected_closure(source: Database, seeds: Collection[Seed]) -> dict[str, list[oracle.Row]]:
    """Compute in Python, from the source's rows and declared keys, the rows a subset must hold.

    The rule the engine documents: seed rows with children pull every row that references them,
    transitively; seed rows and those children pull their parents, transitively; a row reached
    only as a parent pulls no children. Rows are identified by their position, so identical rows
    of a table without a key stay distinct here.
    """
    fks = oracle.foreign_keys(source)
    names = {t for fk in fks for t in (fk.child, fk.parent)} | {s[0] for s in seeds}
    rows = {t: oracle.rows(source, t) for t in names}

    def pick(down: bool) -> dict[str, set[int]]:
        found: dict[str, set[int]] = {t: set() for t in names}
        for table, where, children in seeds:
            if children or not down:
                found[table] |= {i for i, r in enumerate(rows[table]) if where(r)}
        return found

    def follow(reached: dict[str, set[int]], upward: bool) -> None:
        changed = True
        while changed:
            changed = False
            for fk in fks:
                src, src_cols, dst, dst_cols = (
                    (fk.child, fk.child_columns, fk.parent, fk.parent_columns)
                    if upward
                    else (fk.parent, fk.parent_columns, fk.child, fk.child_columns)
                )
                wanted = {tuple(rows[src][i][c] for c in src_cols) for i in reached[src]}
                wanted = {k for k in wanted if None not in k}
                new = {
                    i
                    for i, r in enumerate(rows[dst])
                    if i not in reached[dst] and tuple(r[c] for c in dst_cols) in wanted
                }
                if new:
                    reached[dst] |= new
                    changed = True

    reached = pick(down=True)
    follow(reached, upward=False)
    for table, found in pick(down=False).items():
        reached[table] |= found
    follow(reached, upward=True)
    return {t: [rows[t][i] for i in sorted(found)] for t, found in reached.items() if found}
