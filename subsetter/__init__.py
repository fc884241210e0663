"""subsetter: cut a small, referentially intact slice of a database into another one.

The public API is what the CLI uses::

    import subsetter
    config = subsetter.load_config("prod.yml")
    print(subsetter.plan(config).render("yaml"))       # what a run would copy, and its size
    result = subsetter.run(config, subsetter.RunOptions(target="staging"))
    print(result.rows, result.verification.ok)

Errors are ``SubsetterError`` subclasses; each carries the CLI's ``exit_code``.
"""

from subsetter.audit import AuditResult, Detection, Finding, detect_personal, suggest_masks
from subsetter.catalog import Catalog, Column, ColumnType, ForeignKey, Table, TableRef
from subsetter.config import Config, config_json_schema, load_config, parse_config
from subsetter.errors import (
    BudgetError,
    ConfigError,
    ConfirmationNeeded,
    ConnectionFailed,
    IntegrityError,
    LoadError,
    MaskError,
    PlanError,
    SourceError,
    StagingError,
    SubsetterError,
    TargetError,
    UnsupportedError,
)
from subsetter.estimate import Estimates, TableEstimate
from subsetter.pipeline import (
    PlanResult,
    RunOptions,
    RunResult,
    audit,
    explain,
    failure_report,
    init_config,
    plan,
    plan_for_target,
    plan_subset,
    run,
    type_mapping,
    verify,
)
from subsetter.plan import CycleLoad, LoadPlan, Plan, RelationDecision, build_plan, plan_load
from subsetter.verify import VerifyResult

__version__ = "0.1.0"

__all__ = [
    "AuditResult",
    "BudgetError",
    "Catalog",
    "Column",
    "ColumnType",
    "Config",
    "ConfigError",
    "ConfirmationNeeded",
    "ConnectionFailed",
    "CycleLoad",
    "Detection",
    "Estimates",
    "Finding",
    "ForeignKey",
    "IntegrityError",
    "LoadError",
    "LoadPlan",
    "MaskError",
    "Plan",
    "PlanError",
    "PlanResult",
    "RelationDecision",
    "RunOptions",
    "RunResult",
    "SourceError",
    "StagingError",
    "SubsetterError",
    "Table",
    "TableEstimate",
    "TableRef",
    "TargetError",
    "UnsupportedError",
    "VerifyResult",
    "audit",
    "build_plan",
    "config_json_schema",
    "detect_personal",
    "explain",
    "failure_report",
    "init_config",
    "load_config",
    "parse_config",
    "plan",
    "plan_for_target",
    "plan_load",
    "plan_subset",
    "run",
    "suggest_masks",
    "type_mapping",
    "verify",
]
