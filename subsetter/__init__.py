"""subsetter: cut a small, referentially intact slice of a database into another one.

The public API is what the CLI uses::

    import subsetter
    config = subsetter.load_config("prod.yml")
    result = subsetter.run(config, subsetter.RunOptions(target="staging"))
    print(result.rows, result.verification.ok)
"""

from subsetter.catalog import Catalog, Column, ColumnType, ForeignKey, Table, TableRef
from subsetter.config import Config, load_config, parse_config
from subsetter.errors import (
    ConfigError,
    ConnectionFailed,
    IntegrityError,
    LoadError,
    PlanError,
    SourceError,
    SubsetterError,
    TargetError,
    UnsupportedError,
)
from subsetter.pipeline import RunOptions, RunResult, plan_subset, run, type_mapping, verify
from subsetter.plan import Plan, build_plan
from subsetter.verify import VerifyResult

__version__ = "0.1.0"

__all__ = [
    "Catalog",
    "Column",
    "ColumnType",
    "Config",
    "ConfigError",
    "ConnectionFailed",
    "ForeignKey",
    "IntegrityError",
    "LoadError",
    "Plan",
    "PlanError",
    "RunOptions",
    "RunResult",
    "SourceError",
    "SubsetterError",
    "Table",
    "TableRef",
    "TargetError",
    "UnsupportedError",
    "VerifyResult",
    "build_plan",
    "load_config",
    "parse_config",
    "plan_subset",
    "run",
    "type_mapping",
    "verify",
]
