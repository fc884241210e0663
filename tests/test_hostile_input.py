"""Hostile and mistaken input: the source is never written, a protected or busy target is never
harmed unasked, identifiers are always quoted, and no command ever shows a password.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote as url_quote

import psycopg
import pymysql
import pytest
import typer.main
from typer.testing import CliRunner, Result

import subsetter
from fixtures_db.demo import load_demo
from fixtures_db.hostile import ITEMS, LEAF, SELECT, build_hostile, hostile_rows
from subsetter.cli import app
from tests import oracle
from tests.conftest import MYSQL, PG, Backend
from tests.e2e import assert_intact, make_config, run_into
from tests.reliability import fingerprint

MakeBackend = Callable[[str], Backend]
REPO = Path(__file__).resolve().parent.parent
DEMO_SOURCE = REPO / "fixtures_db" / "demo.sqlite"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def one_error(result: Result) -> str:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return errors[0]


# ---------------------------------------------------------------- identifiers


def test_hostile_names_subset_correctly(
    backend: Backend, make_backend: MakeBackend, tmp_path: Path
) -> None:
    """Spaces, quotes, backticks, semicolons, dots, unicode, reserved words, mixed case."""
    build_hostile(backend.url)
    target = make_backend(backend.name)
    # JSON strings are YAML strings: the names go in exactly as they are.
    seeds = (
        f"seeds: [{{table: {json.dumps(LEAF)}, limit: 10}}]\npassthrough: [{json.dumps(SELECT)}]\n"
    )
    result = run_into(make_config(tmp_path, backend.url, seeds), target)
    assert_intact(backend, target, result)
    oracle.assert_subset_of(backend, target)
    rows = hostile_rows()
    leaves = sorted(rows[LEAF], key=lambda r: r["id"])[:10]
    wanted_items = {r["Order Items id"] for r in leaves} - {None}
    assert result.rows == {SELECT: 12, ITEMS: len(wanted_items), LEAF: 10}
    assert oracle.count(target, SELECT) == 12
    assert fingerprint(backend)  # the source still reads back whole


# ---------------------------------------------------------------- the target is not the source


def _pg_spellings(db: str) -> list[str]:
    spellings = [
        f"postgresql://postgres@localhost:5432/{db}",
        f"postgresql://postgres@127.0.0.1/{db}",  # default port omitted
        f"postgres://postgres@LOCALHOST/{db}",  # scheme alias, upper-case host
        f"postgresql+psycopg://postgres@127.1:5432/{db}",  # another spelling of the address
    ]
    if Path("/var/run/postgresql/.s.PGSQL.5432").exists():
        spellings.append(f"postgresql://postgres@/{db}?host=/var/run/postgresql")  # unix socket
    return spellings


def _mysql_spellings(db: str) -> list[str]:
    return [
        f"mysql://root@localhost/{db}?ssl_disabled=true",  # localhost, default port omitted
        f"mariadb://root@127.0.0.1:3306/{db}",  # scheme alias
        f"mysql+pymysql://root@127.1:3306/{db}",
    ]


@pytest.mark.server
@pytest.mark.parametrize("engine", ["postgres", "mysql"])
def test_same_database_by_another_spelling_is_refused(
    engine: str, demo_on: Callable[[str], Backend], tmp_path: Path
) -> None:
    source = demo_on(engine)
    before = fingerprint(source)
    config = make_config(tmp_path, source.url, "seeds: [{table: customer, where: 'id < 5'}]\n")
    spellings = (_pg_spellings if engine == "postgres" else _mysql_spellings)(source.database)
    for url in spellings:
        with pytest.raises(subsetter.TargetError, match="is the source database"):
            subsetter.run(config, subsetter.RunOptions(target_url=url, replace=True, yes=True))
    assert fingerprint(source) == before


# ---------------------------------------------------------------- protected and busy targets


def _demo_copy(tmp_path: Path) -> Path:
    path = tmp_path / "src.sqlite"
    path.write_bytes(DEMO_SOURCE.read_bytes())
    return path


def test_protected_target_is_never_written(tmp_path: Path) -> None:
    source = _demo_copy(tmp_path)
    prod = tmp_path / "prod.sqlite"
    config = tmp_path / "c.yml"
    config.write_text(
        f"source: {{url: 'sqlite:///{source}'}}\n"
        "targets:\n"
        f"  prod:\n    url: sqlite:///{prod}\n    protected: true\n"
        "seeds: [{table: customer, where: 'id <= 5'}]\n"
    )
    for extra in ([], ["--replace", "--yes"], ["--mode", "truncate", "--yes"]):
        line = one_error(invoke("run", str(config), "--target", "prod", *extra))
        assert 'the target "prod" is protected' in line and "c.yml:5:" in line, line
    assert not prod.exists(), "refused before connecting: not even an empty file"
    dry = invoke("run", str(config), "--target", "prod", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert not prod.exists()
    with pytest.raises(subsetter.TargetError, match="protected"):
        subsetter.run(subsetter.load_config(config), subsetter.RunOptions(target="prod"))


def test_protected_file_under_another_path_is_refused(tmp_path: Path) -> None:
    """--target-url spelling a protected target's file differently is refused all the same."""
    source = _demo_copy(tmp_path)
    prod = tmp_path / "prod.sqlite"
    conn = sqlite3.connect(prod)
    with conn:
        conn.execute("CREATE TABLE customer (id INTEGER PRIMARY KEY)")
        conn.execute("INSERT INTO customer VALUES (1)")
    conn.close()
    before = prod.read_bytes()
    (tmp_path / "sub").mkdir()
    config = tmp_path / "c.yml"
    config.write_text(
        f"source: {{url: 'sqlite:///{source}'}}\n"
        "targets:\n"
        "  prod:\n    url: sqlite:///prod.sqlite\n    protected: true\n"
        "  legacy:\n    url: oracle://db.example/prod\n    protected: true\n"
        "seeds: [{table: customer, where: 'id <= 5'}]\n"
    )
    other_spelling = f"sqlite:///{tmp_path}/sub/../prod.sqlite"
    line = one_error(
        invoke("run", str(config), "--target-url", other_spelling, "--replace", "--yes")
    )
    assert 'is the protected target "prod"' in line and "c.yml:5:" in line, line
    assert prod.read_bytes() == before
    fresh = f"sqlite:///{tmp_path}/fresh.sqlite"
    done = invoke("run", str(config), "--target-url", fresh)
    assert done.exit_code == 0, done.stderr
    assert _tables(tmp_path / "fresh.sqlite")["customer"] == 5


@pytest.mark.server
@pytest.mark.parametrize("engine", ["postgres", "mysql"])
def test_protected_server_database_under_another_url_is_refused(
    engine: str, demo_on: Callable[[str], Backend], make_backend: MakeBackend, tmp_path: Path
) -> None:
    """A protected database named by one URL, loaded through another spelling: refused."""
    source = demo_on(engine)
    prod = make_backend(engine)
    load_demo(prod.url)
    before = fingerprint(prod)
    spellings = (_pg_spellings if engine == "postgres" else _mysql_spellings)(prod.database)
    (tmp_path / "c.yml").write_text(
        f"source: {{url: '{source.url}'}}\n"
        f"targets:\n  prod:\n    url: '{prod.url}'\n    protected: true\n"
        "seeds: [{table: customer, where: 'id <= 5'}]\n"
    )
    config = subsetter.load_config(tmp_path / "c.yml")
    for url in spellings:
        for mode in ("replace", "truncate", "append"):
            options = subsetter.RunOptions(target_url=url, mode=mode, yes=True)
            with pytest.raises(subsetter.TargetError, match='is the protected target "prod"'):
                subsetter.run(config, options)
    assert fingerprint(prod) == before
    other = make_backend(engine)
    result = subsetter.run(config, subsetter.RunOptions(target_url=other.url))
    assert result.rows["customer"] == 5


def _tables(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}
    finally:
        conn.close()


@pytest.mark.parametrize("mode", ["replace", "truncate"])
def test_replace_or_truncate_beside_other_tables_needs_yes(tmp_path: Path, mode: str) -> None:
    source = _demo_copy(tmp_path)
    target = tmp_path / "t.sqlite"
    config = tmp_path / "c.yml"
    config.write_text(
        f"source: {{url: 'sqlite:///{source}'}}\nseeds: [{{table: customer, where: 'id <= 5'}}]\n"
    )
    url = f"sqlite:///{target}"
    assert invoke("run", str(config), "--target-url", url).exit_code == 0
    conn = sqlite3.connect(target)
    with conn:
        conn.execute("CREATE TABLE payroll (id INTEGER PRIMARY KEY, amount INTEGER)")
        conn.execute("INSERT INTO payroll VALUES (1, 100)")
    conn.close()
    before = _tables(target)
    line = one_error(invoke("run", str(config), "--target-url", url, "--mode", mode))
    assert "payroll" in line and "--yes" in line and f"mode {mode}" in line, line
    assert _tables(target) == before, "nothing was dropped or emptied"
    with pytest.raises(subsetter.ConfirmationNeeded):
        subsetter.run(
            subsetter.load_config(config), subsetter.RunOptions(target_url=url, mode=mode)
        )
    done = invoke("run", str(config), "--target-url", url, "--mode", mode, "--yes")
    assert done.exit_code == 0, done.stderr
    assert _tables(target)["payroll"] == 1


# ---------------------------------------------------------------- `where` cannot write


@pytest.fixture
def demo_backend(backend: Backend) -> Backend:
    load_demo(backend.url)
    return backend


def test_where_cannot_write_to_the_source(
    demo_backend: Backend, make_backend: MakeBackend, tmp_path: Path
) -> None:
    source = demo_backend
    evil = ["1=1; DELETE FROM customer", "1=1) OR (1=1; DELETE FROM customer; SELECT 1"]
    if source.name == "postgres":
        source.execute(
            "CREATE FUNCTION evil() RETURNS boolean LANGUAGE sql "
            "AS 'DELETE FROM payment; SELECT true'"
        )
        evil.append("evil()")
    elif source.name == "mysql":
        source.execute(
            "CREATE FUNCTION evil() RETURNS INT MODIFIES SQL DATA "
            "BEGIN DELETE FROM payment; RETURN 1; END"
        )
        evil.append("evil() = 1")
    before = fingerprint(source)
    target = make_backend("sqlite")
    for where in evil:
        seeds = f"seeds: [{{table: customer, where: {json.dumps(where)}}}]\n"
        config = make_config(tmp_path, source.url, seeds)
        with pytest.raises(subsetter.SourceError):
            run_into(config, target)
        assert fingerprint(source) == before, where
        assert oracle.tables(target) == []


# ---------------------------------------------------------------- secrets


@pytest.fixture
def secret_urls(
    request: pytest.FixtureRequest, demo_on: Callable[[str], Backend], make_backend: MakeBackend
) -> Iterator[tuple[str, str, str]]:
    """(source URL, target URL, password) of a real password-protected role or user."""
    engine = request.param
    source, target = demo_on(engine), make_backend(engine)
    user = f"subsetter_pw_{secrets.token_hex(4)}"
    password = f"Pw/{secrets.token_hex(6)}@s3cr3t%"
    encoded = url_quote(password, safe="")
    if engine == "postgres":
        with psycopg.connect(**PG, dbname="postgres", autocommit=True) as admin:
            admin.execute(f"CREATE ROLE {user} LOGIN PASSWORD '{password}'")
            admin.execute(f'ALTER DATABASE "{target.database}" OWNER TO {user}')
        source.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {user}")
        base = f"postgresql://{user}:{encoded}@127.0.0.1:5432"
        try:
            yield f"{base}/{source.database}", f"{base}/{target.database}", password
        finally:
            for db in (source.database, target.database):
                with psycopg.connect(**PG, dbname=db, autocommit=True) as admin:
                    admin.execute(f"REASSIGN OWNED BY {user} TO postgres")
                    admin.execute(f"DROP OWNED BY {user}")
            with psycopg.connect(**PG, dbname="postgres", autocommit=True) as admin:
                admin.execute(f"DROP ROLE {user}")
        return
    admin = pymysql.connect(**MYSQL, autocommit=True)
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", (password,))
            cur.execute(f"GRANT SELECT ON `{source.database}`.* TO '{user}'@'%'")
            cur.execute(f"GRANT ALL ON `{target.database}`.* TO '{user}'@'%'")
        base = f"mysql://{user}:{encoded}@127.0.0.1:3306"
        yield f"{base}/{source.database}", f"{base}/{target.database}", password
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        admin.close()


# Values for the arguments and options of the commands; a new command whose arguments are not
# here fails the test below, so whoever adds it decides what it gets.
ARGUMENTS = {"table": "customer", "key": "3"}
PATH_OPTIONS = {"report", "keep_staging", "out_file", "staging"}
FLAGS = {"debug", "verbose", "estimate"}


def _command_lines(config: Path, bad: Path, out: Path, source_url: str) -> list[list[str]]:
    group = typer.main.get_command(app)
    assert hasattr(group, "commands")
    names = list(group.commands)
    names.sort(key=lambda n: n != "run")  # run first: it writes the staging file explain reads
    lines = []
    for name in names:
        for cfg in (config, bad):
            args = [name]
            for param in group.commands[name].params:
                if param.param_type_name == "argument":
                    if param.name == "config":
                        args.append(str(cfg))
                    else:
                        assert param.name in ARGUMENTS, f"subset {name}: give {param.name} a value"
                        args.append(ARGUMENTS[param.name])
                    continue
                flag = param.opts[0]
                if param.name in FLAGS:
                    args.append(flag)
                elif param.name == "target":
                    args += [flag, "t"]
                elif param.name == "source":
                    args += [flag, source_url]
                elif param.name == "staging":  # the file run kept
                    args += [flag, str(out / f"run-keep_staging-{cfg.stem}")]
                elif param.name in PATH_OPTIONS:
                    args += [flag, str(out / f"{name}-{param.name}-{cfg.stem}")]
                elif param.name == "replace" or param.name == "yes":
                    args.append(flag)
            lines.append(args)
    return lines


@pytest.mark.server
@pytest.mark.parametrize("secret_urls", ["postgres", "mysql"], indirect=True)
def test_no_command_ever_shows_the_password(
    secret_urls: tuple[str, str, str], tmp_path: Path
) -> None:
    """Every command of the CLI, on a good config and a failing one, with --debug and logs."""
    source_url, target_url, password = secret_urls
    forms = {password, url_quote(password, safe=""), url_quote(password)}
    body = textwrap.dedent(
        f"""
        source: {{url: '{source_url}'}}
        targets:
          t: {{url: '{target_url}'}}
        mask_key: fixed-key-for-the-test
        masks: {{customer.email: email}}
        """
    )
    config, bad = tmp_path / "good.yml", tmp_path / "bad.yml"
    config.write_text(body + "seeds: [{table: customer, where: 'id <= 5'}]\n")
    bad.write_text(body + "seeds: [{table: customer, where: 'no_such_column = 1'}]\n")
    out = tmp_path / "out"
    out.mkdir()
    ran = []
    for args in _command_lines(config, bad, out, source_url):
        result = invoke(*args)
        ran.append((args[0], result.exit_code))
        assert result.exit_code != 2 or args[0] in ("schema",), (args, result.stderr)
        text = result.stdout + result.stderr + repr(result.exception or "")
        for form in forms:
            assert form not in text, (args, text[-2000:])
    assert ("run", 0) in ran, ran
    assert any(code != 0 for _, code in ran), "the bad config failed somewhere"
    written = [p for p in out.rglob("*") if p.is_file()]
    assert written, "reports and kept staging files were written"
    for path in written:
        data = path.read_bytes()
        for form in forms:
            assert form.encode() not in data, path
