"""The ``subset`` command: parse options, call one public function, render the result.

No SQL and no rules live here. Errors become one line on stderr and an exit code (the
``exit_code`` of the error class in errors.py): 0 success, 1 error, 2 bad usage, 3 integrity
check or audit failed, 4 budget exceeded (nothing loaded), 130 interrupted.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import json
import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TextIO, TypeVar

import typer

import subsetter
from subsetter.audit import SAMPLE_ROWS
from subsetter.config import resolve_file_url
from subsetter.errors import SubsetterError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

app = typer.Typer(
    name="subset",
    help="Cut a small, referentially intact subset of a database into another database.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
_CI = os.environ.get("CI", "").strip().lower() == "true"


class _Output:
    """stdout or stderr: rich's Console on a terminal, plain text anywhere else.

    Under CI=true every line is plain text, even where a CI runner fakes a terminal. In a pipe,
    a file or CI nothing needs rich (no colours, no bars), and importing it costs ~20 ms of
    every command, so it is imported only for a terminal (or an audit table).
    """

    def __init__(self, stderr: bool) -> None:
        self.stderr = stderr
        self._console: Console | None = None

    @property
    def stream(self) -> TextIO:
        return sys.stderr if self.stderr else sys.stdout  # looked up late: tests swap them

    @property
    def is_terminal(self) -> bool:
        """rich's own test (TTY_COMPATIBLE, FORCE_COLOR, then isatty), without rich."""
        if _CI:
            return False
        forced = os.environ.get("TTY_COMPATIBLE", "")
        if forced in ("0", "1"):
            return forced == "1"
        color = os.environ.get("FORCE_COLOR")
        if color is not None:
            return color != ""
        try:
            return self.stream.isatty()
        except (AttributeError, ValueError):  # no isatty, or a closed file
            return False

    @property
    def console(self) -> Console:
        """rich's Console on this stream, made on first use."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(
                stderr=self.stderr,
                highlight=False,
                soft_wrap=True,
                force_terminal=False if _CI else None,
                no_color=True if _CI else None,
            )
        return self._console

    def print(
        self, text: Any, *, markup: bool = True, style: str | None = None, end: str = "\n"
    ) -> None:
        """Print ``text`` (rich markup only where ``markup`` and on a terminal)."""
        if isinstance(text, str) and not self.is_terminal:
            self.stream.write(text + end)
            self.stream.flush()
        else:
            self.console.print(text, markup=markup, style=style, end=end)

    def print_json(self, data: Any) -> None:
        """``data`` as indented JSON (highlighted on a terminal)."""
        if self.is_terminal:
            self.console.print_json(json.dumps(data))
        else:
            self.print(json.dumps(data, indent=2, ensure_ascii=False), markup=False)


err = _Output(stderr=True)
out = _Output(stderr=False)

T = TypeVar("T")

ConfigArg = Annotated[Path, typer.Argument(help="The YAML config file.", show_default=False)]
TargetOpt = Annotated[
    str | None, typer.Option("--target", "-t", help="Name of a target in the config.")
]
TargetUrlOpt = Annotated[
    str | None, typer.Option("--target-url", help="Target database URL (overrides --target).")
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show the traceback of an error.")]


def _progress_bars() -> Progress:
    """Live bars: rows, rows/s and an ETA per table (rich.progress imported only for these)."""
    from rich.progress import (
        BarColumn,
        Progress,
        ProgressColumn,
        SpinnerColumn,
        Task,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        """Rows per second of a table's task."""

        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f} rows/s" if speed else "", style="progress.data.speed")

    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}{task.fields[of]} rows"),
        RateColumn(),
        TimeRemainingColumn(),
        console=err.console,
    )


class _CliReporter:
    """Progress for people: live bars on a terminal; plain lines elsewhere (CI, pipes, files).

    Live: one bar per table of the current stage with rows, rows/s and an ETA, and a line per
    finished table. Plain: a line per stage and per table, never a control character. Quiet:
    warnings only. Verbose: also closure rounds and other details.
    """

    def __init__(self, quiet: bool = False, verbose: bool = False) -> None:
        self.quiet, self.verbose = quiet, verbose
        self.live = err.is_terminal and not _CI and not quiet
        self._bars: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._stage = ""

    def __enter__(self) -> _CliReporter:
        if self.live:
            self._bars = _progress_bars()
            self._bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bars is not None:
            self._clear_tasks()
            self._bars.stop()

    def _line(self, text: str, style: str | None = None) -> None:
        console = self._bars.console if self._bars is not None else err
        console.print(text, markup=False, style=style)

    def _clear_tasks(self) -> None:
        if self._bars is not None:
            for task in self._tasks.values():
                self._bars.remove_task(task)
        self._tasks.clear()

    def stage(self, name: str) -> None:
        self._clear_tasks()
        self._stage = name
        if not self.quiet:
            self._line(name)

    def event(self, message: str, seconds: float | None = None) -> None:
        # Timed events (a seed's rows) are worth a line; the rest (closure rounds) is detail.
        if self.quiet or (seconds is None and not self.verbose):
            return
        took = f" ({seconds:.2f}s)" if seconds is not None else ""
        self._line(f"  {message}{took}")

    def progress(self, table: str, done: int, total: int | None) -> None:
        if self._bars is None:
            return
        task = self._tasks.get(table)
        of = f" of {total:,}" if total is not None else ""
        if task is None:
            task = self._tasks[table] = self._bars.add_task(
                f"{self._stage} {table}", total=total, of=of
            )
        self._bars.update(task, completed=done, total=total, of=of)

    def table_loaded(self, table: str, rows: int, seconds: float) -> None:
        task = self._tasks.pop(table, None)
        if task is not None and self._bars is not None:
            self._bars.remove_task(task)
        if not self.quiet:
            rate = f", {rows / seconds:,.0f} rows/s" if seconds > 0 and rows else ""
            self._line(f"  loaded {table}: {rows} rows ({seconds:.2f}s{rate})")

    def warning(self, message: str) -> None:
        self._line(f"warning: {message}", style="yellow")


def _guarded(debug: bool, action: Callable[[], T]) -> T:
    """Run ``action``; a SubsetterError becomes one line on stderr and its exit code."""
    try:
        return action()
    except SubsetterError as exc:
        if debug:
            err.print(traceback.format_exc(), markup=False)
        err.print(f"error: {exc}", markup=False, style="red")
        stop = typer.Exit(exc.exit_code)
        stop.subsetter_error = exc  # type: ignore[attr-defined]
        raise stop from None
    except KeyboardInterrupt as exc:
        err.print("error: interrupted; nothing was committed to the target", style="red")
        stop = typer.Exit(130)
        stop.subsetter_error = exc  # type: ignore[attr-defined]
        raise stop from None


def _emit(text: str, path: Path | None) -> bool:
    """Print ``text``, or write it to ``path`` when one is given (then return True)."""
    if path is None:
        out.print(text, markup=False, end="")
        return False
    try:
        path.write_text(text)
    except OSError as exc:
        err.print(f"error: cannot write {path}: {exc.strerror}", markup=False)
        raise typer.Exit(1) from None
    return True


def _write_report(path: Path, document: dict[str, Any]) -> None:
    try:
        path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    except OSError as exc:
        err.print(f"error: cannot write the report {path}: {exc.strerror}", markup=False)
        raise typer.Exit(1) from None


def _from_cwd(url: str | None) -> str | None:
    """A file path typed in --target-url is relative to where the command runs."""
    return resolve_file_url(url, Path.cwd()) if url else None


def _load(config: Path) -> subsetter.Config:
    return subsetter.load_config(config)


class LoadModeOpt(Enum):
    create = "create"
    replace = "replace"
    truncate = "truncate"
    append = "append"


class OnConflictOpt(Enum):
    error = "error"
    skip = "skip"
    update = "update"


@app.command()
def run(
    config: ConfigArg,
    target: TargetOpt = None,
    target_url: TargetUrlOpt = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Drop and recreate the subset's tables.")
    ] = False,
    mode: Annotated[
        LoadModeOpt | None,
        typer.Option(
            "--mode",
            help="create | replace | truncate | append (overrides the target's mode).",
        ),
    ] = None,
    on_conflict: Annotated[
        OnConflictOpt | None,
        typer.Option("--on-conflict", help="append only: error | skip | update."),
    ] = None,
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
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also closure rounds and debug logs.")
    ] = False,
    allow_random_masks: Annotated[
        bool,
        typer.Option(
            "--allow-random-masks",
            help="Without a mask_key, mask with a random key (output differs on every run).",
        ),
    ] = False,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes",
            "-y",
            help="Replace or truncate even when the target holds tables the config does not "
            "name (asked on a terminal, refused elsewhere without this flag).",
        ),
    ] = False,
    debug: DebugOpt = False,
) -> None:
    """Extract the subset the config describes, mask it, and load it into a target.

    Exit codes: 0 loaded and verified, 1 error, 2 bad usage, 3 integrity check failed,
    4 over the config's budget (nothing loaded).
    """
    options = subsetter.RunOptions(
        target=target,
        target_url=_from_cwd(target_url),
        replace=replace,
        mode=mode.value if mode else None,
        on_conflict=on_conflict.value if on_conflict else None,
        dry_run=dry_run,
        keep_staging=str(keep_staging) if keep_staging else None,
        batch_size=batch_size,
        allow_random_masks=allow_random_masks,
        yes=yes,
    )

    if verbose:
        logging.getLogger("subsetter").setLevel(logging.DEBUG)
    loaded: subsetter.Config | None = None

    def action() -> subsetter.RunResult:
        nonlocal loaded
        loaded = _load(config)
        try:
            with _CliReporter(quiet, verbose) as reporter:
                return subsetter.run(loaded, options, reporter)
        except subsetter.ConfirmationNeeded as asked:
            # Only a person at a terminal can answer; CI and cron get the error and its --yes hint.
            if not sys.stdin.isatty() or not typer.confirm(f"{asked}\nContinue?", err=True):
                raise
        with _CliReporter(quiet, verbose) as reporter:
            return subsetter.run(loaded, dataclasses.replace(options, yes=True), reporter)

    if report and not report.parent.is_dir():  # fail before moving data, not after
        err.print(f"error: --report {report}: no such folder {report.parent}", markup=False)
        raise typer.Exit(1)
    try:
        result = _guarded(debug, action)
    except typer.Exit as stop:
        if report:  # CI reads why the run stopped from the same file
            cause = getattr(stop, "subsetter_error", None) or RuntimeError("failed")
            _write_report(report, subsetter.failure_report(loaded, cause, stop.exit_code))
        raise
    if report:
        _write_report(report, result.to_dict())
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


class GraphFormat(str, Enum):
    """Output formats of ``subset graph``."""

    mermaid = "mermaid"
    dot = "dot"


@app.command()
def graph(
    config: ConfigArg,
    fmt: Annotated[
        GraphFormat,
        typer.Option("--format", "-f", help="mermaid (Markdown, GitHub) or dot (Graphviz)."),
    ] = GraphFormat.mermaid,
    collapse: Annotated[
        bool,
        typer.Option(
            "--collapse-passthrough/--expand-passthrough",
            help="Draw passthrough tables as one node.",
        ),
    ] = True,
    debug: DebugOpt = False,
) -> None:
    """Draw the subset's foreign-key graph: seeds, followed and unfollowed relations, cycles.

    Edges go from child to parent; thick ones are followed to children, dashed ones only to
    parents. Tables are clustered by schema.
    """
    made = _guarded(debug, lambda: subsetter.plan(_load(config), estimate=False))
    out.print(made.diagram(fmt.value, collapse), markup=False)


@app.command()
def explain(
    config: ConfigArg,
    table: Annotated[str, typer.Argument(help='The row\'s table: "table" or "schema.table".')],
    key: Annotated[
        list[str], typer.Argument(help="The row's primary key value(s), in key column order.")
    ],
    staging: Annotated[
        Path,
        typer.Option(
            "--staging", "-s", help="Staging file kept by subset run --keep-staging FILE."
        ),
    ],
    debug: DebugOpt = False,
) -> None:
    """Say why a row is in the subset: the chain of relations from a seed row to it."""
    steps = _guarded(debug, lambda: subsetter.explain(_load(config), staging, table, key))
    for i, step in enumerate(steps):
        out.print(("  " * i + "-> " if i else "") + str(step), markup=False)


@app.command()
def init(
    source: Annotated[str, typer.Option("--source", help="URL of the source database.")],
    schemas: Annotated[
        list[str] | None, typer.Option("--schema", help="A schema to read (repeatable).")
    ] = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the config here, not to stdout.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite --out if it exists.")] = False,
    debug: DebugOpt = False,
) -> None:
    """Write a commented starter config from the source: seed, passthrough and mask ideas."""
    if out_file is not None and out_file.exists() and not force:
        err.print(f"error: {out_file} exists; pass --force to overwrite it", markup=False)
        raise typer.Exit(1)
    folder = out_file.parent if out_file is not None else Path.cwd()
    text = _guarded(debug, lambda: subsetter.init_config(source, schemas, folder))
    if _emit(text, out_file):
        err.print(f"wrote {out_file}; next: subset plan {out_file}", markup=False)


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


@app.command()
def schema(
    out_file: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Print the JSON Schema of the config file, for editors (yaml-language-server)."""
    _emit(json.dumps(subsetter.config_json_schema(), indent=2, sort_keys=True) + "\n", out_file)


@app.command()
def audit(
    config: ConfigArg,
    fail_on_unmasked: Annotated[
        bool,
        typer.Option(
            "--fail-on-unmasked", help="Exit 3 when a personal-looking column has no mask."
        ),
    ] = False,
    output_format: Annotated[
        str, typer.Option("--format", help="table or json.", case_sensitive=False)
    ] = "table",
    sample_rows: Annotated[
        int, typer.Option("--sample-rows", min=1, help="Rows read per table (LIMIT).")
    ] = SAMPLE_ROWS,
    debug: DebugOpt = False,
) -> None:
    """List source columns that look personal and have no mask (and no keep) in the config."""
    if output_format not in ("table", "json"):
        err.print(f"error: --format {output_format}: use table or json", markup=False)
        raise typer.Exit(2)
    result = _guarded(debug, lambda: subsetter.audit(_load(config), sample_rows))
    if output_format == "json":
        out.print_json(result.to_dict())
    else:
        _print_audit(result)
    if fail_on_unmasked and result.unmasked:
        raise typer.Exit(3)


def _print_audit(result: subsetter.AuditResult) -> None:
    from rich.table import Table

    unmasked = result.unmasked
    if unmasked:
        table = Table("column", "looks like", "why", "suggested mask", box=None, pad_edge=False)
        for f in unmasked:
            table.add_row(f.label, f.category, f.reason, f.suggestion)
        out.print(table)
    covered = len(result.findings) - len(unmasked)
    out.print(
        f"{result.source}: {len(result.findings)} personal-looking column(s) in "
        f"{result.tables} tables; {covered} masked or kept, {len(unmasked)} unmasked",
        markup=False,
    )


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


def main() -> NoReturn:
    """Entry point of the ``subset`` script and of ``python -m subsetter``."""
    _interrupt_on_sigterm()
    try:
        app()
    except SystemExit as stop:
        _exit_now(stop.code)
    _exit_now(0)


def _exit_now(code: Any) -> NoReturn:
    """End the process as soon as the command is done, without the interpreter's teardown.

    Tearing down the ~900 modules a command imports (SQLAlchemy, networkx, psycopg, DuckDB,
    pyarrow, pydantic...) took 60-120 ms after every command, a tenth of a small subset's run,
    with nothing left to do: connections and staging are closed and reports written by then.
    The exit handlers still run (they flush the log), then stdout and stderr are flushed.
    """
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"): printed, exit status 1
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe: nothing more can be shown
            stream.flush()
    os._exit(code)
