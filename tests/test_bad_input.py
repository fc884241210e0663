"""Bad input, end to end: each mistake gives exit 1 (or the right exception), one clear message
naming the file, key or table, nothing written to the target, and never a password.

Most cases run the CLI in-process on the bundled demo (SQLite); the server cases create their
own databases, roles and users and drop them afterwards.
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner, Result

import subsetter
from fixtures_db.demo import load_demo
from subsetter.cli import app

if TYPE_CHECKING:
    from conftest import Backend

REPO = Path(__file__).resolve().parent.parent
DEMO_SOURCE = REPO / "fixtures_db" / "demo.sqlite"
MakeBackend = Callable[[str], "Backend"]


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def assert_one_error(result: Result, *words: str, secret: str | None = None) -> str:
    """Exit 1, exactly one `error:` line holding every word, no traceback, no secret."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for word in words:
        assert word in errors[0], (word, errors[0])
    if secret is not None:
        assert secret not in result.stdout + result.stderr
    return errors[0]


def tables_in(path: Path) -> set[str]:
    if not path.exists():
        return set()
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A private copy of the demo database, so a test can prove it stays byte-identical."""
    path = tmp_path / "src" / "demo.sqlite"
    path.parent.mkdir()
    shutil.copyfile(DEMO_SOURCE, path)
    return path


@pytest.fixture
def target(tmp_path: Path) -> Path:
    return tmp_path / "out" / "target.sqlite"


def write(folder: Path, body: str, source_url: str | None = None, name: str = "c.yml") -> Path:
    """A config whose source is the demo copy (by a path relative to the config) unless given."""
    url = source_url or "sqlite:///src/demo.sqlite"
    path = folder / name
    path.write_text(f"source:\n  url: {url}\n{body}")
    return path


def run(config: Path, target: Path, *extra: str) -> Result:
    return invoke("run", str(config), "--target-url", f"sqlite:///{target}", *extra)


# ---------------------------------------------------------------- the config file


def test_malformed_yaml(tmp_path: Path, source: Path, target: Path) -> None:
    config = write(tmp_path, "seeds:\n  - table: customer\n    where: 'id < 3\n")
    assert_one_error(
        run(config, target), "c.yml:6:1", "not valid YAML", "quoted scalar started at line 5"
    )
    assert not target.exists()


def test_unknown_key(tmp_path: Path, source: Path, target: Path) -> None:
    config = write(tmp_path, "seeds:\n  - table: customer\n    limt: 3\n")
    assert_one_error(
        run(config, target), "c.yml:5:5", "seeds[0].limt", 'unknown key "limt"', '"limit"'
    )
    assert not target.exists()


def test_missing_config_file(tmp_path: Path, target: Path) -> None:
    assert_one_error(
        run(tmp_path / "nowhere.yml", target), "nowhere.yml", "cannot read the config file"
    )
    assert not target.exists()


def test_config_is_a_directory(tmp_path: Path, target: Path) -> None:
    assert_one_error(run(tmp_path, target), str(tmp_path), "cannot read the config file")


def test_unset_environment_variable(
    tmp_path: Path, target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SUBSETTER_TEST_UNSET", raising=False)
    config = write(tmp_path, "seeds: [{table: customer}]\n", "${SUBSETTER_TEST_UNSET}")
    assert_one_error(run(config, target), "c.yml:2:", "source.url", "SUBSETTER_TEST_UNSET")


# ---------------------------------------------------------------- names the source lacks


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (
            "seeds:\n  - table: custommer\n",
            ("c.yml:4:5 seeds[0].table:", 'no table "custommer"', 'Did you mean "customer"?'),
        ),
        (
            "seeds: [{table: customer}]\npassthrough: [categroy]\n",
            ("c.yml:4:15 passthrough[0]:", 'no table "categroy"', 'Did you mean "category"?'),
        ),
        (
            "seeds: [{table: customer}]\nexclude: [paymnet]\n",
            ("c.yml:4:11 exclude[0]:", 'no table "paymnet"', 'Did you mean "payment"?'),
        ),
        (
            "seeds: [{table: customer}]\nvirtual_foreign_keys:\n"
            "  - child: payment(order_id)\n    parent: oders(id)\n",
            ("c.yml:6:5 virtual_foreign_keys[0].parent:", 'no table "oders"', '"orders"?'),
        ),
        (
            "seeds: [{table: customer}]\nvirtual_foreign_keys:\n"
            "  - child: payments(order_id)\n    parent: orders(id)\n",
            ("c.yml:5:5 virtual_foreign_keys[0].child:", 'no table "payments"', '"payment"?'),
        ),
        (
            "seeds: [{table: customer}]\nvirtual_foreign_keys:\n"
            "  - child: payment(orderid)\n    parent: orders(id)\n",
            ("c.yml:5:5 virtual_foreign_keys[0].child:", 'no column "orderid" in table payment',
             'Did you mean "order_id"?'),
        ),
        (
            "seeds: [{table: customer}]\nvirtual_foreign_keys:\n"
            "  - child: payment(order_id)\n    parent: orders(ident)\n",
            ("c.yml:6:5 virtual_foreign_keys[0].parent:", 'no column "ident" in table orders'),
        ),
    ],
    ids=["seed", "passthrough", "exclude", "vfk-parent", "vfk-child", "vfk-column", "vfk-ref"],
)  # fmt: skip
def test_unknown_table_or_column(
    tmp_path: Path, source: Path, target: Path, body: str, words: tuple[str, ...]
) -> None:
    before = digest(source)
    config = write(tmp_path, body)
    assert_one_error(run(config, target), *words)
    assert tables_in(target) == set()
    assert invoke("plan", str(config)).exit_code == 1
    assert digest(source) == before


def test_unknown_table_through_the_api(tmp_path: Path, source: Path) -> None:
    config = subsetter.load_config(write(tmp_path, "seeds:\n  - table: custommer\n"))
    with pytest.raises(subsetter.ConfigError, match=r"c\.yml:4:5 seeds\[0\]\.table: no table"):
        subsetter.plan_subset(config)


def test_not_null_foreign_key_into_excluded_table(
    tmp_path: Path, source: Path, target: Path
) -> None:
    config = write(tmp_path, "seeds: [{table: customer}]\nexclude: [customer]\n")
    assert_one_error(run(config, target), "seeds[0].table", "is a seed and also excluded")
    config = write(tmp_path, "seeds: [{table: order_item}]\nexclude: [product]\n")
    assert_one_error(run(config, target), "order_item(product_id) -> product(id)", "NOT NULL")
    assert tables_in(target) == set()
    with pytest.raises(subsetter.PlanError, match=r"order_item\(product_id\) -> product\(id\)"):
        subsetter.plan_subset(subsetter.load_config(config))


# ---------------------------------------------------------------- queries the source refuses


def test_seed_where_that_fails_on_the_source(tmp_path: Path, source: Path, target: Path) -> None:
    before = digest(source)
    config = write(tmp_path, "seeds:\n  - table: customer\n    where: no_such_column < 3\n")
    line = assert_one_error(run(config, target), "customer", "no_such_column")
    assert "seed" in line
    assert tables_in(target) == set()
    assert digest(source) == before
    with pytest.raises(subsetter.SourceError, match="customer"):
        subsetter.run(
            subsetter.load_config(config), subsetter.RunOptions(target_url=f"sqlite:///{target}")
        )
    assert tables_in(target) == set()


# ---------------------------------------------------------------- URLs and servers


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("postgress://u:s3cret-scheme@db/x", ('unsupported database "postgress"',
                                              'Did you mean "postgresql"?')),
        ("oracle://u:s3cret-scheme@db/x", ('unsupported database "oracle"', "supported: ")),
        ("not a url at all s3cret-scheme", ("is not a database URL",)),
    ],
)  # fmt: skip
def test_unsupported_url(
    tmp_path: Path, source: Path, target: Path, url: str, words: tuple[str, ...]
) -> None:
    config = write(tmp_path, "seeds: [{table: customer}]\n", url)
    assert_one_error(run(config, target), "c.yml:2:", *words, secret="s3cret-scheme")
    assert not target.exists()
    # the same URL as a target
    config = write(tmp_path, "seeds: [{table: customer}]\n")
    result = invoke("run", str(config), "--target-url", url)
    assert_one_error(result, "--target-url", *words, secret="s3cret-scheme")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres:s3cret-port@127.0.0.1:1/nowhere",
        "mysql://root:s3cret-port@127.0.0.1:1/x",
    ],
)
@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_unreachable_server(tmp_path: Path, target: Path, url: str, debug: bool) -> None:
    config = write(tmp_path, "seeds: [{table: customer}]\n", url)
    result = run(config, target, *(["--debug"] if debug else []))
    assert result.exit_code == 1
    assert "s3cret-port" not in result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "cannot connect to" in errors[0]
    assert "127.0.0.1:1" in errors[0]
    assert ":***@" in errors[0]
    assert ("Traceback" in result.stderr) is debug
    assert not target.exists()


def test_unreachable_target(tmp_path: Path, source: Path) -> None:
    config = write(tmp_path, "seeds: [{table: customer}]\n")
    result = invoke(
        "run", str(config), "--target-url", "postgresql://postgres:s3cret-t@127.0.0.1:1/x"
    )
    assert_one_error(result, "cannot connect to", "127.0.0.1:1", secret="s3cret-t")
    with pytest.raises(subsetter.ConnectionFailed):
        subsetter.run(
            subsetter.load_config(config),
            subsetter.RunOptions(target_url="postgresql://postgres:s3cret-t@127.0.0.1:1/x"),
        )


@pytest.fixture
def pg_role(make_backend: MakeBackend) -> Iterator[tuple[Backend, str, str]]:
    """A PostgreSQL role with a password that may not log in, and a database on the server.

    The test server trusts 127.0.0.1, so it never checks a password; a NOLOGIN role is how it
    refuses credentials. The role is dropped afterwards.
    """
    admin = make_backend("postgres")
    role, password = f"subsetter_pw_{secrets.token_hex(4)}", f"s3cret-{secrets.token_hex(6)}"
    admin.execute(f"CREATE ROLE {role} NOLOGIN PASSWORD '{password}'")
    try:
        yield admin, role, password
    finally:
        admin.execute(f"DROP ROLE IF EXISTS {role}")


@pytest.mark.server
@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_postgres_refused_credentials_hide_password(
    tmp_path: Path, target: Path, pg_role: tuple[Backend, str, str], debug: bool
) -> None:
    admin, role, password = pg_role
    for given in (password, "s3cret-wrong-" + password):
        url = f"postgresql://{role}:{given}@127.0.0.1:5432/{admin.database}"
        config = write(tmp_path, "seeds: [{table: customer}]\n", url)
        result = run(config, target, *(["--debug"] if debug else []))
        assert result.exit_code == 1
        assert given not in result.stdout + result.stderr
        assert password not in result.stdout + result.stderr
        (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
        assert f"cannot connect to postgresql+psycopg://{role}:***@127.0.0.1:5432/" in line
        assert "not permitted to log in" in line
        assert not target.exists()


@pytest.mark.server
def test_postgres_password_hidden_in_errors_after_connecting(
    tmp_path: Path, target: Path, make_backend: MakeBackend
) -> None:
    """A role that logs in (trust) on an empty database: the error shows its URL, masked."""
    admin = make_backend("postgres")
    role, password = f"subsetter_pw_{secrets.token_hex(4)}", f"s3cret-{secrets.token_hex(6)}"
    admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    try:
        url = f"postgresql://{role}:{password}@127.0.0.1:5432/{admin.database}"
        config = write(tmp_path, "seeds: [{table: customer}]\n", url)
        for extra in ((), ("--debug",)):
            result = run(config, target, *extra)
            assert result.exit_code == 1
            assert password not in result.stdout + result.stderr
            assert f"{role}:***@127.0.0.1" in result.stderr
            assert "no tables found" in result.stderr
    finally:
        admin.execute(f"DROP ROLE IF EXISTS {role}")


@pytest.mark.server
@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_mariadb_wrong_password(
    tmp_path: Path, target: Path, make_backend: MakeBackend, debug: bool
) -> None:
    admin = make_backend("mysql")
    user, password = f"subsetter_pw_{secrets.token_hex(4)}", f"s3cret-{secrets.token_hex(6)}"
    wrong = f"s3cret-wrong-{secrets.token_hex(6)}"
    admin.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
    try:
        url = f"mysql://{user}:{wrong}@127.0.0.1:3306/{admin.database}"
        config = write(tmp_path, "seeds: [{table: customer}]\n", url)
        result = run(config, target, *(["--debug"] if debug else []))
        assert result.exit_code == 1
        for secret in (password, wrong):
            assert secret not in result.stdout + result.stderr
        (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
        assert f"cannot connect to mysql+pymysql://{user}:***@127.0.0.1:3306/" in line
        assert "Access denied" in line
        assert not target.exists()
        with pytest.raises(subsetter.ConnectionFailed):
            subsetter.plan_subset(subsetter.load_config(config))
    finally:
        admin.execute(f"DROP USER IF EXISTS '{user}'@'%'")


# ---------------------------------------------------------------- the target


@pytest.mark.parametrize(
    "spelling",
    ["{abs}", "{folder}/src/../src/demo.sqlite", "{folder}/link.sqlite"],
    ids=["absolute", "dotdot", "symlink"],
)
def test_target_is_the_source_sqlite(tmp_path: Path, source: Path, spelling: str) -> None:
    (tmp_path / "link.sqlite").symlink_to(source)
    before = digest(source)
    config = write(tmp_path, "seeds: [{table: customer}]\n")  # relative source path
    url = "sqlite:///" + spelling.format(abs=source, folder=tmp_path)
    assert_one_error(invoke("run", str(config), "--target-url", url), "is the source database")
    assert digest(source) == before


def test_target_is_the_source_through_a_named_target(tmp_path: Path, source: Path) -> None:
    before = digest(source)
    config = write(
        tmp_path,
        f"targets:\n  oops:\n    url: sqlite:///{source}\nseeds: [{{table: customer}}]\n",
    )
    assert_one_error(invoke("run", str(config), "--target", "oops"), "is the source database")
    with pytest.raises(subsetter.TargetError, match="is the source database"):
        subsetter.run(subsetter.load_config(config), subsetter.RunOptions(target="oops"))
    assert digest(source) == before


@pytest.fixture
def demo_pg(make_backend: MakeBackend) -> Backend:
    """The demo shop on a fresh PostgreSQL database."""
    backend = make_backend("postgres")
    load_demo(backend.url)
    return backend


def pg_fingerprint(backend: Backend) -> dict[str, object]:
    """Row counts, an md5 of every row, the columns and the sequences of a PostgreSQL database."""
    out: dict[str, object] = {}
    tables = backend.query(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = 'public' ORDER BY table_name"
    )
    for (name,) in tables:
        out[name] = backend.query(
            f"SELECT COUNT(*), md5(string_agg(t::text, '|' ORDER BY t::text)) FROM \"{name}\" t"
        )[0]
    out["columns"] = backend.query(
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = 'public' ORDER BY 1, 2"
    )
    out["constraints"] = backend.query(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE connamespace = 'public'::regnamespace ORDER BY 1"
    )
    out["sequences"] = backend.query("SELECT sequencename, last_value FROM pg_sequences ORDER BY 1")
    return out


@pytest.mark.server
def test_target_is_the_source_postgres_localhost(tmp_path: Path, demo_pg: Backend) -> None:
    before = pg_fingerprint(demo_pg)
    config = write(tmp_path, "seeds: [{table: customer, where: 'id < 5'}]\n", demo_pg.url)
    other = f"postgresql://postgres@localhost:5432/{demo_pg.database}"
    assert_one_error(invoke("run", str(config), "--target-url", other), "is the source database")
    assert pg_fingerprint(demo_pg) == before


@pytest.mark.server
def test_source_unchanged_by_a_run(tmp_path: Path, demo_pg: Backend, target: Path) -> None:
    before = pg_fingerprint(demo_pg)
    config = write(
        tmp_path,
        "seeds:\n  - table: customer\n    where: id <= 30\n  - table: product\n    percent: 10\n"
        "passthrough: [category]\n",
        demo_pg.url,
    )
    result = run(config, target)
    assert result.exit_code == 0, result.stderr
    assert "integrity verified" in result.stdout
    assert "customer" in tables_in(target)
    assert pg_fingerprint(demo_pg) == before


def test_tables_already_in_target(tmp_path: Path, source: Path, target: Path) -> None:
    config = write(tmp_path, "seeds: [{table: customer, where: 'id <= 5'}]\n")
    assert run(config, target).exit_code == 0
    before = digest(target)
    line = assert_one_error(run(config, target), "already has table(s)", "customer", "--replace")
    assert "orders" in line
    assert digest(target) == before
    with pytest.raises(subsetter.TargetError, match="already has table"):
        subsetter.run(
            subsetter.load_config(config), subsetter.RunOptions(target_url=f"sqlite:///{target}")
        )
    assert digest(target) == before
    replaced = run(config, target, "--replace")
    assert replaced.exit_code == 0, replaced.stderr


def test_unrelated_table_in_target_is_fine(tmp_path: Path, source: Path, target: Path) -> None:
    target.parent.mkdir()
    conn = sqlite3.connect(target)
    with conn:
        conn.execute("CREATE TABLE keep_me (x INTEGER)")
        conn.execute("INSERT INTO keep_me VALUES (42)")
    conn.close()
    config = write(tmp_path, "seeds: [{table: customer, where: 'id <= 5'}]\n")
    result = run(config, target, "--replace")
    assert result.exit_code == 0, result.stderr
    conn = sqlite3.connect(target)
    assert conn.execute("SELECT x FROM keep_me").fetchall() == [(42,)]
    conn.close()


# ---------------------------------------------------------------- a load that fails half way


def too_long_source(folder: Path) -> Path:
    """Rows SQLite accepts but a stricter target refuses: 7 characters in a VARCHAR(3).

    ``parent`` loads fine first; ``child`` fails on its second row.
    """
    path = folder / "src" / "strict.sqlite"
    path.parent.mkdir(exist_ok=True)
    conn = sqlite3.connect(path)
    with conn:
        conn.executescript(
            """
            CREATE TABLE parent (id INTEGER PRIMARY KEY, name VARCHAR(40) NOT NULL);
            CREATE TABLE child (
                id INTEGER PRIMARY KEY,
                parent_id INTEGER NOT NULL REFERENCES parent (id),
                code VARCHAR(3) NOT NULL
            );
            INSERT INTO parent VALUES (1, 'one'), (2, 'two');
            INSERT INTO child VALUES (1, 1, 'ok'), (2, 2, 'toolong');
            """
        )
    conn.close()
    return path


@pytest.mark.server
@pytest.mark.parametrize("engine", ["postgres", "mysql"])
def test_failed_load_leaves_no_half_loaded_table(
    tmp_path: Path, make_backend: MakeBackend, engine: str
) -> None:
    too_long_source(tmp_path)
    before = digest(tmp_path / "src" / "strict.sqlite")
    tgt = make_backend(engine)
    tgt.execute("CREATE TABLE bystander (x INTEGER)")
    config = write(tmp_path, "seeds: [{table: parent}]\n", "sqlite:///src/strict.sqlite")
    result = invoke("run", str(config), "--target-url", tgt.url)
    assert_one_error(result, "loading table child into", "failed", "too long")
    if engine == "postgres":
        present = tgt.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
    else:
        present = tgt.query("SHOW TABLES")
    assert {r[0] for r in present} == {"bystander"}
    assert digest(tmp_path / "src" / "strict.sqlite") == before
    with pytest.raises(subsetter.LoadError, match="child"):
        subsetter.run(subsetter.load_config(config), subsetter.RunOptions(target_url=tgt.url))


def test_keep_staging_never_replaces_a_file_that_is_not_duckdb(
    tmp_path: Path, source: Path, target: Path
) -> None:
    config = write(tmp_path, "seeds: [{table: customer, where: 'id <= 5'}]\n")
    for victim, words in (
        (config, ("cannot keep staging in", "not a DuckDB file")),
        (source, ("is the source or target database",)),
    ):
        before = digest(victim)
        result = run(config, target, "--keep-staging", str(victim))
        assert_one_error(result, str(victim), *words)
        assert digest(victim) == before
    assert tables_in(target) == set()


def test_keep_staging_in_missing_folder(tmp_path: Path, source: Path, target: Path) -> None:
    config = write(tmp_path, "seeds: [{table: customer, where: 'id <= 5'}]\n")
    staging = tmp_path / "missing" / "s.duckdb"
    assert_one_error(
        run(config, target, "--keep-staging", str(staging)), "cannot open the staging file"
    )
    assert tables_in(target) == set()


@pytest.mark.server
def test_password_never_in_output_or_report_of_a_good_run(
    tmp_path: Path, demo_pg: Backend, target: Path
) -> None:
    role, password = f"subsetter_pw_{secrets.token_hex(4)}", f"s3cret-{secrets.token_hex(6)}"
    demo_pg.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    try:
        demo_pg.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
        url = f"postgresql://{role}:{password}@127.0.0.1:5432/{demo_pg.database}"
        config = write(tmp_path, "seeds: [{table: customer, where: 'id <= 5'}]\n", url)
        report = tmp_path / "report.json"
        result = invoke("-v", "run", str(config), "--target-url", f"sqlite:///{target}",
                        "--report", str(report), "--debug")  # fmt: skip
        assert result.exit_code == 0, result.stderr
        assert password not in result.stdout + result.stderr
        assert password not in report.read_text()
        assert f"{role}:***@127.0.0.1" in report.read_text()
    finally:
        demo_pg.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
        demo_pg.execute(f"DROP ROLE IF EXISTS {role}")
