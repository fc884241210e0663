"""Schemas for traversal policy and for loading into tables that already exist, on three engines.

`build_cycles(url)` creates and fills (PostgreSQL, MariaDB, SQLite):

- `dfr_a` -> `dfr_b` -> `dfr_c` -> `dfr_a`: a three-table cycle of NOT NULL foreign keys,
  DEFERRABLE on PostgreSQL (MariaDB and SQLite cannot defer: there it is a cycle with no way in).
- `team` <-> `person`: a cycle with exactly one nullable foreign key (`team.lead_id`).
- `hard_a` <-> `hard_b`: a cycle of NOT NULL, non-deferrable foreign keys (no order loads it).
- `badge` (no primary key; `code` is UNIQUE NOT NULL) <-> `holder`: a table without a primary
  key in a cycle; `badge.holder_id` is the nullable edge.
- `post`, `photo`, `comment`: a polymorphic `comment(commentable_type, commentable_id)`, declared
  to subsetter as virtual foreign keys with a condition (`POLYMORPHIC`); some comments point at
  a `Video` that has no table.
- `feed` -> `feed_item`: a 1:100,000 fan-out (feed 1), built by the engine itself
  (generate_series, MariaDB's sequence tables, a recursive CTE), for per-parent limits.

Rows are inserted before any foreign key exists, then the keys are added (NOT NULL cycles cannot
be filled any other way without turning checks off). SQLite declares the keys inline; it does
not enforce them unless asked (PRAGMA foreign_keys), so the rows go in alike.
"""

from __future__ import annotations

import sys

import sqlalchemy as sa
from sqlalchemy.schema import AddConstraint, CreateIndex, CreateTable

from fixtures_db.loader import Row

FANOUT = 100_000
"""Children of feed 1."""

POLYMORPHIC = """\
virtual_foreign_keys:
  - child: comment(commentable_id)
    parent: post(id)
    where: "commentable_type = 'Post'"
  - child: comment(commentable_id)
    parent: photo(id)
    where: "commentable_type = 'Photo'"
"""
"""The config lines that declare the polymorphic keys of `comment`."""


def cycles_metadata(deferrable: bool) -> sa.MetaData:
    """The schema; `deferrable` makes the `dfr_*` keys DEFERRABLE (PostgreSQL only)."""
    md = sa.MetaData()
    later = {"deferrable": True, "initially": "IMMEDIATE"} if deferrable else {}

    def key(target: str, name: str, nullable: bool = False, **kw: object) -> sa.Column[int]:
        return sa.Column(
            name, sa.Integer, sa.ForeignKey(target, use_alter=True, **kw), nullable=nullable
        )

    def pk() -> sa.Column[int]:
        return sa.Column("id", sa.Integer, primary_key=True, autoincrement=False)

    label = sa.Column("label", sa.String(30), nullable=False)
    for name, parent in (("dfr_a", "dfr_b"), ("dfr_b", "dfr_c"), ("dfr_c", "dfr_a")):
        column = f"{parent[-1]}_id"
        sa.Table(name, md, pk(), key(f"{parent}.id", column, **later), label._copy())
    sa.Table("team", md, pk(), key("person.id", "lead_id", nullable=True), label._copy())
    sa.Table("person", md, pk(), key("team.id", "team_id"), label._copy())
    sa.Table("hard_a", md, pk(), key("hard_b.id", "b_id"), label._copy())
    sa.Table("hard_b", md, pk(), key("hard_a.id", "a_id"), label._copy())
    sa.Table(
        "badge",
        md,
        sa.Column("code", sa.String(10), nullable=False, unique=True),
        key("holder.id", "holder_id", nullable=True),
        sa.Column("note", sa.String(30)),
    )
    sa.Table(
        "holder",
        md,
        pk(),
        sa.Column(
            "badge_code",
            sa.String(10),
            sa.ForeignKey("badge.code", use_alter=True),
            nullable=False,
        ),
        label._copy(),
    )
    sa.Table("post", md, pk(), sa.Column("title", sa.String(40), nullable=False))
    sa.Table("photo", md, pk(), sa.Column("url", sa.String(60), nullable=False))
    sa.Table(
        "comment",
        md,
        pk(),
        sa.Column("commentable_type", sa.String(10), nullable=False),
        sa.Column("commentable_id", sa.Integer, nullable=False),
        sa.Column("body", sa.String(60), nullable=False),
    )
    sa.Table("feed", md, pk(), sa.Column("name", sa.String(20), nullable=False))
    items = sa.Table(
        "feed_item",
        md,
        pk(),
        key("feed.id", "feed_id"),
        sa.Column("seq", sa.Integer, nullable=False),
    )
    sa.Index("ix_feed_item_feed_seq", items.c.feed_id, items.c.seq)
    return md


def cycles_rows() -> dict[str, list[Row]]:
    """Every table's rows except the fan-out (written by `fill_fanout`)."""
    n = 5
    rows: dict[str, list[Row]] = {}
    for name, column in (("dfr_a", "b_id"), ("dfr_b", "c_id"), ("dfr_c", "a_id")):
        rows[name] = [{"id": i, column: i % n + 1, "label": f"{name}{i}"} for i in range(1, n + 1)]
    rows["team"] = [{"id": t, "lead_id": t * 3 if t != 2 else None, "label": f"team{t}"}
                    for t in (1, 2, 3)]  # fmt: skip
    rows["person"] = [
        {"id": p, "team_id": (p - 1) // 3 + 1, "label": f"p{p}"} for p in range(1, 10)
    ]
    rows["hard_a"] = [{"id": i, "b_id": i, "label": f"ha{i}"} for i in range(1, 5)]
    rows["hard_b"] = [{"id": i, "a_id": i % 4 + 1, "label": f"hb{i}"} for i in range(1, 5)]
    rows["badge"] = [{"code": f"B{i}", "holder_id": i if i % 3 else None, "note": None}
                     for i in range(1, 7)]  # fmt: skip
    rows["holder"] = [{"id": i, "badge_code": f"B{7 - i}", "label": f"h{i}"} for i in range(1, 7)]
    rows["post"] = [{"id": i, "title": f"post {i}"} for i in range(1, 6)]
    rows["photo"] = [{"id": i, "url": f"https://example.org/{i}.jpg"} for i in range(1, 6)]
    kinds = ("Post", "Photo", "Video")
    rows["comment"] = [
        {"id": i, "commentable_type": kinds[i % 3], "commentable_id": i % 5 + 1, "body": f"c{i}"}
        for i in range(1, 31)
    ]
    rows["feed"] = [{"id": 1, "name": "firehose"}, {"id": 2, "name": "quiet"},
                    {"id": 3, "name": "empty"}]  # fmt: skip
    return rows


def build_cycles(url: str, fanout: bool = True) -> None:
    """Create and fill the schemas in the empty database at `url` (`fanout`: feed 1's rows)."""
    engine = sa.create_engine(url)
    md = cycles_metadata(deferrable=engine.dialect.name == "postgresql")
    inline = engine.dialect.name == "sqlite"  # SQLite cannot add a foreign key later
    try:
        with engine.begin() as conn:
            for table in md.tables.values():
                fks = None if inline else []
                conn.execute(CreateTable(table, include_foreign_key_constraints=fks))
                for index in table.indexes:
                    conn.execute(CreateIndex(index))
            for name, rows in cycles_rows().items():
                conn.execute(md.tables[name].insert(), rows)
            rows_sql = _fanout_sql(engine.dialect.name) if fanout else []
            for statement in rows_sql:
                conn.execute(sa.text(statement))
            if not inline:
                for table in md.tables.values():
                    for fkc in table.foreign_key_constraints:
                        conn.execute(AddConstraint(fkc))
    finally:
        engine.dispose()


def _fanout_sql(engine: str) -> list[str]:
    """Feed 1 gets FANOUT items, feed 2 three: set-based, never a Python loop."""
    head = "INSERT INTO feed_item (id, feed_id, seq)"
    small = f"{head} VALUES ({FANOUT + 1}, 2, 1), ({FANOUT + 2}, 2, 2), ({FANOUT + 3}, 2, 3)"
    if engine == "postgresql":
        big = f"{head} SELECT g, 1, g FROM generate_series(1, {FANOUT}) AS g"
    elif engine in {"mysql", "mariadb"}:
        big = f"{head} SELECT seq, 1, seq FROM seq_1_to_{FANOUT}"
    else:
        big = (
            f"{head} WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n "
            f"WHERE x < {FANOUT}) SELECT x, 1, x FROM n"
        )
    return [big, small]


if __name__ == "__main__":
    build_cycles(sys.argv[1])
