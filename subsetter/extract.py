"""Stage 3: run the plan on the source and compute the closure in staging, to a fixpoint.

Round 0 stages the seed rows. Each later round (1) fetches the parents of the rows the previous
round added that are not staged yet, and (2) fetches the children of rows that started pulling
children in the previous round, along the plan's downstream foreign keys. Rows reached only as
parents never pull children, except through a relation the config marks ``follow: always``.
The loop ends when a round adds nothing: cycles end there too, because a row is staged once and
each row's parents and children are asked for once.

A relation with a ``limit`` fetches at most that many children per parent row: the source ranks
the children of the batch's parent keys with ``ROW_NUMBER() OVER (PARTITION BY key ORDER BY
...)`` (or the dialect's faster form) and only the first ones travel.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from subsetter.catalog import Catalog, ColumnType, ForeignKey, TableRef
from subsetter.dialects import Dialect
from subsetter.dialects.base import ArrowUnfit
from subsetter.errors import IntegrityError, SourceError, SubsetterError
from subsetter.plan import ChildLimit, Plan
from subsetter.reporting import Reporter
from subsetter.staging import Staging

Row = tuple[Any, ...]


@dataclass
class ExtractStats:
    """What extraction did: rounds, queries, and warnings for the report."""

    rounds: int = 0
    queries: int = 0
    warnings: list[str] = field(default_factory=list)


class _SourceReader:
    """Runs key-batched SELECTs on the snapshot connection and stages what they return."""

    def __init__(
        self, dialect: Dialect, conn: Any, catalog: Catalog, staging: Staging, reporter: Reporter
    ) -> None:
        self.dialect, self.conn, self.catalog, self.staging = dialect, conn, catalog, staging
        self.reporter = reporter
        self.queries = 0
        self.staged: dict[TableRef, int] = {}
        self._arrow: dict[TableRef, bool] = {}

    def _use_arrow(self, ref: TableRef) -> bool:
        """Whether rows of ``ref`` can come as Arrow batches, with no Python object per value.

        Only for tables with a key: should a value not parse (``ArrowUnfit``), the query is
        run again through the row path, and only a key tells the rows staged twice apart.
        """
        if ref not in self._arrow:
            table = self.catalog.table(ref)
            types = [c.type for c in table.columns]
            converters = [self.dialect.source_converter(t) for t in types]
            self._arrow[ref] = table.has_key and self.dialect.arrow_fits(types, converters)
        return self._arrow[ref]

    def _read(self, table: TableRef, rows: int) -> None:
        """Count rows read from the source, for the progress of the extract stage."""
        self.staged[table] = self.staged.get(table, 0) + rows
        self.reporter.progress(str(table), self.staged[table], None)

    def run_seed(self, table: TableRef, sql: str, down: bool) -> int:
        return self._stage(table, sql, [], gen=0, down=down, what=f"the seed on {table}")

    def fetch_by_keys(
        self,
        table: TableRef,
        columns: Sequence[str],
        keys: pa.RecordBatch,
        gen: int,
        down: bool,
        *,
        depth: int = 0,
        condition: str | None = None,
        limit: ChildLimit | None = None,
    ) -> int:
        """Stage the rows of ``table`` whose ``columns`` match one of ``keys`` (one query).

        ``condition`` (a polymorphic key's) must hold too; ``limit`` keeps the first N rows per
        key value.
        """
        spec = self.catalog.table(table)
        types: list[ColumnType] = [spec.column(c).type for c in columns]
        if limit is None:
            where = self.dialect.key_filter_sql(columns, keys.num_rows, types)
            if condition:
                where = f"{where} AND ({condition})"
            sql = f"{self.dialect.select_sql(spec)} WHERE {where}"
        else:
            order = limit.order_by or self.dialect.columns_sql(spec.identity)
            order += f", {self.dialect.columns_sql(spec.identity)}"  # ties break by key
            sql = self.dialect.capped_select_sql(
                spec, columns, keys.num_rows, types, condition, order, limit.limit
            )
        params = self.dialect.key_params(keys, types)
        return self._stage(table, sql, params, gen, down, f"reading {table}", depth)

    def _stage(
        self,
        table: TableRef,
        sql: str,
        params: Sequence[Any],
        gen: int,
        down: bool,
        what: str,
        depth: int = 0,
    ) -> int:
        self.queries += 1
        added = 0
        try:
            if self._use_arrow(table):
                schema = self.staging.arrow_schema(table)
                try:
                    for batch in self.dialect.stream_arrow(self.conn, sql, params, schema):
                        added += self.staging.add_arrow(
                            table, batch, gen, down, self.queries, depth
                        )
                        self._read(table, batch.num_rows)
                    return added
                except ArrowUnfit:
                    self._arrow[table] = False  # this table reads through rows from now on
            for rows in self.dialect.stream(self.conn, sql, params, self.staging.batch_size):
                added += self.staging.add_rows(
                    table, rows, gen, down, fetch=self.queries, depth=depth
                )
                self._read(table, len(rows))
        except SubsetterError:
            raise
        except Exception as exc:
            if not self.dialect.is_driver_error(exc):
                raise
            raise SourceError(
                f"{what} failed on the source: {self.dialect.wrap_error(exc)}\n  SQL: {sql[:500]}",
                transient=self.dialect.is_transient(exc),
            ) from None
        return added


def extract(
    plan: Plan,
    catalog: Catalog,
    dialect: Dialect,
    conn: Any,
    staging: Staging,
    reporter: Reporter,
) -> ExtractStats:
    """Stage the closure of the plan's seeds, reading the source inside its snapshot."""
    stats = ExtractStats()
    for ref in plan.tables:
        table = catalog.table(ref)
        staging.create(table, [dialect.source_converter(c.type) for c in table.columns])
    reader = _SourceReader(dialect, conn, catalog, staging, reporter)
    for seed in plan.seeds:
        started = time.perf_counter()
        added = reader.run_seed(seed.table, seed.sql, seed.children)
        reporter.event(f"{seed.label}: {added} rows", seconds=time.perf_counter() - started)

    up_by_child: dict[TableRef, list[ForeignKey]] = {}
    for fk in plan.upstream:
        up_by_child.setdefault(fk.child, []).append(fk)
    down_by_parent: dict[TableRef, list[ForeignKey]] = {}
    for fk in plan.downstream:
        down_by_parent.setdefault(fk.parent, []).append(fk)

    always = set(plan.always)
    gen = 0
    while True:
        added_tables, down_tables = staging.tables_with_rows(gen)
        if not added_tables and not down_tables:
            break
        for ref in added_tables:
            for fk in up_by_child.get(ref, []):
                size = dialect.keys_per_query(len(fk.columns))
                for keys in staging.missing_parent_keys(fk, gen, size):
                    reader.fetch_by_keys(fk.parent, fk.ref_columns, keys, gen + 1, down=False)
        for ref in dict.fromkeys(down_tables + [t for t in added_tables if t in down_by_parent]):
            for fk in down_by_parent.get(ref, []):
                if ref not in down_tables and fk not in always:
                    continue
                size = dialect.keys_per_query(len(fk.columns))
                pulling = staging.keys_pulling_children(fk, gen, size, fk in always, plan.max_depth)
                for depth, keys in pulling:
                    reader.fetch_by_keys(
                        fk.child, fk.columns, keys, gen + 1, down=True, depth=depth + 1,
                        condition=fk.condition, limit=plan.limits.get(fk),
                    )  # fmt: skip
        gen += 1
        reporter.event(f"closure round {gen} done")
    stats.rounds = gen
    stats.queries = reader.queries
    _settle_dangling_keys(plan, catalog, staging, stats)
    for fk in plan.nulled:
        nullable = [c for c in fk.columns if catalog.table(fk.child).column(c).nullable]
        staging.null_columns(fk.child, nullable)
    return stats


def _settle_dangling_keys(
    plan: Plan, catalog: Catalog, staging: Staging, stats: ExtractStats
) -> None:
    """Keys whose parent row does not exist in the source: NULL them, or fail if NOT NULL.

    Declared foreign keys cannot dangle, but virtual ones (and unenforced MySQL ones) can.
    """
    for fk in plan.upstream:
        missing = staging.unresolved(fk)
        if not missing:
            continue
        child = catalog.table(fk.child)
        nullable = [c for c in fk.columns if child.column(c).nullable]
        if not nullable:
            raise IntegrityError(
                f"{missing} row(s) of {fk.child} reference rows of {fk.parent} that do not exist "
                f"in the source, through {fk}; the columns are NOT NULL, so the rows cannot be "
                "copied intact. Fix the data, or remove that virtual foreign key."
            )
        staging.null_columns(fk.child, nullable, only_unresolved=fk)
        stats.warnings.append(
            f"{missing} row(s) of {fk.child} point at missing rows of {fk.parent} through {fk}: "
            "written as NULL"
        )
