"""Masking (subsetter/mask.py, subsetter/strategies.py) on every engine.

The scenario is `fixtures_db.masking`: personal columns, a composite key made of personal
strings referenced by a declared and a virtual foreign key, an integer key referenced by another
table, JSON with personal fields, and a short unique code whose masked values collide.

End-to-end runs assert: no original value of a masked column appears in any text column of the
target; integrity holds after masking keys; the same key gives the same output on two runs and
two engines; another key gives other output; collisions on a unique column are resolved.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

import subsetter
from fixtures_db import masking
from subsetter.catalog import Column, ColumnType
from subsetter.errors import ConfigError, MaskError
from subsetter.mask import plan_masks
from subsetter.strategies import STRATEGIES, Masker, digest, sql_form
from tests import oracle
from tests.conftest import Backend
from tests.e2e import assert_intact, make_config, run_into

KEY = "test-mask-key-1"

MASKS = """
seeds:
  - table: person
    where: "id <= 40"
passthrough: [badge]
virtual_foreign_keys:
  - child: support_ticket(region, login)
    parent: account(region, login)
masks:
  person.id: hash
  person.email: email
  person.first_name: first_name
  person.last_name: last_name
  person.phone: phone
  person.ssn: {strategy: partial, keep: 4}
  person.notes: redact
  person.born: {strategy: date_shift, max_days: 60}
  person.salary: {strategy: noise, relative: 0.2}
  person.profile: {json: {"$.email": email, "$.card.number": {strategy: "null"}}}
  account.login: {strategy: hash, length: 16}
  login_event.ip: ipv4
  support_ticket.body: {hook: "tests.mask_hooks:ticket_body"}
  badge.code: {strategy: hash, length: 4}
  badge.team: keep
"""

MASKED_TEXT = {
    "person": ["email", "first_name", "last_name", "phone", "ssn", "notes", "profile"],
    "account": ["login"],
    "login_event": ["login", "ip"],
    "support_ticket": ["login", "body"],
    "badge": ["code"],
}
"""The text columns whose source values must not reach the target (key-group members too)."""


def masked_config(tmp_path: Path, source: Backend, key: str = KEY, extra: str = "") -> Any:
    return make_config(tmp_path, source.url, MASKS + extra + f"mask_key: {key}\n")


def originals(source: Backend) -> set[str]:
    """Every source value of a masked text column, plus the e-mails inside `profile`."""
    found: set[str] = set()
    for table, columns in MASKED_TEXT.items():
        for row in oracle.rows(source, table):
            found.update(str(row[c]) for c in columns if row[c] is not None)
    return found


def text_cells(target: Backend) -> Iterable[tuple[str, str, str]]:
    for table in oracle.tables(target):
        for row in oracle.rows(target, table):
            for column, value in row.items():
                if isinstance(value, str):
                    yield table, column, value


def assert_no_original_value(source: Backend, target: Backend) -> None:
    """Scan every text cell of the target for every original value of a masked column."""
    secrets = originals(source)
    long = [s for s in secrets if len(s) >= 6]
    leaks = [
        (t, c, v) for t, c, v in text_cells(target) if v in secrets or any(s in v for s in long)
    ]
    assert not leaks, leaks[:5]


def snapshot(target: Backend) -> dict[str, Counter[tuple[tuple[str, Any], ...]]]:
    return {
        t: Counter(tuple(sorted(r.items())) for r in oracle.rows(target, t))
        for t in oracle.tables(target)
    }


_REFERENCE: dict[str, Any] = {}


def sqlite_reference(make_backend: Callable[[str], Backend], tmp_path: Path) -> Any:
    """The masked subset as SQLite produces it (built once per session, reused by engines)."""
    if "snap" not in _REFERENCE:
        source, target = make_backend("sqlite"), make_backend("sqlite")
        masking.build_masking(source.url)
        run_into(masked_config(tmp_path, source), target)
        _REFERENCE["snap"] = snapshot(target)
    return _REFERENCE["snap"]


def test_masked_subset_leaks_nothing_keeps_integrity_and_is_deterministic(
    backend: Backend, make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    masking.build_masking(backend.url)
    target = make_backend(backend.name)
    config = masked_config(tmp_path, backend)

    result = run_into(config, target)

    assert_intact(backend, target, result)
    assert_no_original_value(backend, target)
    # the virtual key (support_ticket -> account) still joins after masking account.login
    q = oracle.quote
    orphans = target.query(
        f"SELECT count(*) FROM {q(target, 'support_ticket')} s WHERE NOT EXISTS (SELECT 1 FROM "
        f"{q(target, 'account')} a WHERE a.region = s.region AND a.{q(target, 'login')} = s.login)"
    )
    assert orphans[0][0] == 0 and oracle.count(target, "support_ticket") > 0
    # the masked unique code kept its uniqueness although 4 hex digits collide for 400 codes
    codes = [r["code"] for r in oracle.rows(target, "badge")]
    assert len(set(codes)) == len(codes) == masking.BADGES
    raw = [digest(KEY.encode(), r["code"]).hex()[:4] for r in oracle.rows(backend, "badge")]
    assert len(set(raw)) < len(raw), "the scenario must make the first digests collide"
    # the row context reached the hook; kept columns are unchanged
    bodies = {r["id"]: r["body"] for r in oracle.rows(target, "support_ticket")}
    assert all(b == f"ticket {i}: sign-in problem" for i, b in bodies.items())
    assert Counter(r["team"] for r in oracle.rows(target, "badge")) == Counter(
        r["team"] for r in oracle.rows(backend, "badge")
    )
    assert result.masked["login_event.login"].startswith("hash(length=16) (key group of")
    assert "badge.team" not in result.masked and result.masked["person.email"] == "email"

    # determinism: a second run on this engine, and the SQLite run, give the same rows
    again = make_backend(backend.name)
    run_into(config, again)
    assert snapshot(again) == snapshot(target)
    assert snapshot(target) == sqlite_reference(make_backend, tmp_path)


def test_another_key_gives_other_values_and_no_key_is_an_error(
    make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    source = make_backend("duckdb")
    masking.build_masking(source.url)
    first, second = make_backend("duckdb"), make_backend("duckdb")
    run_into(masked_config(tmp_path, source), first)
    run_into(masked_config(tmp_path, source, key="another-key"), second)

    for table, column in [("person", "email"), ("person", "id"), ("account", "login")]:
        a = {r[column] for r in oracle.rows(first, table)}
        b = {r[column] for r in oracle.rows(second, table)}
        assert len(a & b) <= len(a) // 10, (table, column)

    no_key = make_config(tmp_path, source.url, MASKS)
    with pytest.raises(ConfigError, match=r"mask_key.*--allow-random-masks"):
        run_into(no_key, make_backend("duckdb"))
    random_target = make_backend("duckdb")
    result = run_into(no_key, random_target, allow_random_masks=True)
    assert any("random key" in w for w in result.warnings)
    assert_no_original_value(source, random_target)


def test_unresolvable_collision_fails_naming_the_column_and_loads_nothing(
    make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    source, target = make_backend("sqlite"), make_backend("sqlite")
    masking.build_masking(source.url)
    body = "passthrough: [badge]\nmasks:\n  badge.code: state\nmask_key: k\n"

    with pytest.raises(MaskError, match=r"badge\.code.*state.*collide"):
        run_into(make_config(tmp_path, source.url, body), target)
    assert oracle.tables(target) == []


def test_hook_error_names_the_row_key_not_the_value_and_batch_hooks_work(
    make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    source = make_backend("sqlite")
    masking.build_masking(source.url)
    body = "seeds:\n  - table: person\n    where: id <= 10\nmasks:\n  {}\nmask_key: k\n"

    failing = make_config(
        tmp_path, source.url, body.format('person.notes: {hook: "tests.mask_hooks:explode"}')
    )
    target = make_backend("sqlite")
    with pytest.raises(MaskError) as caught:
        run_into(failing, target)
    message = str(caught.value)
    assert "person.notes" in message and "id=8" in message and "ValueError" in message
    assert "Called" not in message and "cannot handle" not in message
    assert oracle.tables(target) == []
    # a key that is masked itself is personal: the row is named by its position instead
    masked_key = make_config(
        tmp_path,
        source.url,
        body.format('person.notes: {hook: "tests.mask_hooks:explode"}\n  person.id: hash'),
    )
    with pytest.raises(MaskError, match=r"on the row \d+ of .*person: ValueError") as caught:
        run_into(masked_key, make_backend("sqlite"))
    assert "id=" not in str(caught.value)

    batch = make_config(
        tmp_path, source.url, body.format('person.notes: {hook: "tests.mask_hooks:stars"}')
    )
    target = make_backend("sqlite")
    run_into(batch, target)
    notes = [r["notes"] for r in oracle.rows(target, "person")]
    assert notes and all(n is None or set(n) == {"#"} for n in notes)


# --- checks before any data moves ---------------------------------------------------------


@pytest.fixture(scope="module")
def catalog_source(tmp_path_factory: pytest.TempPathFactory) -> Backend:
    path = tmp_path_factory.mktemp("masking") / "source.sqlite"
    masking.build_masking(f"sqlite:///{path}")
    return Backend("sqlite", f"sqlite:///{path}", str(path))


@pytest.mark.parametrize(
    ("masks", "message"),
    [
        ("person.emial: email", 'no column "emial" in table person. Did you mean "email"?'),
        ("persn.email: email", 'no table "persn"'),
        ("badge.code: email", "cannot mask badge.code: strategy email needs at least 12"),
        ("person.email: 'null'", "cannot mask person.email: the column is NOT NULL"),
        ("person.notes: noise", "strategy noise writes decimal, float, integer values"),
        ("person.born: {strategy: constant, value: 3}", None),
        ("badge.code: redact", "gives many rows one value, but the column is a key"),
        (
            "account.login: hash\n  login_event.login: email",
            "joined by foreign keys must be masked alike",
        ),
        ("account.login: hash\n  login_event.login: keep", "must be masked alike"),
        ("person.id: {hook: 'tests.mask_hooks:stars'}", "is a key .* a hook cannot"),
        ("person.notes: {hook: 'no_such_module_x:f'}", "cannot import the hook's module"),
        ("person.notes: {hook: 'tests.mask_hooks:nope'}", "has no function nope"),
        ("person.phone: {strategy: constant, value: 3}", "write the constant in quotes"),
        ("person.profile: {json: {'$..x': email}}", 'cannot read JSON path "\\$..x"'),
    ],
)
def test_mask_rules_are_checked_against_the_schema(
    masks: str, message: str | None, catalog_source: Backend, tmp_path: Path
) -> None:
    body = f"passthrough: [person]\nmasks:\n  {masks}\nmask_key: k\n"
    config = make_config(tmp_path, catalog_source.url, body)
    made, catalog = subsetter.plan_subset(config)
    if message is None:
        plan_masks(catalog, made, config)
        return
    with pytest.raises(ConfigError, match=message):
        plan_masks(catalog, made, config)


def test_mask_key_is_never_shown(catalog_source: Backend, tmp_path: Path) -> None:
    secret = "s3cr3t-mask-key-value"
    config = make_config(
        tmp_path,
        catalog_source.url,
        f"passthrough: [badge]\nmasks:\n  badge.code: hash\nmask_key: {secret}\n",
    )
    made, catalog = subsetter.plan_subset(config)
    planned = plan_masks(catalog, made, config)
    assert planned.key == secret.encode()
    for text in (str(config), repr(config), repr(planned), str(planned.masked())):
        assert secret not in text


# --- strategies: the SQL form equals the Python form ----------------------------------------


COLUMNS = {
    "string": (Column("s", ColumnType("string", length=20)), ["alice@example.org", "x", "Bob"]),
    "integer": (Column("i", ColumnType("integer", bits=32)), [1, 42, 2_000_000_000, -7]),
    "float": (Column("f", ColumnType("float")), [1.5, -3.25, 1e10]),
    "date": (Column("d", ColumnType("date")), [dt.date(1980, 2, 29), dt.date(2024, 1, 1)]),
    "timestamp": (Column("t", ColumnType("timestamp")), [dt.datetime(2020, 5, 1, 10, 30, 5)]),
}
SQL_CASES = [
    ("hash", {}, "string"),
    ("hash", {"length": 8}, "string"),
    ("hash", {}, "integer"),
    ("redact", {}, "string"),
    ("partial", {"keep": 3}, "string"),
    ("noise", {"relative": 0.3}, "integer"),
    ("noise", {"relative": 0.3}, "float"),
    ("date_shift", {"max_days": 10}, "date"),
    ("date_shift", {"max_days": 400}, "timestamp"),
]
SQL_TYPES = {"string": "VARCHAR", "integer": "BIGINT", "float": "DOUBLE", "date": "DATE"}


@pytest.mark.parametrize(("name", "options", "kind"), SQL_CASES)
def test_sql_form_equals_python_form(name: str, options: dict[str, Any], kind: str) -> None:
    column, values = COLUMNS[kind]
    strategy = STRATEGIES[name]
    key = b"k"
    sql = sql_form(strategy, options, column, key)
    assert sql is not None
    expr, params = sql
    conn = duckdb.connect()
    conn.execute(f"CREATE TABLE v (x {SQL_TYPES.get(kind, 'TIMESTAMP')})")
    conn.executemany("INSERT INTO v VALUES (?)", [[v] for v in values])
    got = conn.execute(
        f"SELECT x, CAST(x AS VARCHAR), CAST({expr.replace('{col}', 'x')} AS "
        f"{SQL_TYPES.get(kind, 'TIMESTAMP')}) FROM v",
        params,
    ).fetchall()
    masker = Masker(key)
    for original, text, masked in got:
        expected = masker.value(strategy, options, column, original, text)
        assert masked == expected, (original, masked, expected)
        assert masked != original or name == "noise"


def test_fakes_are_deterministic_per_value_and_locale() -> None:
    column = Column("c", ColumnType("string", length=60))
    one, two, other = Masker(b"a"), Masker(b"a"), Masker(b"b")
    for name in ("email", "first_name", "phone", "street_address", "company", "ipv4"):
        strategy = STRATEGIES[name]
        a = [one.value(strategy, {}, column, v, v) for v in ("x", "y", "x")]
        assert a[0] == a[2] == two.value(strategy, {}, column, "x", "x")
        assert a[0] != other.value(strategy, {}, column, "x", "x") or name == "first_name"
    german = one.value(STRATEGIES["city"], {"locale": "de_DE"}, column, "x", "x")
    assert german == Masker(b"a", "de_DE").value(STRATEGIES["city"], {}, column, "x", "x")
    born = one.value(STRATEGIES["date_of_birth"], {}, Column("d", ColumnType("date")), 1, "1")
    assert isinstance(born, dt.date)
    noisy = one.value(
        STRATEGIES["noise"],
        {},
        Column("n", ColumnType("decimal", scale=2)),
        Decimal("10.00"),
        "10.00",
    )
    assert noisy.as_tuple().exponent == -2


def test_noise_stays_inside_the_column_type() -> None:
    masker = Masker(b"k")
    money = Column("m", ColumnType("decimal", precision=5, scale=2))
    small = Column("s", ColumnType("integer", bits=16))
    for v in range(40):
        big = Decimal("999.99") - v
        out = masker.value(STRATEGIES["noise"], {"relative": 0.5}, money, big, str(big))
        assert -Decimal("999.99") <= out <= Decimal("999.99")
        n = masker.value(STRATEGIES["noise"], {"relative": 0.5}, small, 32767 - v, str(32767 - v))
        assert -32767 <= n <= 32767
