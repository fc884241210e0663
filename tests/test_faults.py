"""Faults injected mid-run on PostgreSQL and MariaDB: each leaves no trace but one clear error.

For every fault: the run fails (exit != 0) with one message naming what failed, the target
holds nothing of the run (PostgreSQL loads in one transaction; MariaDB drops its shadow tables),
the staging file is gone and the source is unchanged. A failed ``--replace`` leaves the
previous subset exactly as it was (MariaDB: the new tables are shadow tables until one RENAME
TABLE swaps them in). A lost connection is retried a bounded
number of times (a new snapshot for the source, the staged rows again for the target), and a
fault that happens once is survived, with the retry in the output.
"""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pymysql
import pytest

import subsetter
from subsetter.staging import _is_storage_error
from tests import oracle
from tests.conftest import Backend
from tests.reliability import Hook, files_in, fingerprint, kill_sessions, tables_of

pytestmark = pytest.mark.server

SERVERS = ["postgres", "mysql"]
CONFIG = "source: {{url: '{url}'}}\nseeds: [{{table: customer, where: 'id <= 40'}}]\n"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def staging_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder staging files go to during the test (to prove they are removed)."""
    folder = tmp_path / "staging"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def config_for(source: Backend, tmp_path: Path) -> subsetter.Config:
    return subsetter.parse_config(CONFIG.format(url=source.url), tmp_path / "c.yml", {})


def target_with_bystander(make_backend: Callable[[str], Backend], engine: str) -> Backend:
    target = make_backend(engine)
    target.execute("CREATE TABLE bystander (x INTEGER)")
    return target


KILLS = {
    # where: (hook moment, error class, words of the message, words of each retry warning)
    "target": ("on_loaded", subsetter.LoadError, ("into", "lost its connection",
               "nothing was committed"), "loading again"),
    "source": ("on_seed", subsetter.SourceError, ("failed on the source",), "extracting again"),
}  # fmt: skip


@pytest.mark.parametrize("every", [False, True], ids=["once", "always"])
@pytest.mark.parametrize("where", ["target", "source"], ids=["mid-load", "mid-extract"])
@pytest.mark.parametrize("engine", SERVERS)
def test_connection_killed(
    engine: str,
    where: str,
    every: bool,
    demo_on: Callable[[str], Backend],
    make_backend: Callable[[str], Backend],
    staging_dir: Path,
    tmp_path: Path,
) -> None:
    """The target's session killed mid-load, or the source's mid-extract: once, or every time."""
    moment, error, words, again = KILLS[where]
    source = demo_on(engine)
    before = fingerprint(source)
    target = target_with_bystander(make_backend, engine)
    victim = target if where == "target" else source
    kills: list[int] = []
    hook = Hook(**{moment: lambda n: kills.append(kill_sessions(victim)) if every or n == 0 else 0})
    options = subsetter.RunOptions(target_url=target.url)
    if every:
        with pytest.raises(error) as failed:
            subsetter.run(config_for(source, tmp_path), options, hook)
        message = str(failed.value)
        assert all(w in message for w in words) and "gave up after 3 attempts" in message, message
        assert tables_of(target) == {"bystander"}, "no half-loaded table"
        assert len(hook.warnings) == 2 and all(again in w for w in hook.warnings)
    else:
        result = subsetter.run(config_for(source, tmp_path), options, hook)
        assert result.verification is not None and result.verification.ok
        assert result.rows["customer"] == 40
        oracle.assert_subset_of(source, target, list(result.rows))
        assert len(hook.warnings) == 1 and f"{again} in" in hook.warnings[0]
    # Each attempt's first fault lands; where tables loaded while the source was read
    # (PostgreSQL), their reports come together and the later ones find no session left.
    assert kills and kills[0] >= 1, "the fault was injected"
    assert sum(1 for k in kills if k) == (3 if every else 1), kills
    assert files_in(staging_dir) == []
    assert fingerprint(source) == before


def invalid_json_source(folder: Path) -> Path:
    """A SQLite source whose `child.payload` (JSON) holds one value that is not JSON.

    SQLite stores it; MariaDB's JSON column (a CHECK json_valid constraint) and PostgreSQL's
    JSONB refuse that row, after `parent` has loaded.
    """
    path = folder / "json.sqlite"
    conn = sqlite3.connect(path)
    with conn:
        conn.executescript(
            """
            CREATE TABLE parent (id INTEGER PRIMARY KEY, name VARCHAR(20) NOT NULL);
            CREATE TABLE child (
                id INTEGER PRIMARY KEY,
                parent_id INTEGER NOT NULL REFERENCES parent (id),
                payload JSON
            );
            INSERT INTO parent VALUES (1, 'one'), (2, 'two');
            INSERT INTO child VALUES (1, 1, '{"ok": true}'), (2, 2, 'not json {');
            """
        )
    conn.close()
    return path


@pytest.mark.parametrize("engine", SERVERS)
def test_row_rejected_by_the_target(
    engine: str, make_backend: Callable[[str], Backend], staging_dir: Path, tmp_path: Path
) -> None:
    path = invalid_json_source(tmp_path)
    before = path.read_bytes()
    target = target_with_bystander(make_backend, engine)
    config = subsetter.parse_config(
        f"source: {{url: 'sqlite:///{path}'}}\nseeds: [{{table: parent}}]\n", tmp_path / "c.yml", {}
    )
    hook = Hook()
    with pytest.raises(subsetter.LoadError) as failed:
        subsetter.run(config, subsetter.RunOptions(target_url=target.url), hook)
    message = str(failed.value)
    assert "loading table child into" in message and "failed" in message, message
    assert "nothing was committed" in message
    assert hook.warnings == [], "a refused row is not retried"
    assert tables_of(target) == {"bystander"}
    assert files_in(staging_dir) == []
    assert path.read_bytes() == before


# ---------------------------------------------------------------- a failed replace keeps the old


def previous_subset(make_backend: Callable[[str], Backend], engine: str, source: Backend,
                    tmp_path: Path) -> Backend:  # fmt: skip
    """A target holding a bystander table and an earlier subset (customers 1-20)."""
    target = target_with_bystander(make_backend, engine)
    config = subsetter.parse_config(
        f"source: {{url: '{source.url}'}}\nseeds: [{{table: customer, where: 'id <= 20'}}]\n",
        tmp_path / "old.yml",
        {},
    )
    subsetter.run(config, subsetter.RunOptions(target_url=target.url))
    return target


def target_state(db: Backend) -> tuple[dict[str, str], set[tuple[str, ...]]]:
    """Every row of every table, and the foreign keys: which table each points at."""
    keys: set[tuple[str, ...]] = set()
    if db.name == "mysql":
        keys = {tuple(r) for r in db.query(
            "SELECT constraint_name, table_name, referenced_table_name "
            "FROM information_schema.referential_constraints WHERE constraint_schema = DATABASE()"
        )}  # fmt: skip
    elif db.name == "postgres":
        keys = {tuple(r) for r in db.query(
            "SELECT conname, conrelid::regclass::text, confrelid::regclass::text "
            "FROM pg_constraint WHERE contype = 'f'"
        )}  # fmt: skip
    return fingerprint(db), keys


@pytest.mark.parametrize("engine", SERVERS)
def test_replace_killed_mid_load_keeps_the_previous_tables(
    engine: str,
    demo_on: Callable[[str], Backend],
    make_backend: Callable[[str], Backend],
    staging_dir: Path,
    tmp_path: Path,
) -> None:
    """--replace whose target session is killed on every attempt: the old subset stays whole.

    MariaDB commits DDL, so the new tables are loaded as shadow tables and swapped in by one
    RENAME TABLE; until then the previous tables are untouched.
    """
    source = demo_on(engine)
    target = previous_subset(make_backend, engine, source, tmp_path)
    before = target_state(target)
    kills: list[int] = []
    hook = Hook(on_loaded=lambda n: kills.append(kill_sessions(target)))
    options = subsetter.RunOptions(target_url=target.url, replace=True, yes=True)
    with pytest.raises(subsetter.LoadError) as failed:
        subsetter.run(config_for(source, tmp_path), options, hook)
    message = str(failed.value)
    assert "lost its connection" in message and "nothing was committed" in message, message
    # Every attempt is killed: the run gives up after its 3 attempts, retrying twice. How many
    # kills land varies with timing (a retry's fallback load may open another session).
    assert kills and kills[0] >= 1, "the fault was injected"
    assert "gave up after 3 attempts" in message, message
    assert len(hook.warnings) == 2, hook.warnings
    assert sum(1 for k in kills if k) >= 3, kills
    assert target_state(target) == before, "the previous subset is exactly as it was"
    assert not any(t.startswith("_subsetter") for t in tables_of(target)), tables_of(target)
    assert files_in(staging_dir) == []
    # And a replace that is not disturbed swaps the new subset in, keys pointing at it.
    result = subsetter.run(config_for(source, tmp_path), options)
    assert result.rows["customer"] == 40 and oracle.count(target, "customer") == 40
    assert tables_of(target) == before_tables(before) | {"bystander"}
    after = target_state(target)[1]
    assert {k[1:] for k in after} == {k[1:] for k in before[1]}, "keys between the same tables"


def test_replace_keeps_other_tables_keys_on_the_subset(
    demo_on: Callable[[str], Backend], make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    """A table outside the config referencing a replaced table still references it after.

    MariaDB moves such a key with its parent's RENAME (to the old table, then dropped): the
    swap points it back at the new table, under its name and rules.
    """
    source = demo_on("mysql")
    target = previous_subset(make_backend, "mysql", source, tmp_path)
    target.execute(
        "CREATE TABLE wish (id INTEGER PRIMARY KEY, customer_id INTEGER, "
        "CONSTRAINT wish_customer FOREIGN KEY (customer_id) REFERENCES customer (id) "
        "ON DELETE CASCADE)"
    )
    target.execute("INSERT INTO wish VALUES (1, 3)")
    options = subsetter.RunOptions(target_url=target.url, replace=True, yes=True)
    result = subsetter.run(config_for(source, tmp_path), options)
    assert result.rows["customer"] == 40
    keys = target.query(
        "SELECT constraint_name, referenced_table_name, delete_rule "
        "FROM information_schema.referential_constraints "
        "WHERE constraint_schema = DATABASE() AND table_name = 'wish'"
    )
    assert keys == [("wish_customer", "customer", "CASCADE")]
    assert not any(t.startswith("_subsetter") for t in tables_of(target)), tables_of(target)
    with pytest.raises(pymysql.err.IntegrityError):  # the key is enforced against the new table
        target.execute("INSERT INTO wish VALUES (2, 999)")


def test_replace_drops_what_a_killed_run_left(
    demo_on: Callable[[str], Backend], make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    """Shadow tables of a run killed outright (kill -9: no cleanup) are dropped by the next
    run, which does not take them for somebody else's tables (no --yes needed)."""
    source = demo_on("mysql")
    target = make_backend("mysql")
    options = subsetter.RunOptions(target_url=target.url, replace=True)
    subsetter.run(config_for(source, tmp_path), options)
    target.execute("CREATE TABLE _subsetter_new_customer (id INTEGER)")
    target.execute("CREATE TABLE _subsetter_old_orders (id INTEGER)")
    result = subsetter.run(config_for(source, tmp_path), options)
    assert result.rows["customer"] == 40
    assert not any(t.startswith("_subsetter") for t in tables_of(target)), tables_of(target)


def before_tables(state: tuple[dict[str, str], set[tuple[str, ...]]]) -> set[str]:
    return set(state[0])


@pytest.mark.parametrize("engine", SERVERS)
def test_replace_with_a_refused_row_keeps_the_previous_tables(
    engine: str, make_backend: Callable[[str], Backend], staging_dir: Path, tmp_path: Path
) -> None:
    """The new `child` holds a value the target's JSON check refuses: the old subset stays."""
    path = invalid_json_source(tmp_path)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE child SET payload = '[1]' WHERE id = 2")
    conn.close()
    target = target_with_bystander(make_backend, engine)
    config = subsetter.parse_config(
        f"source: {{url: 'sqlite:///{path}'}}\nseeds: [{{table: parent}}]\n", tmp_path / "c.yml", {}
    )
    options = subsetter.RunOptions(target_url=target.url, replace=True, yes=True)
    subsetter.run(config, options)
    before = target_state(target)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE child SET payload = 'not json {' WHERE id = 2")
        conn.execute("INSERT INTO parent VALUES (3, 'three')")
    conn.close()
    with pytest.raises(subsetter.LoadError) as failed:
        subsetter.run(config, options)
    message = str(failed.value)
    assert "loading table child into" in message and "nothing was committed" in message, message
    assert target_state(target) == before
    assert tables_of(target) == {"bystander", "parent", "child"}
    assert files_in(staging_dir) == []


@pytest.mark.parametrize("engine", ["sqlite", "duckdb"])
def test_interrupted_replace_on_a_file_keeps_the_previous_tables(
    engine: str, make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    """SQLite and DuckDB drop, create and load in one transaction: a stop rolls all of it back."""
    source = make_backend("sqlite")
    from fixtures_db.demo import load_demo

    load_demo(source.url)
    target = previous_subset(make_backend, engine, source, tmp_path)
    before = fingerprint(target)

    def stop(n: int) -> None:
        raise KeyboardInterrupt

    options = subsetter.RunOptions(target_url=target.url, replace=True, yes=True)
    with pytest.raises(KeyboardInterrupt):
        subsetter.run(config_for(source, tmp_path), options, Hook(on_loaded=stop))
    assert fingerprint(target) == before


# ---------------------------------------------------------------- the process itself


PAUSE_AFTER_FIRST_TABLE = """
import signal, sys, time
import subsetter.cli as cli

# Started from a background job (`./.ci/run &`), this process inherits SIGINT ignored, as
# POSIX shells do for background jobs, and Python keeps it so: Ctrl-C from a terminal is what
# the test stands for, so take the default handler back.
signal.signal(signal.SIGINT, signal.default_int_handler)

shown = cli._CliReporter.table_loaded

def table_loaded(self, table, rows, seconds):
    shown(self, table, rows, seconds)
    print("PAUSED", file=sys.stderr, flush=True)
    time.sleep(120)

cli._CliReporter.table_loaded = table_loaded
sys.argv[0] = "subset"
sys.exit(cli.main())
"""


def cli_env(tmpdir: Path) -> dict[str, str]:
    return {**os.environ, "TMPDIR": str(tmpdir), "CI": "true", "PYTHONPATH": str(REPO)}


@pytest.mark.parametrize(
    ("sig", "replace"),
    [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGTERM, True)],
    ids=["SIGINT", "SIGTERM", "SIGTERM-replace"],
)
@pytest.mark.parametrize("engine", SERVERS)
def test_signal_mid_load(
    engine: str,
    sig: signal.Signals,
    replace: bool,
    demo_on: Callable[[str], Backend],
    make_backend: Callable[[str], Backend],
    tmp_path: Path,
) -> None:
    """A signal mid-load; with --replace over an earlier subset, that subset stays as it was."""
    source = demo_on(engine)
    before = fingerprint(source)
    if replace:
        target = previous_subset(make_backend, engine, source, tmp_path)
    else:
        target = target_with_bystander(make_backend, engine)
    target_before = target_state(target)
    (tmp_path / "c.yml").write_text(CONFIG.format(url=source.url))
    (tmp_path / "pause.py").write_text(PAUSE_AFTER_FIRST_TABLE)
    staging = tmp_path / "staging"
    staging.mkdir()
    extra = ["--replace", "--yes"] if replace else []
    proc = subprocess.Popen(
        [sys.executable, str(tmp_path / "pause.py"), "run", str(tmp_path / "c.yml"),
         "--target-url", target.url, *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(staging),
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if line.startswith("PAUSED"):
                break
        assert seen and seen[-1].startswith("PAUSED"), "".join(seen)
        assert len(files_in(staging)) >= 1, "the run is mid-way: its staging file exists"
        proc.send_signal(sig)
        _, rest = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, rest
    errors = [ln for ln in rest.splitlines() if ln.startswith("error:")]
    assert errors == ["error: interrupted; nothing was committed to the target"], rest
    assert "Traceback" not in rest
    assert target_state(target) == target_before
    assert files_in(staging) == []
    assert fingerprint(source) == before


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[tuple[Path, Callable[[], None] | None]]:
    """A folder that fills up after 256 KiB, and what the child process must run first.

    A real tmpfs of that size where mounting is allowed (root); elsewhere a file size limit
    (RLIMIT_FSIZE, with SIGXFSZ ignored so writes fail with EFBIG instead of killing).
    """
    folder = tmp_path / "tiny"
    folder.mkdir()
    mounted = (
        os.geteuid() == 0
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)],
            capture_output=True,
        ).returncode
        == 0
    )
    if mounted:
        try:
            yield folder, None
        finally:
            subprocess.run(["umount", str(folder)], check=False)
        return

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))

    yield folder, limit


@pytest.mark.parametrize("engine", SERVERS)
def test_staging_disk_full(
    engine: str,
    demo_on: Callable[[str], Backend],
    make_backend: Callable[[str], Backend],
    tiny_disk: tuple[Path, Callable[[], None] | None],
    tmp_path: Path,
) -> None:
    """The staging file (--keep-staging, on the small disk) cannot grow: one error, no trace.

    Without --keep-staging staging lives in memory and touches the disk only past its memory
    budget, which a test-sized subset never reaches; the kept file writes every row to disk.
    """
    folder, limit = tiny_disk
    source = demo_on(engine)
    before = fingerprint(source)
    target = target_with_bystander(make_backend, engine)
    (tmp_path / "c.yml").write_text(
        f"source: {{url: '{source.url}'}}\nseeds: [{{table: customer}}]\npassthrough: [product]\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "subsetter", "run", str(tmp_path / "c.yml"),
         "--target-url", target.url, "--keep-staging", str(folder / "staging.duckdb")],
        capture_output=True, text=True, env=cli_env(folder), preexec_fn=limit, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    errors = [ln for ln in done.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert "writing the staging file" in errors[0] and "disk full" in errors[0], errors[0]
    assert "Traceback" not in done.stderr
    assert tables_of(target) == {"bystander"}
    assert files_in(folder) == []
    assert fingerprint(source) == before


@pytest.mark.parametrize(
    ("exc", "storage"),
    [
        (OSError(28, "No space left on device"), True),
        (duckdb.IOException('Could not write file "x.tmp": No space left on device'), True),
        (duckdb.Error("File size limit exceeded"), True),
        (duckdb.ConversionException("Could not convert string 'x' to INT32"), False),
        (duckdb.ConstraintException("Duplicate key violates primary key"), False),
    ],
)
def test_only_storage_failures_suggest_a_full_disk(exc: Exception, storage: bool) -> None:
    """A conversion error in staging must not send the user looking for disk space."""
    assert _is_storage_error(exc, str(exc)) is storage
