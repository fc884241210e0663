"""How the library tells the outside world what it is doing, without ever printing.

Stages call a ``Reporter``; the CLI supplies one that draws progress on a terminal and plain
lines elsewhere, tests and API users can pass their own or use ``NullReporter``.
"""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger("subsetter")


class Reporter(Protocol):
    """Receives progress from the pipeline."""

    def stage(self, name: str) -> None:
        """A pipeline stage starts (reflect, plan, extract, load, verify)."""

    def event(self, message: str, seconds: float | None = None) -> None:
        """Something worth a line happened."""

    def progress(self, table: str, done: int, total: int | None) -> None:
        """``done`` rows of ``table`` are through the current stage (of ``total``, if known).

        Called often (once per batch): a progress bar draws rows/s and an ETA from it.
        """

    def table_loaded(self, table: str, rows: int, seconds: float) -> None:
        """A table's rows are in the target."""

    def warning(self, message: str) -> None:
        """Something the user should know about; the run goes on."""


class NullReporter:
    """Reports nothing; logs at debug level."""

    def stage(self, name: str) -> None:
        log.debug("stage %s", name)

    def event(self, message: str, seconds: float | None = None) -> None:
        log.debug(message)

    def progress(self, table: str, done: int, total: int | None) -> None:
        pass

    def table_loaded(self, table: str, rows: int, seconds: float) -> None:
        log.debug("loaded %s: %d rows in %.3fs", table, rows, seconds)

    def warning(self, message: str) -> None:
        log.warning(message)
