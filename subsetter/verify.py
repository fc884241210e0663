"""The integrity check of a loaded target: one anti-join per foreign key, virtual ones included."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from subsetter.catalog import TableRef
from subsetter.dialects import Dialect


@dataclass(frozen=True)
class FkCheck:
    """A foreign key as it exists in the target."""

    label: str
    child: TableRef
    columns: tuple[str, ...]
    parent: TableRef
    ref_columns: tuple[str, ...]
    condition: str | None = None
    """Only child rows matching this SQL reference the parent (polymorphic keys)."""


@dataclass
class VerifyResult:
    """Orphan counts per foreign key; ``ok`` when all are zero."""

    checked: int = 0
    orphans: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.orphans

    def describe(self) -> str:
        if self.ok:
            return f"integrity verified: {self.checked} foreign keys, no orphan rows"
        worst = "; ".join(
            f"{label}: {n} orphan row(s)" for label, n in sorted(self.orphans.items())
        )
        return (
            f"integrity check failed on {len(self.orphans)} of {self.checked} foreign keys: {worst}"
        )


def orphan_count_sql(dialect: Dialect, check: FkCheck) -> str:
    """Count child rows whose non-null key finds no parent row."""
    not_null = " AND ".join(f"c.{dialect.quote(col)} IS NOT NULL" for col in check.columns)
    match = " AND ".join(
        f"p.{dialect.quote(r)} = c.{dialect.quote(col)}"
        for col, r in zip(check.columns, check.ref_columns, strict=True)
    )
    if check.condition:
        not_null += f" AND ({check.condition})"
    return (
        f"SELECT COUNT(*) FROM {dialect.table_sql(check.child)} c WHERE {not_null} "
        f"AND NOT EXISTS (SELECT 1 FROM {dialect.table_sql(check.parent)} p WHERE {match})"
    )


def verify_target(dialect: Dialect, conn: Any, checks: Sequence[FkCheck]) -> VerifyResult:
    """Run every check on the target connection."""
    result = VerifyResult(checked=len(checks))
    for check in checks:
        count = int(dialect.execute(conn, orphan_count_sql(dialect, check))[0][0])
        if count:
            result.orphans[check.label] = count
    return result
