"""Hook functions the masking tests name in their configs (``tests.mask_hooks:NAME``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def ticket_body(value: str, row: Mapping[str, Any]) -> str:
    """Per value, with the row as context: a body that names only the ticket's id."""
    return f"ticket {row['id']}: sign-in problem"


def stars(values: Sequence[str | None], rows: Sequence[Mapping[str, Any]]) -> list[str | None]:
    """Per batch (first parameter named ``values``): every value as stars of its length."""
    assert len(values) == len(rows)
    return [None if v is None else "#" * len(v) for v in values]


def explode(value: str, row: Mapping[str, Any]) -> str:
    """Fails on some rows, with the value in its message (which must not reach the user)."""
    if row["id"] % 8 == 0:
        raise ValueError(f"cannot handle {value}")
    return "fine"
