"""The catalog: what reflection learned about a database, as frozen values.

Every later stage reads these types and nothing else from the schema, so a table is always a
``TableRef`` (never a "schema.table" string) and a column type is an engine-neutral ``ColumnType``
that each dialect knows how to stage, create and load.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from subsetter.errors import ConfigError

#: Engine-neutral column kinds. ``other`` carries the source's own type name in ``native``.
KINDS = frozenset(
    {
        "integer",
        "decimal",
        "float",
        "string",
        "text",
        "boolean",
        "date",
        "time",
        "timestamp",
        "timestamptz",
        "interval",
        "uuid",
        "json",
        "binary",
        "array",
        "enum",
        "set",
        "year",
        "other",
    }
)


@dataclass(frozen=True)
class TableRef:
    """A table's identity: its schema (``None`` where the engine has none) and its name."""

    schema: str | None
    name: str

    def __lt__(self, other: TableRef) -> bool:
        return (self.schema or "", self.name) < (other.schema or "", other.name)

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


@dataclass(frozen=True)
class ColumnType:
    """An engine-neutral column type; ``native`` is the source's spelling for same-engine copies."""

    kind: str
    native: str = ""
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    values: tuple[str, ...] = ()
    item: ColumnType | None = None
    type_name: str | None = None
    """Name of a user-defined type (PostgreSQL enum) on the source, if any."""
    type_schema: str | None = None
    bits: int = 64
    """Width of an integer column, so the target gets SMALLINT/INTEGER/BIGINT alike."""
    foreign_note: str | None = None
    """What another engine loses when it holds this kind (e.g. geometry as raw bytes)."""


@dataclass(frozen=True)
class Column:
    """One column: name, type, nullability, and how new values are numbered."""

    name: str
    type: ColumnType
    nullable: bool = True
    default: str | None = None
    autoincrement: bool = False


@dataclass(frozen=True)
class ForeignKey:
    """A child table's columns that must match a parent table's key (declared or virtual)."""

    child: TableRef
    columns: tuple[str, ...]
    parent: TableRef
    ref_columns: tuple[str, ...]
    name: str | None = None
    virtual: bool = False
    condition: str | None = None
    """SQL on the child row that must hold for the key to point here (polymorphic keys)."""
    deferrable: bool = False
    """The engine may check this key at commit instead of per statement (PostgreSQL)."""

    @property
    def columns_label(self) -> str:
        """``name(col, col)`` or ``(col, col)``: how messages name this key."""
        cols = ", ".join(self.columns)
        return f"{self.name} ({cols})" if self.name else f"({cols})"

    def __str__(self) -> str:
        cols = ", ".join(self.columns)
        refs = ", ".join(self.ref_columns)
        label = f" ({self.name})" if self.name else ""
        where = f" where {self.condition}" if self.condition else ""
        return f"{self.child}({cols}) -> {self.parent}({refs}){label}{where}"


@dataclass(frozen=True)
class Index:
    """A secondary index, created on the target after the rows are in."""

    name: str
    columns: tuple[str, ...]
    unique: bool = False


@dataclass(frozen=True)
class Table:
    """A table's columns and keys."""

    ref: TableRef
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    unique_keys: tuple[tuple[str, ...], ...] = ()
    indexes: tuple[Index, ...] = ()

    def column(self, name: str) -> Column:
        """Return the column called ``name``."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def has_key(self) -> bool:
        """Whether some key tells every row apart (else identical rows are indistinguishable)."""
        return self.identity != self.column_names or bool(self.primary_key)

    @property
    def identity(self) -> tuple[str, ...]:
        """Columns telling rows apart: the primary key, a NOT NULL unique key, else all columns."""
        if self.primary_key:
            return self.primary_key
        for key in self.unique_keys:
            if all(not self.column(c).nullable for c in key):
                return key
        return self.column_names


@dataclass(frozen=True)
class Catalog:
    """Tables and foreign keys of one database, as reflected."""

    tables: Mapping[TableRef, Table]
    foreign_keys: tuple[ForeignKey, ...]
    default_schema: str | None
    dialect: str
    _by_name: Mapping[str, tuple[TableRef, ...]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        by_name: dict[str, list[TableRef]] = {}
        for ref in self.tables:
            by_name.setdefault(ref.name.lower(), []).append(ref)
        object.__setattr__(self, "tables", MappingProxyType(dict(self.tables)))
        object.__setattr__(
            self, "_by_name", MappingProxyType({k: tuple(v) for k, v in by_name.items()})
        )

    def table(self, ref: TableRef) -> Table:
        return self.tables[ref]

    def resolve(self, name: str, where: str = "") -> TableRef:
        """Find the table a config calls ``name`` ("table" or "schema.table").

        A table whose own name holds a dot ("a.b") is found by that whole name first.
        """
        whole = [r for r in self._by_name.get(name.lower(), ()) if r.name == name]
        if len(whole) == 1:
            return whole[0]
        schema, _, bare = name.rpartition(".")
        candidates = [
            ref
            for ref in self._by_name.get(bare.lower(), ())
            if not schema or (ref.schema or "").lower() == schema.lower()
        ]
        exact = [r for r in candidates if r.name == bare and (not schema or r.schema == schema)]
        if len(exact) == 1:
            return exact[0]
        if len(candidates) > 1 and not schema:
            preferred = [r for r in candidates if r.schema == self.default_schema]
            if len(preferred) == 1:
                return preferred[0]
            names = ", ".join(sorted(str(r) for r in candidates))
            raise ConfigError(f'{where}table "{name}" is ambiguous ({names}); add the schema')
        if len(candidates) == 1:
            return candidates[0]
        # A bare name is compared with bare names: "flim" is too far from "public.film".
        hint = did_you_mean(name, (str(r) if schema else r.name for r in self.tables))
        raise ConfigError(f'{where}no table "{name}" in the source.{hint}')


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ' Did you mean "x"?' for the closest choice, or '' when none is close."""
    pool = list(choices)
    lowered = {c.lower(): c for c in pool}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return f' Did you mean "{lowered[close[0]]}"?' if close else ""
