"""Names that break SQL built by string concatenation, defined once and built on all four engines.

`build_hostile(url)` creates and fills three tables whose names and columns hold spaces, both
quote characters, backticks, semicolons, dots, comment markers, unicode, reserved words and
mixed case; the values hold them too. Every statement subsetter writes must quote them:

- `select` (reserved word): primary key `from`, and columns named with each hostile character.
- `Order Items; DROP TABLE "select" --`: a child of `select` through `select.from` (a column
  whose name holds a dot), plus a column `GROUP`.
- `Ça.va 'x'`: a child of the items (a dot and a quote in the table name, unicode), through
  `Order Items id`.

No two names differ only in case: SQLite and MariaDB compare them case-insensitively.
"""

from __future__ import annotations

import sys

import sqlalchemy as sa

from fixtures_db.loader import Row, Scenario, load

metadata = sa.MetaData()

SELECT = "select"
ITEMS = 'Order Items; DROP TABLE "select" --'
LEAF = "Ça.va 'x'"

select = sa.Table(
    SELECT,
    metadata,
    sa.Column("from", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("Mixed Case", sa.String(40), nullable=False),
    sa.Column("semi;colon", sa.String(40)),
    sa.Column('dq"quote', sa.String(40)),
    sa.Column("sq'quote", sa.String(40)),
    sa.Column("back`tick", sa.String(40)),
    sa.Column("dot.ted", sa.Integer),
    sa.Column("ünïcödé 名前", sa.String(40)),
)

items = sa.Table(
    ITEMS,
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("select.from", sa.Integer, sa.ForeignKey(select.c["from"]), nullable=False),
    sa.Column("GROUP", sa.String(20), nullable=False),
)

leaf = sa.Table(
    LEAF,
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("Order Items id", sa.Integer, sa.ForeignKey(items.c["id"])),
    sa.Column("note; --", sa.String(60)),
)

_NASTY_TEXT = ["'; DROP TABLE x; --", 'say "hi"', "back`tick", "名前 ünï", "a.b.c", "--", None]


def hostile_rows() -> dict[str, list[Row]]:
    """Every table's rows, parents first: 12 `select` rows, 30 items, 20 leaves."""
    sel = [
        {
            "from": i,
            "Mixed Case": f"row {i}",
            "semi;colon": _NASTY_TEXT[i % len(_NASTY_TEXT)],
            'dq"quote': _NASTY_TEXT[(i + 1) % len(_NASTY_TEXT)],
            "sq'quote": _NASTY_TEXT[(i + 2) % len(_NASTY_TEXT)],
            "back`tick": _NASTY_TEXT[(i + 3) % len(_NASTY_TEXT)],
            "dot.ted": i * 10,
            "ünïcödé 名前": _NASTY_TEXT[(i + 4) % len(_NASTY_TEXT)],
        }
        for i in range(1, 13)
    ]
    its = [
        {"id": i, "select.from": 1 + (i * 7) % 12, "GROUP": ["a", "b", "c; --"][i % 3]}
        for i in range(1, 31)
    ]
    leaves = [
        {"id": i, "Order Items id": None if i % 7 == 0 else i, "note; --": f"leaf '{i}'"}
        for i in range(1, 21)
    ]
    return {SELECT: sel, ITEMS: its, LEAF: leaves}


def build_hostile(url: str) -> None:
    """Create and fill the hostile tables in the empty database at `url`."""
    load(url, Scenario(metadata=metadata, rows=hostile_rows()))


if __name__ == "__main__":
    build_hostile(sys.argv[1])
