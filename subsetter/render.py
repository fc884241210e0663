"""Serialise a Plan (and its size estimates) as text, JSON or YAML for review.

``plan_document`` turns the Plan into plain data, one fixed shape for every format: tables in
load order, each with why it is in and its expected size; seeds with their SQL; the relations
followed; cycles and how they are loaded; warnings. Lists are sorted (or in load order) and
keys keep one order, so two plans of the same config diff line by line in a pull request.
``render_plan`` picks the format.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from subsetter.estimate import Estimates
from subsetter.plan import Plan, RelationDecision

FORMATS = ("text", "json", "yaml")
CYCLE_LOADING = "rows followed to a fixpoint; foreign keys added after every row is loaded"


def plan_document(
    plan: Plan, estimates: Estimates | None = None, type_notes: list[str] | None = None
) -> dict[str, Any]:
    """The plan as plain data (str, int, float, bool, None, lists, dicts), stable and sorted."""
    tables = []
    for order, ref in enumerate(plan.tables, start=1):
        entry: dict[str, Any] = {
            "table": str(ref),
            "load_order": order,
            "why": list(plan.reasons.get(ref, [])),
        }
        est = estimates.tables.get(ref) if estimates else None
        if est is not None:
            entry["estimate"] = {
                "rows": est.rows,
                "bytes": est.bytes,
                "source_rows": est.source.rows,
                "source_rows_at_least": est.source.at_least,
                "percent_of_source": round(est.percent, 1),
                "path": [str(t) for t in est.path],
            }
        tables.append(entry)
    seeds = []
    for i, seed in enumerate(plan.seeds):
        item: dict[str, Any] = {
            "label": seed.label,
            "table": str(seed.table),
            "kind": "passthrough" if seed.passthrough else "seed",
            "children": seed.children,
            "where": seed.where,
            "percent": seed.percent,
            "limit": seed.limit,
            "sql": seed.sql,
        }
        if estimates:
            item["estimated_rows"] = estimates.seed_rows[i]
        seeds.append(item)
    doc: dict[str, Any] = {
        "tables": tables,
        "seeds": seeds,
        "relations": {
            "upstream": sorted(str(fk) for fk in plan.upstream),
            "downstream": [_relation(r) for r in sorted(plan.relations, key=lambda r: str(r.fk))],
            "max_depth": plan.max_depth,
            "nulled": sorted(str(fk) for fk in plan.nulled),
        },
        "cycles": cycle_entries(plan),
        "load_order": [str(t) for t in plan.tables],
        "excluded": [str(t) for t in plan.excluded],
        "warnings": list(estimates.warnings) if estimates else [],
    }
    if estimates:
        doc["estimate"] = {"rows": estimates.total_rows, "bytes": estimates.total_bytes}
    if type_notes is not None:
        doc["type_mapping"] = list(type_notes)
    if plan.load is not None:
        doc["load"] = load_entry(plan)
    return doc


def load_entry(plan: Plan) -> dict[str, Any]:
    """The target's load mode, conflict handling and insertion order (plan.load must be set)."""
    assert plan.load is not None
    how = plan.load
    return {"mode": how.mode, "on_conflict": how.on_conflict, "order": [str(t) for t in how.order]}


def cycle_entries(plan: Plan) -> list[dict[str, Any]]:
    """Each cycle and how it is loaded: its strategy once the target is known."""
    if plan.load is None:
        return [
            {"tables": [str(t) for t in cycle], "loading": CYCLE_LOADING} for cycle in plan.cycles
        ]
    return [
        {
            "tables": [str(t) for t in c.tables],
            "loading": c.reason,
            "strategy": c.strategy,
            "nulled": [str(fk) for fk in c.nulled],
            "deferred": [str(fk) for fk in c.deferred],
        }
        for c in plan.load.cycles
    ]


def _relation(decision: RelationDecision) -> dict[str, Any]:
    limit = decision.limit
    return {
        "relation": str(decision.fk),
        "follow": decision.follow,
        "reason": decision.reason,
        "limit_per_parent": limit.limit if limit else None,
        "order_by": limit.order_by if limit else None,
        "text": decision.describe(),
    }


def render_plan(doc: dict[str, Any], fmt: str) -> str:
    """``doc`` (from ``plan_document``) as ``text``, ``json`` or ``yaml``."""
    if fmt == "json":
        return json.dumps(doc, indent=2)
    if fmt == "yaml":
        return str(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)).rstrip()
    return plan_text(doc)


def human_bytes(n: int) -> str:
    """``1234567`` -> ``1.2 MB``: decimal units, as disk tools print them."""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def plan_text(doc: dict[str, Any]) -> str:
    """The plan for people: sections, one line per table, seed SQL indented."""
    lines = ["Tables (load order, parents first):"]
    for table in doc["tables"]:
        line = f"  {table['table']}: {'; '.join(table['why'])}"
        est = table.get("estimate")
        if est:
            of = f"{'>=' if est['source_rows_at_least'] else ''}{est['source_rows']}"
            line += (
                f"  [~{est['rows']} of {of} rows ({est['percent_of_source']:g}%), "
                f"~{human_bytes(est['bytes'])}]"
            )
        lines.append(line)
    lines.append("Seeds:")
    for seed in doc["seeds"]:
        kids = "with children" if seed["children"] else "parents only"
        rows = f", ~{seed['estimated_rows']} rows" if "estimated_rows" in seed else ""
        lines.append(f"  {seed['label']} ({kids}{rows}):\n    {seed['sql']}")
    relations = doc["relations"]
    lines.append("Followed upstream (child row -> its parent, always):")
    lines += [f"  {fk}" for fk in relations["upstream"]] or ["  (none)"]
    depth = "unlimited" if relations["max_depth"] is None else relations["max_depth"]
    lines.append(f"Followed downstream (parent row -> its children; max_depth {depth}):")
    lines += [f"  {r['text']}" for r in relations["downstream"]] or ["  (none)"]
    if relations["nulled"]:
        lines.append("Written as NULL (the parent table is excluded):")
        lines += [f"  {fk}" for fk in relations["nulled"]]
    if "load" in doc:
        load = doc["load"]
        conflict = f", on_conflict {load['on_conflict']}" if load["mode"] == "append" else ""
        lines.append(f"Load into the target (mode {load['mode']}{conflict}), in this order:")
        lines.append("  " + ", ".join(load["order"]))
        lines.append("Cycles (followed to a fixpoint) and how each is loaded:")
        for c in doc["cycles"]:
            line = f"  {' <-> '.join(c['tables'])}: {c['strategy']} ({c['loading']})"
            if c["nulled"]:
                line += "; NULL, then UPDATE: " + ", ".join(c["nulled"])
            lines.append(line)
        lines += [] if doc["cycles"] else ["  (none)"]
    else:
        lines.append("Cycles (followed to a fixpoint; constraints are added after loading):")
        lines += ["  " + " <-> ".join(c["tables"]) for c in doc["cycles"]] or ["  (none)"]
    if doc["excluded"]:
        lines.append("Excluded: " + ", ".join(doc["excluded"]))
    if "estimate" in doc:
        total = doc["estimate"]
        lines.append(f"Estimated subset: ~{total['rows']} rows, ~{human_bytes(total['bytes'])}")
    if doc["warnings"]:
        lines.append("Warnings:")
        lines += [f"  {w}" for w in doc["warnings"]]
    if "type_mapping" in doc:
        lines.append("Type mapping on the target:")
        lines += [f"  {n}" for n in doc["type_mapping"]] or ["  (every column keeps its type)"]
    return "\n".join(lines)
