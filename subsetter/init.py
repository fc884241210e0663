"""Write a commented starter config from a source database (``subset init``).

Input: the source URL. It reflects the schema, sizes each table cheaply (statistics, bounded
counts) and suggests: small lookup tables (no parents, few rows, referenced by others) as
passthrough; a seed on the table with the most child tables; masks for the columns that
``audit.detect_personal`` finds personal (by name and sampled values). Output: YAML text
where every suggestion says why, and every table of the source is listed, so a reviewer sees
what was left out.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from subsetter.catalog import Catalog, TableRef
from subsetter.dialects import Dialect
from subsetter.estimate import SourceSize, source_sizes

LOOKUP_ROWS = 1000
"""Tables up to this size with no parents and some children can be passthrough (lookups)..."""
LOOKUP_SHARE = 0.05
"""...when they are this small next to their largest child table, or at most TINY_ROWS."""
TINY_ROWS = 100
SEED_LIMIT = 100


@dataclass(frozen=True)
class Suggestions:
    """What ``subset init`` proposes, and the facts behind it."""

    catalog: Catalog
    sizes: Mapping[TableRef, SourceSize]
    children: Mapping[TableRef, set[TableRef]]
    passthrough: tuple[TableRef, ...]
    seed: TableRef | None
    masks: Mapping[str, str]


def suggest(
    catalog: Catalog, sizes: Mapping[TableRef, SourceSize], masks: Mapping[str, str]
) -> Suggestions:
    """Pick passthrough tables and a seed table from the schema and the sizes; pure."""
    parents: dict[TableRef, set[TableRef]] = {t: set() for t in catalog.tables}
    children: dict[TableRef, set[TableRef]] = {t: set() for t in catalog.tables}
    for fk in catalog.foreign_keys:
        if fk.child != fk.parent:
            parents[fk.child].add(fk.parent)
            children[fk.parent].add(fk.child)

    def lookup(t: TableRef) -> bool:
        if parents[t] or not children[t] or sizes[t].rows > LOOKUP_ROWS:
            return False
        largest = max(sizes[c].rows for c in children[t])
        return sizes[t].rows <= TINY_ROWS or sizes[t].rows <= LOOKUP_SHARE * largest

    passthrough = tuple(sorted(t for t in catalog.tables if lookup(t)))
    candidates = [t for t in catalog.tables if t not in passthrough and children[t]]
    seed = min(candidates, key=lambda t: (-len(children[t]), t), default=None)
    if seed is None and catalog.tables:
        seed = min(catalog.tables, key=lambda t: (-sizes[t].rows, t))
    return Suggestions(catalog, sizes, children, passthrough, seed, dict(masks))


def starter_config(
    dialect: Dialect,
    catalog: Catalog,
    schemas: list[str] | None,
    out_dir: Path,
    masks: Mapping[str, str],
) -> str:
    """A commented starter config (YAML) for the source behind ``dialect``.

    ``masks`` maps ``table.column`` to a suggested strategy (``audit.suggest_masks``).
    """
    conn = dialect.connect(read_only=True)
    try:
        sizes = source_sizes(sorted(catalog.tables), catalog, dialect, conn)
    finally:
        conn.close()
    return render_starter(suggest(catalog, sizes, masks), dialect, schemas, out_dir)


def render_starter(
    s: Suggestions, dialect: Dialect, schemas: list[str] | None, out_dir: Path
) -> str:
    """The YAML text of a starter config: suggestions with their reasons, every table listed."""
    url, url_note = _source_url(dialect, out_dir)
    today = datetime.date.today().isoformat()
    lines = [
        "# yaml-language-server: $schema=subsetter.schema.json",
        f"# Starter config written by `subset init` from {dialect.describe()} on {today}.",
        "# Every suggestion says why; review them, then: subset plan THIS_FILE",
        "# (editors validate this file once you run: subset schema -o subsetter.schema.json)",
        "source:",
        f"  url: {url}{url_note}",
    ]
    if schemas:
        lines.append(f"  schemas: [{', '.join(schemas)}]")
    lines += [
        "",
        "targets:",
        "  staging:",
        "    # where `subset run THIS_FILE --target staging` loads; a local file until you set it",
        "    url: ${STAGING_DATABASE_URL:-sqlite:///subset.sqlite}",
        "",
        "seeds:",
    ]
    if s.seed is not None:
        kids = sorted(str(c) for c in s.children[s.seed])
        why = (
            f"the table with the most child tables ({len(kids)}: {', '.join(kids)})"
            if kids
            else "the largest table"
        )
        lines += [
            f"  # {s.seed}: {why}.",
            "  # Its rows pull every row referencing them, and all the parents those need.",
            f"  - table: {s.seed}",
            f'    limit: {SEED_LIMIT}              # or where: "..." or percent: 5',
        ]
    if s.passthrough:
        lines += [
            "",
            "# Small lookup tables (no parents, few rows next to the tables referencing them):",
            "# copied whole, so every row that points at them finds its parent.",
            "passthrough:",
        ]
        lines += [f"  - {t}   # {s.sizes[t].rows} rows" for t in s.passthrough]
    lines += [
        "",
        "# Tables never copied (a foreign key into one is written as NULL):",
        "exclude: []",
    ]
    if s.masks:
        lines += [
            "",
            "# Columns that look personal: masked before anything reaches the target.",
            "# Keep the mask key in your CI's secret store.",
            "mask_key: ${SUBSET_MASK_KEY:-}",
            "masks:",
        ]
        lines += [f"  {column}: {_strategy(rule)}" for column, rule in sorted(s.masks.items())]
    lines += ["", "# Every table in the source: rows, and the tables referencing it."]
    for ref in sorted(s.catalog.tables):
        size = s.sizes[ref]
        rows = f"{'>=' if size.at_least else ''}{size.rows} rows"
        referencing = ", ".join(sorted(str(c) for c in s.children[ref])) or "-"
        lines.append(f"#   {ref}: {rows}; children: {referencing}")
    return "\n".join(lines) + "\n"


def _strategy(rule: str) -> str:
    """A strategy name as YAML: ``null`` would read as no value, so it takes the long form."""
    return f'{{strategy: "{rule}"}}' if rule in {"null", "true", "false"} else rule


def _source_url(dialect: Dialect, out_dir: Path) -> tuple[str, str]:
    """The source URL to write: a file path relative to the config, never a password."""
    url = dialect.url
    if url.password:
        return (
            "${SOURCE_DATABASE_URL}",
            f"   # e.g. {dialect.describe()}: passwords stay out of the file",
        )
    if url.database and dialect.name in {"sqlite", "duckdb"}:
        relative = os.path.relpath(os.path.abspath(url.database), out_dir.resolve())
        return f"{url.drivername}:///{relative}", "   # relative to this file"
    return url.render_as_string(hide_password=False), ""
