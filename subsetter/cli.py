"""The ``subset`` command: parse options, call one public function, render the result.

No SQL and no rules live here. Errors become one line on stderr and an exit code (the
``exit_code`` of the error class in errors.py): 0 success, 1 error, 2 bad usage, 3 integrity
check or audit failed, 4 budget exceeded (nothing loaded), 130 interrupted.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

import subsetter
from subsetter.config import resolve_file_url
from subsetter.errors import SubsetterError

app = typer.Typer(
    name="subset",
    help="Cut a small, referentially intact subset of a database into another database.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

T = TypeVar("T")

ConfigArg = Annotated[Path, typer.Argument(help="The YAML config file.", show_default=False)]
TargetOpt = Annotated[
    str | None, typer.Option("--target", "-t", help="Name of a target in the config.")
]
TargetUrlOpt = Annotated[
    str | None, typer.Option("--target-url", help="Target database URL (overrides --target).")
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show the traceback of an error.")]


class _CliReporter:
    """Progress for people: a live status line on a terminal, plain log lines elsewhere (CI)."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.live = err.is_terminal and os.environ.get("CI", "").lower() != "true"
        self._status: Any = None

    def __enter__(self) -> _CliReporter:
        if self.live and not self.quiet:
            self._status = err.status("starting")
            self._status.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.stop()

    def _say(self, text: str, line: bool) -> None:
        if self.quiet:
            return
        if self._status is not None:
            self._status.update(text)
        if line or self._status is None:
            err.print(text, markup=False)

    def stage(self, name: str) -> None:
        self._say(name, line=self._status is None)

    def event(self, message: str, seconds: float | None = None) -> None:
        took = f" ({seconds:.2f}s)" if seconds is not None else ""
        self._say(f"  {message}{took}", line=seconds is not None)

    def table_loaded(self, table: str, rows: int, seconds: float) -> None:
        self._say(f"  loaded {table}: {rows} rows ({seconds:.2f}s)", line=True)

    def warning(self, message: str) -> None:
        err.print(f"warning: {message}", markup=False, style="yellow")


def _guarded(debug: bool, action: Callable[[], T]) -> T:
    try:
        return action()
    except SubsetterError as exc:
        if debug:
            err.print(traceback.format_exc(), markup=False)
        err.print(f"error: {exc}", markup=False, style="red")
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err.print("error: interrupted; nothing was committed to the target", style="red")
        raise typer.Exit(130) from None


def _from_cwd(url: str | None) -> str | None:
    """A file path typed in --target-url is relative to where the command runs."""
    return resolve_file_url(url, Path.cwd()) if url else None


def _load(config: Path) -> subsetter.Config:
    return subsetter.load_config(config)


@app.command()
def run(
    config: ConfigArg,
    target: TargetOpt = None,
    target_url: TargetUrlOpt = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Drop and recreate the subset's tables.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan only; move nothing.")] = False,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write a JSON report of the run here.")
    ] = None,
    keep_staging: Annotated[
        Path | None, typer.Option("--keep-staging", help="Keep the DuckDB staging file here.")
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=100, help="Rows per batch.")
    ] = 10_000,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors and warnings.")] = False,
    debug: DebugOpt = False,
) -> None:
    """Extract the subset the config describes and load it into a target."""
    options = subsetter.RunOptions(
        target=target,
        target_url=_from_cwd(target_url),
        replace=replace,
        dry_run=dry_run,
        keep_staging=str(keep_staging) if keep_staging else None,
        batch_size=batch_size,
    )

    def action() -> subsetter.RunResult:
        loaded = _load(config)
        with _CliReporter(quiet) as reporter:
            return subsetter.run(loaded, options, reporter)

    if report and not report.parent.is_dir():  # fail before moving data, not after
        err.print(f"error: --report {report}: no such folder {report.parent}", markup=False)
        raise typer.Exit(1)
    result = _guarded(debug, action)
    if report:
        try:
            report.write_text(json.dumps(result.to_dict(), indent=2, sort_keys=True) + "\n")
        except OSError as exc:
            err.print(f"error: cannot write the report {report}: {exc.strerror}", markup=False)
            raise typer.Exit(1) from None
    for note in result.type_notes:
        err.print(f"note: {note}", markup=False)
    if result.dry_run:
        out.print(result.plan.explain(), markup=False)
        out.print("dry run: no data moved", markup=False)
        return
    assert result.verification is not None
    total = sum(result.seconds.values())
    out.print(
        f"subset loaded into {result.target}: {result.total_rows} rows in "
        f"{len(result.rows)} tables, {total:.2f}s; {result.verification.describe()}",
        markup=False,
    )


class PlanFormat(str, Enum):
    """Output formats of ``subset plan``."""

    text = "text"
    json = "json"
    yaml = "yaml"


@app.command()
def plan(
    config: ConfigArg,
    target: TargetOpt = None,
    target_url: TargetUrlOpt = None,
    fmt: Annotated[
        PlanFormat, typer.Option("--format", "-f", help="text for people; json or yaml to diff.")
    ] = PlanFormat.text,
    estimate: Annotated[
        bool,
        typer.Option(
            "--estimate/--no-estimate",
            help="Estimate rows and bytes from the source's statistics (never a full scan).",
        ),
    ] = True,
    debug: DebugOpt = False,
) -> None:
    """Show what a run would copy and why: tables, sizes, relations, cycles, load order, SQL.

    With a target, also how each column whose type the target lacks will be created there.
    """
    options = subsetter.RunOptions(target=target, target_url=_from_cwd(target_url))
    made = _guarded(debug, lambda: subsetter.plan(_load(config), options, estimate=estimate))
    out.print(made.render(fmt.value), markup=False)


@app.command()
def validate(config: ConfigArg, debug: DebugOpt = False) -> None:
    """Check the config file without connecting to any database."""
    loaded = _guarded(debug, lambda: _load(config))
    out.print(
        f"{config}: valid ({len(loaded.seeds)} seeds, {len(loaded.targets)} targets)", markup=False
    )


@app.command()
def verify(
    config: ConfigArg,
    target: TargetOpt = None,
    target_url: TargetUrlOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Check that every foreign key of the subset's tables resolves in a loaded target."""
    options = subsetter.RunOptions(target=target, target_url=_from_cwd(target_url))
    result = _guarded(debug, lambda: subsetter.verify(_load(config), options))
    out.print(result.describe(), markup=False)
    if not result.ok:
        raise typer.Exit(3)


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug details.")] = False,
) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, stream=sys.stderr)


def _interrupt_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt, so cleanup (rollback, staging removal) still runs."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def main() -> Any:
    """Entry point of the ``subset`` script."""
    _interrupt_on_sigterm()
    return app()
