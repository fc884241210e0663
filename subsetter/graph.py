"""The foreign-key graph on networkx, and the words the rest of the code uses about it.

Glossary (each word means one thing everywhere in subsetter):

- **seed**: rows chosen by the config (a ``where``, a ``percent`` or a ``limit`` on one table).
- **parent**: the row a foreign key points at. **child**: the row holding the foreign key.
- **upstream**: towards parents. **downstream**: towards children.
- **closure**: the smallest set of rows holding the seeds, every parent of every row in it, and
  the children of seed rows and of rows reached downstream (not of rows reached only as parents).
- **cycle**: tables that reach themselves through foreign keys (a strongly connected component,
  a self-reference included). The closure runs to a fixpoint, so cycles need no special case.
- **passthrough**: a table copied whole. **excluded**: a table never copied.
- **catalog**: what reflection learned about the source. **staging**: the DuckDB file the rows
  pass through. **plan**: the tables, relations and seed queries a run will use.

Edges go from child table to parent table, one per foreign key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import networkx as nx

from subsetter.catalog import ForeignKey, TableRef


class FkGraph:
    """Tables as nodes, foreign keys as edges from child to parent."""

    def __init__(self, tables: Iterable[TableRef], foreign_keys: Iterable[ForeignKey]) -> None:
        self._g: nx.MultiDiGraph = nx.MultiDiGraph()
        self._g.add_nodes_from(tables)
        for fk in foreign_keys:
            if fk.child in self._g and fk.parent in self._g:
                self._g.add_edge(fk.child, fk.parent, key=fk, fk=fk)

    @property
    def tables(self) -> list[TableRef]:
        return sorted(self._g.nodes)

    def parents(self, table: TableRef) -> list[ForeignKey]:
        """Foreign keys from ``table`` to its parent tables."""
        return [d["fk"] for _, _, d in self._g.out_edges(table, data=True)]

    def children(self, table: TableRef) -> list[ForeignKey]:
        """Foreign keys of child tables that point at ``table``."""
        return [d["fk"] for _, _, d in self._g.in_edges(table, data=True)]

    def upstream(self, starts: Iterable[TableRef]) -> set[TableRef]:
        """Tables reachable from ``starts`` through foreign keys to parents, starts included."""
        return self._reach(starts, self._g.successors)

    def downstream(self, starts: Iterable[TableRef]) -> set[TableRef]:
        """Tables reachable from ``starts`` through foreign keys to children, starts included."""
        return self._reach(starts, self._g.predecessors)

    @staticmethod
    def _reach(
        starts: Iterable[TableRef], step: Callable[[TableRef], Iterator[TableRef]]
    ) -> set[TableRef]:
        # One walk from all starts at once: a walk per start costs starts x reach (2,000 tables).
        found = set(starts)
        todo = list(found)
        while todo:
            for nxt in step(todo.pop()):
                if nxt not in found:
                    found.add(nxt)
                    todo.append(nxt)
        return found

    def cycles(self) -> list[tuple[TableRef, ...]]:
        """Strongly connected components that form a cycle, self-references included, sorted."""
        out = []
        for component in nx.strongly_connected_components(self._g):
            if len(component) > 1 or any(self._g.has_edge(t, t) for t in component):
                out.append(tuple(sorted(component)))
        return sorted(out)

    def load_order(self) -> list[TableRef]:
        """Parents before children; tables of one cycle together, by name. Deterministic."""
        condensed = nx.condensation(self._g)
        members = condensed.graph["mapping"]
        groups: dict[int, list[TableRef]] = {}
        for table, group in members.items():
            groups.setdefault(group, []).append(table)
        reverse = condensed.reverse(copy=True)
        order = nx.lexicographical_topological_sort(reverse, key=lambda g: min(groups[g]))
        return [t for group in order for t in sorted(groups[group])]

    def subgraph(self, tables: Iterable[TableRef]) -> FkGraph:
        """The graph restricted to ``tables``."""
        keep = set(tables)
        fks = [d["fk"] for u, v, d in self._g.edges(data=True) if u in keep and v in keep]
        return FkGraph(keep, fks)
