"""The audit (subsetter/audit.py, ``subset audit``): personal columns found by name and value.

On Pagila, Sakila and Chinook the personal columns are listed by hand below; the audit must
find every one, with at most one false alarm per dataset. The masked Pagila example in
`configs/` must pass `subset audit --fail-on-unmasked` and run.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

import subsetter
from subsetter.audit import words
from subsetter.catalog import Column, ColumnType, Table, TableRef
from subsetter.cli import app
from subsetter.mask import plan_masks
from tests import oracle
from tests.conftest import REPO, Backend
from tests.e2e import make_config, run_into

PAGILA_PERSONAL = {
    "actor.first_name", "actor.last_name",
    "address.address", "address.address2", "address.postal_code", "address.phone",
    "customer.first_name", "customer.last_name", "customer.email",
    "staff.first_name", "staff.last_name", "staff.email", "staff.username", "staff.password",
    "staff.picture",
}  # fmt: skip
"""By hand: people's names, contact details, addresses, credentials and photos. Not personal:
`address.district` and `city.city` (regions shared by many), film texts, dates of rentals."""

CHINOOK_PERSONAL = {
    *(f"{t}.{c}" for t in ("customer", "employee") for c in (
        "first_name", "last_name", "address", "city", "postal_code", "phone", "fax", "email")),
    "employee.birth_date",
    "invoice.billing_address", "invoice.billing_city", "invoice.billing_postal_code",
}  # fmt: skip
"""By hand: customers' and employees' names, addresses, phones, e-mails, an employee's birth
date, and the billing address on invoices. Not personal: state and country (coarse), a
customer's company, artist and composer names (public credits)."""

FALSE_ALARMS_ALLOWED = 1


def labels(result: subsetter.AuditResult) -> set[str]:
    return {f.label for f in result.findings}


def audit_of(source: Backend, tmp_path: Path, table: str) -> subsetter.AuditResult:
    return subsetter.audit(make_config(tmp_path, source.url, f"passthrough: [{table}]\n"))


def assert_finds(found: set[str], personal: set[str]) -> None:
    assert personal - found == set(), "missed"
    assert len(found - personal) <= FALSE_ALARMS_ALLOWED, found - personal


def test_audit_finds_every_personal_column_of_pagila(pagila_pg: Backend, tmp_path: Path) -> None:
    assert_finds(labels(audit_of(pagila_pg, tmp_path, "language")), PAGILA_PERSONAL)


def test_audit_finds_every_personal_column_of_sakila(sakila_mysql: Backend, tmp_path: Path) -> None:
    assert_finds(labels(audit_of(sakila_mysql, tmp_path, "language")), PAGILA_PERSONAL)


def test_audit_finds_every_personal_column_of_chinook(
    chinook_pg: Backend, chinook_sqlite: Backend, tmp_path: Path
) -> None:
    assert_finds(labels(audit_of(chinook_pg, tmp_path, "genre")), CHINOOK_PERSONAL)
    # the SQLite edition spells every name in CamelCase: the same columns, by their words
    camel = {f.label for f in audit_of(chinook_sqlite, tmp_path, "Genre").findings}
    assert {words(x) for x in camel} == {
        words(x) for x in labels(audit_of(chinook_pg, tmp_path, "genre"))
    }


# --- the detector on its own (no database) --------------------------------------------------


def table(name: str, *columns: tuple[str, str]) -> Table:
    cols = tuple(Column(c, ColumnType(kind)) for c, kind in columns)
    return Table(TableRef(None, name), (Column("id", ColumnType("integer")), *cols), ("id",))


def detected(t: Table, samples: dict[str, Sequence[Any]]) -> dict[str, str]:
    return {d.column: d.category for d in subsetter.detect_personal(t, samples)}


def test_values_reveal_columns_whose_names_do_not() -> None:
    t = table(
        "ledger",
        ("contact", "string"), ("c2", "string"), ("acct", "string"), ("origin", "string"),
        ("ref", "string"), ("note", "text"), ("hashed", "string"), ("sku", "string"),
        ("blurb", "text"), ("period", "string"), ("country", "string"),
    )  # fmt: skip
    samples = {
        "contact": ["ann@example.org", "bo.b+x@mail.example.co.uk", "c@d.io"],
        "c2": ["4111 1111 1111 1111", "5500005555555559", "378282246310005"],
        "acct": ["DE89370400440532013000", "GB82 WEST 1234 5698 7654 32", "NL91ABNA0417164300"],
        "origin": ["10.0.0.1", "192.168.1.20", "8.8.8.8"],
        "ref": ["078-05-1120", "219-09-9999", "457-55-5462"],
        "note": ["Customer asked to call back on +44 20 7946 0958 tomorrow", "fine", "ok"],
        "hashed": ["5f4dcc3b5aa765d61d8327deb882cf99", "e10adc3949ba59abbe56e057f20f883e",
                   "25d55ad283aa400af464c76d713c07ad"],
        "sku": ["AB-1234", "CD-5678", "EF-0001"],
        "blurb": ["A Epic Drama of a Feminist And a Mad Scientist in The Canadian Rockies"] * 3,
        "period": ["[2022-05-24 22:53:30+00,2022-05-26 22:04:30+00)"] * 3,
        "country": ["France", "Peru", "Japan"],
    }  # fmt: skip
    assert detected(t, samples) == {
        "contact": "email",
        "c2": "card_number",
        "acct": "iban",
        "origin": "ip_address",
        "ref": "national_id",
        "note": "free_text",
        "hashed": "secret",
    }


def test_names_reveal_columns_and_context_decides_the_ambiguous_ones() -> None:
    people = table(
        "CustomerContacts",
        ("FirstName", "string"), ("name", "string"), ("DOB", "date"), ("zipCode", "string"),
        ("mobile_phone", "string"), ("pwd_hash", "string"), ("api_token", "string"),
        ("city", "string"), ("created_at", "timestamp"), ("status", "string"),
        ("address_id", "integer"), ("geo_location", "other"),
    )  # fmt: skip
    assert detected(people, {}) == {
        "FirstName": "first_name",
        "name": "name",
        "DOB": "date_of_birth",
        "zipCode": "postal_code",
        "mobile_phone": "phone",
        "pwd_hash": "secret",
        "api_token": "secret",
        "city": "city",
        "geo_location": "location",
    }
    # a bare "name" or "city" in a lookup table is not about a person
    assert detected(table("genre", ("name", "string"), ("city", "string")), {}) == {}


# --- the CLI, and the masked Pagila example -------------------------------------------------


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner(env=env).invoke(app, list(args))


def test_masked_pagila_example_passes_the_audit_and_runs(
    pagila_pg: Backend, make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    example = REPO / "configs" / "pagila-masked.yml"
    env = {"PAGILA_URL": pagila_pg.url, "SUBSET_MASK_KEY": ""}

    gate = invoke("audit", str(example), "--fail-on-unmasked", env=env)
    assert gate.exit_code == 0, gate.output
    assert "0 unmasked" in gate.output

    as_json = invoke("audit", str(example), "--format", "json", env=env)
    doc = json.loads(as_json.output)
    assert doc["unmasked"] == 0 and {c["table"] + "." + c["column"] for c in doc["columns"]} >= (
        PAGILA_PERSONAL
    )

    # without masks the same source fails the gate with exit 3, naming the columns
    bare = tmp_path / "bare.yml"
    bare.write_text(f"source:\n  url: {pagila_pg.url}\npassthrough: [language]\n")
    failed = invoke("audit", str(bare), "--fail-on-unmasked")
    assert failed.exit_code == 3 and "customer.email" in failed.output

    # the run needs the key, then masks every listed column
    target = make_backend("sqlite")
    env["PAGILA_TARGET_URL"] = target.url
    config = subsetter.load_config(example, environ=env)
    with pytest.raises(subsetter.ConfigError, match="mask_key"):
        run_into(config, target)
    config = subsetter.load_config(example, environ={**env, "SUBSET_MASK_KEY": "k1"})
    result = run_into(config, target)
    assert result.verification is not None and result.verification.ok
    assert set(result.masked) == PAGILA_PERSONAL - {"actor.first_name", "actor.last_name"} | {
        "customer.create_date", "payment.amount",
    }  # fmt: skip
    source = {r["customer_id"]: r for r in oracle.rows(pagila_pg, "customer")}
    copied = oracle.rows(target, "customer")
    assert len(copied) == 50
    for row in copied:
        original = source[row["customer_id"]]
        for column in ("first_name", "last_name", "email", "create_date"):
            assert row[column] != original[column], column
    assert {r["password"] for r in oracle.rows(target, "staff")} == {None}


def test_presidio_is_used_for_free_text_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Presidio is optional: absent, free text without patterns passes; present, it is asked."""
    t = table("ticket", ("body", "text"))
    texts = {"body": ["Spoke with Maria Lopez from Lisbon about the refund"] * 3}
    monkeypatch.setitem(sys.modules, "presidio_analyzer", None)  # not installed
    assert detected(t, texts) == {}

    class Result:
        def __init__(self, entity_type: str) -> None:
            self.entity_type, self.score = entity_type, 0.85

    class AnalyzerEngine:
        def analyze(self, text: str, language: str) -> list[Result]:
            assert language == "en"
            return [Result("PERSON"), Result("LOCATION")] if "Maria" in text else []

    monkeypatch.setitem(
        sys.modules, "presidio_analyzer", SimpleNamespace(AnalyzerEngine=AnalyzerEngine)
    )
    assert detected(t, texts) == {"body": "free_text"}
    assert detected(t, {"body": ["A Epic Drama of a Feminist And a Mad Scientist"] * 3}) == {}


def test_init_suggests_masks_that_fit_and_pass_the_audit(
    pagila_pg: Backend, tmp_path: Path
) -> None:
    text = subsetter.init_config(pagila_pg.url, out_dir=tmp_path)
    config = subsetter.parse_config(text, tmp_path / "init.yml", {"SUBSET_MASK_KEY": "k"})
    assert set(config.masks) == PAGILA_PERSONAL
    result = subsetter.audit(config)
    assert result.unmasked == [] and len(result.findings) == len(PAGILA_PERSONAL)
    made, catalog = subsetter.plan_subset(config)
    assert plan_masks(catalog, made, config).masked()  # every suggestion fits its column
