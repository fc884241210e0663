"""Draw a Plan's foreign-key graph as Mermaid or Graphviz DOT text (``subset graph``).

Pure: Plan in, text out. Nodes are the subset's tables, clustered by schema; seed tables are
marked, tables in a cycle are marked, passthrough tables are collapsed into one node so lookup
tables do not crowd a real schema. Edges go from child to parent, one per foreign key: thick
where children are followed, dashed where only parents are, with the cap when there is one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from subsetter.catalog import TableRef
from subsetter.plan import Plan

DIAGRAM_FORMATS = ("mermaid", "dot")
_PASSTHROUGH = "passthrough"


@dataclass(frozen=True)
class _Edge:
    child: str
    parent: str
    label: str
    follow: str
    """yes, always or no: whether children are followed through this key."""
    cyclic: bool


def render_diagram(plan: Plan, fmt: str, collapse_passthrough: bool = True) -> str:
    """The plan's graph in ``mermaid`` or ``dot``, stable: nodes and edges sorted."""
    passthrough = {s.table for s in plan.seeds if s.passthrough} if collapse_passthrough else set()
    seeds = {s.table for s in plan.seeds if not s.passthrough}
    in_cycle = {t for cycle in plan.cycles for t in cycle}
    cycle_of = {t: i for i, cycle in enumerate(plan.cycles) for t in cycle}

    def node(ref: TableRef) -> str:
        return _PASSTHROUGH if ref in passthrough else _node_id(ref)

    decisions = {r.fk: r for r in plan.relations}
    edges = set()
    for fk in plan.upstream:
        decision = decisions.get(fk)
        follow = decision.follow if decision else ("yes" if fk in plan.downstream else "no")
        label = ", ".join(fk.columns)
        if decision and decision.limit:
            label += f" (at most {decision.limit.limit} per parent)"
        if fk.child in passthrough and fk.parent in passthrough:
            continue
        cyclic = fk.child in cycle_of and cycle_of.get(fk.child) == cycle_of.get(fk.parent)
        edges.add(_Edge(node(fk.child), node(fk.parent), label, follow, cyclic))
    groups: dict[str, list[TableRef]] = {}
    for ref in sorted(plan.tables):
        if ref not in passthrough:
            groups.setdefault(ref.schema or "", []).append(ref)
    ordered = sorted(edges, key=lambda e: (e.child, e.parent, e.label))
    names = sorted(str(t) for t in passthrough)
    if fmt == "dot":
        return _dot(groups, ordered, seeds, in_cycle, names)
    return _mermaid(groups, ordered, seeds, in_cycle, names)


def _safe(text: str) -> str:
    """An identifier both Mermaid and DOT take unquoted."""
    return re.sub(r"\W", "_", text)


def _node_id(ref: TableRef) -> str:
    return _safe(f"t_{ref}")


def _mermaid(
    groups: dict[str, list[TableRef]],
    edges: list[_Edge],
    seeds: set[TableRef],
    in_cycle: set[TableRef],
    passthrough: list[str],
) -> str:
    lines = ["flowchart LR"]
    for schema, refs in sorted(groups.items()):
        indent = "  "
        if schema:
            lines.append(f'  subgraph {_safe("s_" + schema)}["{schema}"]')
            indent = "    "
        for ref in refs:
            tag = " (seed)" if ref in seeds else ""
            lines.append(f'{indent}{_node_id(ref)}["{ref.name}{tag}"]')
        if schema:
            lines.append("  end")
    if passthrough:
        lines.append(f'  {_PASSTHROUGH}[("passthrough: {", ".join(passthrough)}")]')
    for edge in edges:
        arrow = {"yes": "==>", "always": "==>", "no": "-.->"}[edge.follow]
        label = edge.label + (" [always]" if edge.follow == "always" else "")
        label += " [cycle]" if edge.cyclic else ""
        lines.append(f'  {edge.child} {arrow}|"{label}"| {edge.parent}')
    lines.append("  classDef seed fill:#d4f7d4,stroke:#2a7a2a,stroke-width:2px")
    lines.append("  classDef cycle stroke:#d9822b,stroke-width:3px,stroke-dasharray:4")
    for cls, members in (("seed", seeds), ("cycle", in_cycle)):
        ids = sorted(_node_id(r) for r in members if any(r in g for g in groups.values()))
        if ids:
            lines.append(f"  class {','.join(ids)} {cls}")
    return "\n".join(lines)


def _dot(
    groups: dict[str, list[TableRef]],
    edges: list[_Edge],
    seeds: set[TableRef],
    in_cycle: set[TableRef],
    passthrough: list[str],
) -> str:
    lines = [
        "digraph subset {",
        "  rankdir=LR;",
        '  node [shape=box, fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    for schema, refs in sorted(groups.items()):
        indent = "  "
        if schema:
            lines.append(f'  subgraph "cluster_{schema}" {{')
            lines.append(f'    label="{schema}";')
            indent = "    "
        for ref in refs:
            attrs = [f'label="{ref.name}{" (seed)" if ref in seeds else ""}"']
            if ref in seeds:
                attrs += ["style=filled", 'fillcolor="#d4f7d4"', "penwidth=2"]
            if ref in in_cycle:
                attrs += ['color="#d9822b"', "penwidth=2"]
            lines.append(f'{indent}"{_node_id(ref)}" [{", ".join(attrs)}];')
        if schema:
            lines.append("  }")
    if passthrough:
        label = "\\n".join(["passthrough:", *passthrough])
        lines.append(f'  "{_PASSTHROUGH}" [shape=cylinder, label="{label}"];')
    for edge in edges:
        attrs = [f'label="{edge.label}"']
        if edge.follow == "no":
            attrs.append("style=dashed")
        else:
            attrs.append("penwidth=2")
        if edge.cyclic:
            attrs.append('color="#d9822b"')
        lines.append(f'  "{edge.child}" -> "{edge.parent}" [{", ".join(attrs)}];')
    lines.append("}")
    return "\n".join(lines)
