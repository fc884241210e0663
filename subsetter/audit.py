"""Find columns that look personal, so none leaves production unmasked by oversight.

``detect_personal(table, samples)`` is the detector: pure, no I/O. It reads a column's name
(split into words, so ``BillingPostalCode``, ``billing_postal_code`` and ``billingpostalcode``
read alike where they can) and a sample of its values, and says which kind of personal data
the column seems to hold and which mask fits it. Names find most columns; values find the rest
(e-mail addresses, card numbers that pass Luhn, IBANs that pass mod 97, IP addresses, US social
security numbers) and free text that contains any of these. Where Microsoft Presidio is installed
(``pip install 'subsetter[presidio]'``), it also reads free text for names, phones and addresses.

``audit(config)`` (pipeline.py) samples each table cheaply (``LIMIT``, never a full scan);
``audit_config`` runs the detector and marks what the config masks or keeps (``subset audit``);
``suggest_masks`` turns findings into masks that fit their columns (``subset init``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from subsetter.catalog import Catalog, Table, TableRef
from subsetter.config import Config
from subsetter.mask import column_label, in_unique_key, plan_masks
from subsetter.strategies import STRATEGIES, check_fit

SAMPLE_ROWS = 200
"""Rows read per table: enough to see a pattern, cheap on any table size."""

Samples = Mapping[TableRef, Mapping[str, Sequence[Any]]]
"""Sampled values per table and column."""

_TEXTUAL = frozenset({"string", "text", "json"})


@dataclass(frozen=True)
class Detection:
    """One column that looks personal: what it seems to hold, why, and a mask that fits."""

    column: str
    category: str
    reason: str
    suggestion: str


@dataclass(frozen=True)
class _NameRule:
    category: str
    pattern: re.Pattern[str]
    suggestion: str
    person_table: bool = False
    """Only in tables about people or addresses (a bare ``name`` or ``city`` elsewhere is not)."""


def _words(*alternatives: str) -> re.Pattern[str]:
    return re.compile(r"(^|_)(" + "|".join(alternatives) + r")($|_)")


_NAME_RULES: tuple[_NameRule, ...] = (
    _NameRule("secret", _words(r"pass(word|wd)?(_hash)?", "pwd", r"\w*secret", r"\w*token",
                               "api_key", "access_key", "private_key", "salt", "otp"), "null"),
    _NameRule("email", _words(r"e?_?mail(_address)?", "email_addr"), "email"),
    _NameRule("date_of_birth", _words("dob", "birth_?date", "date_of_birth", "birthday", "born",
                                      "birth_day"), "date_shift"),
    _NameRule("national_id", _words("ssn", "social_security(_number)?", "national_id", "nin",
                                    "passport(_no|_number)?", "tax_id", "tin", "vat_id",
                                    r"driver_?s?_licen[cs]e(_number)?", "id_card"), "hash"),
    _NameRule("card_number", _words(r"(credit_)?card(_number|_no|_num)", "cc_?(number|num|no)",
                                    "pan", "cvv", "cvc"), "credit_card"),
    _NameRule("iban", _words("iban", "bic", "swift", r"(bank_)?account_(number|no)"), "iban"),
    _NameRule("ip_address", _words("ip", r"ip_?(v[46]_)?addr(ess)?", "client_ip", "remote_addr",
                                   "ip_v4", "ip_v6"), "ipv4"),
    _NameRule("phone", _words(r"\w*phone(_number|_no)?", "mobile", "cell", "fax", "tel",
                              "telephone"), "phone"),
    _NameRule("first_name", _words(r"first_?name", "given_name", "forename", "fname"),
              "first_name"),
    _NameRule("last_name", _words(r"last_?name", "surname", "family_name", "lname",
                                  "maiden_name"), "last_name"),
    _NameRule("name", _words(r"full_?name", "contact_name", r"middle_?name", "display_name",
                             "customer_name", "person_name"), "name"),
    _NameRule("username", _words(r"user_?name", "login", "screen_name", "nickname", "handle"),
              "hash"),
    _NameRule("address", _words(r"\w*address\d?", r"\w*street(_address)?", r"addr\d?",
                                r"address_line_?\d"), "street_address"),
    _NameRule("postal_code", _words(r"\w*postal_?code", r"\w*post_?code", r"\w*zip(_?code)?"),
              "postcode"),
    _NameRule("name", _words("name"), "name", person_table=True),
    _NameRule("city", _words(r"\w*city"), "city", person_table=True),
    _NameRule("photo", _words("picture", "photo", "avatar", "portrait", "selfie"), "null",
              person_table=True),
    _NameRule("location", _words("location", "geo_?location", "coordinates", "gps", "lat",
                                 "latitude", "lng", "lon", "longitude", "geom"),
              "null", person_table=True),
)  # fmt: skip

_PERSON_TABLES = _words(
    r"\w*(customer|client|user|person|people|employee|staff|member|contact|patient|account|"
    r"author|student|applicant|subscriber|invoice|billing|shipping|address)s?"
)
"""Tables whose rows describe a person (or where a person gets mail)."""

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)*\.[A-Za-z]{2,}")
_SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_IPV4 = re.compile(r"^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$")
_IPV6 = re.compile(r"^[0-9A-Fa-f:]{2,39}$")
_PHONE = re.compile(
    r"(?<![\w.:+-])(?:\+\d{1,3}[ .-]?(?:\(?\d{1,4}\)?[ .-]?){2,4}\d{2,4}"  # +44 20 7946 0958
    r"|(?:\(\d{3}\) ?|\d{3}[.-])\d{3}[.-]\d{4})(?![\w.:-])"  # (555) 123-4567, 555-123-4567
)
_HASHED = re.compile(
    r"^(\$2[aby]?\$\d\d\$.{53}|\$argon2\w*\$.+|[0-9a-f]{32}|[0-9a-f]{40}|[0-9a-f]{64})$"
)


def words(name: str) -> str:
    """A name as lower-case words joined by ``_``: ``BillingCity`` -> ``billing_city``."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", spaced)
    return re.sub(r"[^a-z0-9]+", "_", spaced.lower()).strip("_")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _iban_ok(text: str) -> bool:
    raw = text.replace(" ", "")
    moved = raw[4:] + raw[:4]
    number = "".join(str(int(ch, 36)) for ch in moved)
    return 15 <= len(raw) <= 34 and int(number) % 97 == 1


def _cards(text: str) -> bool:
    for match in _CARD.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and _luhn(digits) and len(set(digits)) > 1:
            return True
    return False


_VALUE_TESTS: tuple[tuple[str, str, Any], ...] = (
    ("email", "email", lambda v: _EMAIL.fullmatch(v.strip()) is not None),
    ("card_number", "credit_card", lambda v: _cards(v) and len(re.sub(r"[\d -]", "", v)) == 0),
    ("iban", "iban", lambda v: _IBAN.fullmatch(v.strip()) is not None and _iban_ok(v.strip())),
    ("national_id", "hash", lambda v: _SSN.fullmatch(v.strip()) is not None),
    ("ip_address", "ipv4", lambda v: _IPV4.match(v.strip()) is not None),
    ("ip_address", "ipv6", lambda v: ":" in v and _IPV6.match(v.strip()) is not None
     and v.count(":") >= 2),
)  # fmt: skip
"""(category, suggestion, test) for a column whose values *are* one such thing."""

_TEXT_TESTS: tuple[tuple[str, Any], ...] = (
    ("e-mail addresses", lambda v: _EMAIL.search(v) is not None),
    ("card numbers", _cards),
    ("IBANs", lambda v: any(_iban_ok(m.group()) for m in _IBAN.finditer(v))),
    ("social security numbers", lambda v: _SSN.search(v) is not None),
    ("phone numbers", lambda v: _PHONE.search(v) is not None),
)
"""What free text may contain."""


def detect_personal(
    table: Table, samples: Mapping[str, Sequence[Any]] | None = None
) -> list[Detection]:
    """Columns of ``table`` that look personal, by name and by sampled values."""
    samples = samples or {}
    person_table = _PERSON_TABLES.search(words(table.ref.name)) is not None
    found: list[Detection] = []
    for column in table.columns:
        name = words(column.name)
        if column.type.kind in {"integer", "uuid"} and (
            column.name in table.primary_key or name == "id" or name.endswith("_id")
        ):
            continue  # surrogate keys and references identify rows, not people
        values = [v for v in samples.get(column.name, ()) if v is not None]
        texts = [v if isinstance(v, str) else str(v) for v in values]
        hit = _by_name(column.name, name, person_table) or _by_values(column.type.kind, texts)
        if hit is not None:
            found.append(Detection(column.name, *hit))
    return found


def _by_name(original: str, name: str, person_table: bool) -> tuple[str, str, str] | None:
    for rule in _NAME_RULES:
        if (person_table or not rule.person_table) and rule.pattern.search(name):
            return rule.category, f'column name "{original}"', rule.suggestion
    return None


def _by_values(kind: str, texts: list[str]) -> tuple[str, str, str] | None:
    if kind not in _TEXTUAL or not texts:
        return None
    for category, suggestion, test in _VALUE_TESTS:
        hits = sum(1 for t in texts if test(t))
        if hits * 2 >= len(texts) and hits >= min(3, len(texts)):
            return category, f"{hits}/{len(texts)} sampled values look like {category}", suggestion
    if all(_HASHED.match(t) for t in texts) and len(texts) >= 3:
        return "secret", "sampled values look like password hashes or tokens", "null"
    for what, test in _TEXT_TESTS:
        hits = sum(1 for t in texts if len(t) > 20 and test(t))
        if hits:
            return "free_text", f"{hits}/{len(texts)} sampled texts contain {what}", "redact"
    entities = presidio_entities(texts)
    if entities:
        return "free_text", f"Presidio finds {', '.join(entities)} in sampled texts", "redact"
    return None


def presidio_entities(texts: Sequence[str]) -> list[str]:
    """Personal entities Microsoft Presidio finds in free text; [] when it is not installed."""
    long = [t for t in texts if len(t) > 20][:50]
    if not long:
        return []
    try:
        from presidio_analyzer import AnalyzerEngine
    except ImportError:
        return []
    analyzer = _presidio_analyzer(AnalyzerEngine)
    wanted = {"PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN",
              "IP_ADDRESS", "LOCATION"}  # fmt: skip
    found: set[str] = set()
    for text in long:
        for result in analyzer.analyze(text=text, language="en"):
            if result.entity_type in wanted and result.score >= 0.6:
                found.add(result.entity_type)
    # a location or a person's name now and then is normal in descriptions: want several
    return sorted(found) if found - {"PERSON", "LOCATION"} or len(found) >= 2 else []


_ANALYZERS: dict[Any, Any] = {}


def _presidio_analyzer(engine: Any) -> Any:
    """One Presidio analyzer per process: building it loads a language model (seconds)."""
    if engine not in _ANALYZERS:
        _ANALYZERS[engine] = engine()
    return _ANALYZERS[engine]


# ---------------------------------------------------------------------------- audit of a config


@dataclass(frozen=True)
class Finding:
    """A personal-looking column of the source and what the config does about it."""

    table: str
    column: str
    category: str
    reason: str
    suggestion: str
    masked: str | None
    """The config's rule for it (``keep`` included), or None when the config does nothing."""

    @property
    def label(self) -> str:
        return f"{self.table}.{self.column}"


@dataclass(frozen=True)
class AuditResult:
    """Every personal-looking column found, and which of them no mask covers."""

    source: str
    findings: tuple[Finding, ...]
    tables: int
    sample_rows: int

    @property
    def unmasked(self) -> list[Finding]:
        return [f for f in self.findings if f.masked is None]

    def to_dict(self) -> dict[str, Any]:
        """The ``--format json`` document."""
        return {
            "source": self.source,
            "tables_sampled": self.tables,
            "sample_rows_per_table": self.sample_rows,
            "unmasked": len(self.unmasked),
            "columns": [
                {
                    "table": f.table,
                    "column": f.column,
                    "category": f.category,
                    "reason": f.reason,
                    "suggested_mask": f.suggestion,
                    "masked": f.masked,
                }
                for f in self.findings
            ],
        }


def audit_catalog(
    catalog: Catalog,
    samples: Samples,
    masked: Mapping[str, str],
    source: str = "",
    sample_rows: int = SAMPLE_ROWS,
) -> AuditResult:
    """Run the detector on every table; ``masked`` maps ``table.column`` to its rule."""
    findings = []
    for ref in sorted(catalog.tables):
        label = column_label(catalog, ref, "").rstrip(".")
        for hit in detect_personal(catalog.table(ref), samples.get(ref)):
            rule = masked.get(column_label(catalog, ref, hit.column))
            findings.append(
                Finding(label, hit.column, hit.category, hit.reason, hit.suggestion, rule)
            )
    return AuditResult(source, tuple(findings), len(catalog.tables), sample_rows)


def suggest_masks(catalog: Catalog, samples: Samples) -> dict[str, str]:
    """``table.column`` -> a strategy that fits, for each personal-looking column (``subset init``).

    A suggestion that would not pass ``plan_masks`` (an e-mail fake in a short column, ``null``
    on NOT NULL, a many-to-one strategy on a key) falls back to ``hash``, then to nothing: the
    column then shows up in ``subset audit`` for a person to decide.
    """
    keys = {(fk.child, c) for fk in catalog.foreign_keys for c in fk.columns} | {
        (fk.parent, c) for fk in catalog.foreign_keys for c in fk.ref_columns
    }
    out: dict[str, str] = {}
    for ref in sorted(catalog.tables):
        table = catalog.table(ref)
        for hit in detect_personal(table, samples.get(ref)):
            column = table.column(hit.column)
            key = (ref, hit.column) in keys or in_unique_key(table, hit.column)
            for name in (hit.suggestion, "hash"):
                strategy = STRATEGIES[name]
                if check_fit(strategy, column, {}) is None and (strategy.spread or not key):
                    out[column_label(catalog, ref, hit.column)] = name
                    break
    return out


def audit_config(
    config: Config, catalog: Catalog, samples: Samples, source: str, sample_rows: int
) -> AuditResult:
    """The audit of a config: findings, each marked with the config's rule for it (if any)."""
    masks = plan_masks(catalog, None, config, need_key=False)
    rules = dict(masks.masked())
    rules.update({k: "keep" for k in masks.kept})
    return audit_catalog(catalog, samples, rules, source, sample_rows)
