"""Reflection through SQLAlchemy's inspector, shared by the engines SQLAlchemy reflects well.

The inspector's types become engine-neutral ``ColumnType`` values here; a dialect adds the
types only it has by overriding ``special_type``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.sql.sqltypes import _AbstractInterval

from subsetter.catalog import Catalog, Column, ColumnType, ForeignKey, Index, Table, TableRef
from subsetter.dialects.base import Dialect
from subsetter.errors import ConnectionFailed


class SQLAlchemyReflection(Dialect):
    """A dialect whose catalog comes from ``sqlalchemy.inspect``."""

    def sqlalchemy_engine(self) -> Engine:
        """An engine used for reflection only; data moves through raw driver connections."""
        return sa.create_engine(self.url, poolclass=sa.pool.NullPool, creator=self._creator)

    def _creator(self) -> Any:
        return self.connect_retrying(read_only=True)

    def reflect(self, schemas: Sequence[str] | None) -> Catalog:
        engine = self.sqlalchemy_engine()
        try:
            # Types SQLAlchemy does not know become kind "other" (or are fixed up by the
            # dialect); its warning about them would only be noise for the user.
            with warnings.catch_warnings(), engine.connect() as conn:
                warnings.simplefilter("ignore", sa.exc.SAWarning)
                inspector = sa.inspect(conn)
                default = inspector.default_schema_name
                wanted = list(schemas) if schemas else [default]
                tables: dict[TableRef, Table] = {}
                fks: list[ForeignKey] = []
                for schema in wanted:
                    self._reflect_schema(inspector, schema, default, tables, fks)
                return self.adjust_catalog(
                    conn, Catalog(tables, tuple(fks), self.catalog_schema(default), self.name)
                )
        except sa.exc.DBAPIError as exc:
            raise ConnectionFailed(
                f"cannot read the schema of {self.describe()}: {self.wrap_error(exc.orig or exc)}"
            ) from None
        finally:
            engine.dispose()

    def catalog_schema(self, schema: str | None) -> str | None:
        """The schema recorded in TableRefs (None for engines without schemas)."""
        return schema

    def adjust_catalog(self, conn: Any, catalog: Catalog) -> Catalog:
        """Engine-specific fix-ups after reflection (PostgreSQL partitions)."""
        return catalog

    def _reflect_schema(
        self,
        inspector: sa.Inspector,
        schema: str | None,
        default: str | None,
        tables: dict[TableRef, Table],
        fks: list[ForeignKey],
    ) -> None:
        kind = sa.engine.reflection.ObjectKind.TABLE
        scope = sa.engine.reflection.ObjectScope.DEFAULT
        columns = inspector.get_multi_columns(schema=schema, kind=kind, scope=scope)
        pks = inspector.get_multi_pk_constraint(schema=schema, kind=kind, scope=scope)
        uniques = inspector.get_multi_unique_constraints(schema=schema, kind=kind, scope=scope)
        indexes = inspector.get_multi_indexes(schema=schema, kind=kind, scope=scope)
        foreign = inspector.get_multi_foreign_keys(schema=schema, kind=kind, scope=scope)
        dialect = inspector.dialect
        for key, cols in columns.items():
            ref = TableRef(self.catalog_schema(schema), key[1])
            pk_info: Any = pks.get(key) or {}
            pk = tuple(pk_info.get("constrained_columns") or ())
            unique_keys = [tuple(u["column_names"]) for u in uniques.get(key, [])]
            idx: list[Index] = []
            for ix in indexes.get(key, []):
                names = tuple(n for n in ix["column_names"] if n is not None)
                if len(names) != len(ix["column_names"]) or not names:
                    continue  # expression indexes are not portable; skipped
                if ix.get("unique") and names not in unique_keys and names != pk:
                    unique_keys.append(names)
                elif not ix.get("unique"):
                    idx.append(Index(ix["name"] or f"ix_{ref.name}", names, False))
            tables[ref] = Table(
                ref=ref,
                columns=tuple(self._column(c, dialect) for c in cols),
                primary_key=pk,
                unique_keys=tuple(dict.fromkeys(unique_keys)),
                indexes=tuple(idx),
            )
            for fk in foreign.get(key, []):
                # SQLAlchemy leaves referred_schema empty for the default schema.
                parent_schema = fk.get("referred_schema") or default
                fks.append(
                    ForeignKey(
                        child=ref,
                        columns=tuple(fk["constrained_columns"]),
                        parent=TableRef(self.catalog_schema(parent_schema), fk["referred_table"]),
                        ref_columns=tuple(fk["referred_columns"]),
                        name=fk.get("name"),
                        deferrable=bool((fk.get("options") or {}).get("deferrable")),
                    )
                )

    def _column(self, info: Any, dialect: sa.Dialect) -> Column:
        satype = info["type"]
        ctype = self.special_type(satype, dialect) or generic_type(satype, dialect)
        default = info.get("default")
        autoinc = bool(info.get("autoincrement") is True) or bool(info.get("identity"))
        if default and "nextval(" in str(default):
            autoinc, default = True, None
        return Column(
            name=info["name"],
            type=ctype,
            nullable=bool(info.get("nullable", True)),
            default=str(default) if default is not None else None,
            autoincrement=autoinc,
        )

    def special_type(self, satype: Any, dialect: sa.Dialect) -> ColumnType | None:
        """Map a type only this engine has; None to fall back to the generic mapping."""
        return None


def compiled(satype: Any, dialect: sa.Dialect) -> str:
    """The type as the source engine spells it (kept for same-engine copies)."""
    try:
        return str(satype.compile(dialect=dialect))
    except Exception:
        return str(satype)


def generic_type(satype: Any, dialect: sa.Dialect) -> ColumnType:
    """Map a SQLAlchemy type to an engine-neutral ``ColumnType`` by its generic family."""
    native = compiled(satype, dialect)
    t = sa.types
    if isinstance(satype, t.Boolean):
        return ColumnType("boolean", native)
    if isinstance(satype, t.Enum):
        return ColumnType(
            "enum",
            native,
            values=tuple(satype.enums),
            length=max((len(v) for v in satype.enums), default=1),
            type_name=getattr(satype, "name", None),
            type_schema=getattr(satype, "schema", None),
        )
    if isinstance(satype, t.Integer):
        bits = (
            16
            if isinstance(satype, t.SmallInteger)
            else 64
            if isinstance(satype, t.BigInteger)
            else 32
        )
        return ColumnType("integer", native, bits=bits)
    if isinstance(satype, t.Float):
        return ColumnType("float", native)
    if isinstance(satype, t.Numeric):
        return ColumnType("decimal", native, precision=satype.precision, scale=satype.scale)
    if isinstance(satype, t.Uuid):
        return ColumnType("uuid", native)
    if isinstance(satype, t.JSON):
        return ColumnType("json", native)
    if isinstance(satype, t.ARRAY):
        item = generic_type(satype.item_type, dialect)
        return ColumnType("array", native, item=item)
    if isinstance(satype, t.Text | t.CLOB):
        return ColumnType("text", native)
    if isinstance(satype, t.String):
        return ColumnType("string", native, length=satype.length)
    if isinstance(satype, t.LargeBinary | t._Binary):
        return ColumnType("binary", native)
    if isinstance(satype, t.DateTime):
        return ColumnType("timestamptz" if satype.timezone else "timestamp", native)
    if isinstance(satype, t.Date):
        return ColumnType("date", native)
    if isinstance(satype, t.Time) and getattr(satype, "timezone", False):
        return ColumnType("other", native)  # a time with an offset has no portable form
    if isinstance(satype, t.Time):
        return ColumnType("time", native)
    if isinstance(satype, _AbstractInterval):
        return ColumnType("interval", native)
    return ColumnType("other", native)
