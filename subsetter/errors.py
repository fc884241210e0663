"""The one exception tree of subsetter.

Every deliberate failure is a ``SubsetterError``; driver errors are wrapped where they cross the
dialect boundary, so the CLI can print one clear line and exit 1 without a traceback::

    SubsetterError
    ├── ConfigError          the YAML file is malformed or names something that does not exist
    ├── ConnectionFailed     a server is unreachable or refused the credentials
    ├── StagingError         the staging file cannot be written (disk full, file size limit, ...)
    ├── UnsupportedError     an engine or a type this version cannot handle
    ├── PlanError            no subset satisfies the config (a NOT NULL FK into an excluded table)
    ├── SourceError          a query on the source failed (e.g. a seed's WHERE is invalid SQL)
    ├── MaskError            masking failed on the data (a hook raised, a unique column collided)
    ├── TargetError          the target cannot take the subset (same as source, tables exist, ...)
    │   ├── LoadError        writing rows or constraints into the target failed
    │   └── ConfirmationNeeded  a destructive step needs --yes (the target holds other tables)
    ├── IntegrityError       the loaded target has orphan rows (exit code 3)
    └── BudgetError          the staged subset exceeds the config's budget (exit code 4)

Exit codes of the ``subset`` command: 0 success, 1 error, 2 bad usage (Typer), 3 integrity check
or audit failed, 4 budget exceeded.
"""

from __future__ import annotations


class SubsetterError(Exception):
    """Base of every error subsetter raises on purpose.

    ``transient`` is true when trying again may work (a connection slot was full, the network
    dropped, the server restarted); the pipeline retries such failures a bounded number of times.
    """

    exit_code = 1

    def __init__(self, message: str = "", *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class ConfigError(SubsetterError):
    """The config file is malformed, or names a table, column or target that does not exist."""


class ConnectionFailed(SubsetterError):
    """A database could not be reached or refused the credentials."""


class StagingError(SubsetterError):
    """The DuckDB staging file could not be written or read (its disk is full, ...)."""


class UnsupportedError(SubsetterError):
    """An engine, URL scheme or column type that subsetter cannot handle."""


class PlanError(SubsetterError):
    """The config cannot be satisfied by any subset."""


class SourceError(SubsetterError):
    """A query on the source database failed."""


class MaskError(SubsetterError):
    """A masking rule failed on the staged data; nothing reached the target."""


class TargetError(SubsetterError):
    """The target database cannot receive the subset."""


class LoadError(TargetError):
    """Writing rows, constraints or indexes into the target failed."""


class ConfirmationNeeded(TargetError):
    """A destructive step on a target that holds tables the config does not name needs --yes."""


class IntegrityError(SubsetterError):
    """The target holds rows whose foreign key finds no parent."""

    exit_code = 3


class BudgetError(SubsetterError):
    """The staged subset is larger than the config's ``budget``; nothing was loaded."""

    exit_code = 4
