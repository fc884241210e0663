"""Masking strategies: one value in, one masked value out, decided by the value and a secret key.

Every strategy is a pure function of (value, ``mask_key``, options): no global random state, no
row position, no table name. That is what makes masking deterministic (the same e-mail gives the
same fake e-mail on every run, in every table, on every engine) and key-consistent (a key column
and the columns referencing it map their values alike).

Randomness comes from ``digest(key, text)``, an HMAC-SHA256 of the value's text form. The text
form is DuckDB's ``CAST(value AS VARCHAR)`` of the staged value, so the SQL form of a strategy
(run inside staging, vectorised) and its Python form (used for Faker, JSON paths and collision
retries) read the same bytes. ``attempt`` > 0 derives a fresh digest for the same value; the mask
stage uses it to resolve collisions on unique columns.

Faker is seeded per value from the digest (``seed_instance`` on a private instance), never through
``random.seed``.
"""

from __future__ import annotations

import bisect
import datetime as dt
import decimal
import hashlib
import hmac
import itertools
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from subsetter.catalog import Column

TEXT_KINDS = frozenset({"string", "text"})
NUMBER_KINDS = frozenset({"integer", "decimal", "float"})
DATE_KINDS = frozenset({"date", "timestamp", "timestamptz"})
DEFAULT_LOCALE = "en_US"
MAX_ATTEMPTS = 50
"""Fresh digests tried per value before a unique column's collision is reported."""


@dataclass(frozen=True)
class Strategy:
    """A masking strategy: which column kinds it can write and which options it takes."""

    name: str
    kinds: frozenset[str]
    """Column kinds whose values it can replace with a value of the same kind."""
    options: tuple[str, ...] = ()
    min_length: int = 1
    """Shortest string column that still holds a meaningful output (shorter: config error)."""
    faker: str | None = None
    """The Faker provider method producing the value, for realistic fakes."""
    spread: bool = True
    """Whether distinct inputs give distinct outputs often enough to keep a column unique."""
    summary: str = ""


def _s(name: str, kinds: frozenset[str], summary: str, **kw: Any) -> Strategy:
    return Strategy(name, kinds, summary=summary, **kw)


_FAKE_TEXT = TEXT_KINDS
_FAKES: dict[str, tuple[str, int, frozenset[str]]] = {
    # name: (Faker method, min length, kinds)
    "first_name": ("first_name", 3, _FAKE_TEXT),
    "last_name": ("last_name", 3, _FAKE_TEXT),
    "name": ("name", 6, _FAKE_TEXT),
    "email": ("email", 12, _FAKE_TEXT),
    "user_name": ("user_name", 6, _FAKE_TEXT),
    "phone": ("phone_number", 7, _FAKE_TEXT),
    "street_address": ("street_address", 10, _FAKE_TEXT),
    "secondary_address": ("secondary_address", 5, _FAKE_TEXT),
    "city": ("city", 4, _FAKE_TEXT),
    "state": ("state", 2, _FAKE_TEXT),
    "postcode": ("postcode", 4, _FAKE_TEXT),
    "country": ("country", 4, _FAKE_TEXT),
    "company": ("company", 6, _FAKE_TEXT),
    "job": ("job", 6, _FAKE_TEXT),
    "url": ("url", 12, _FAKE_TEXT),
    "ipv4": ("ipv4", 15, _FAKE_TEXT | {"other"}),
    "ipv6": ("ipv6", 39, _FAKE_TEXT | {"other"}),
    "iban": ("iban", 15, _FAKE_TEXT),
    "credit_card": ("credit_card_number", 16, _FAKE_TEXT),
    "ssn": ("ssn", 9, _FAKE_TEXT),
    "text": ("text", 5, _FAKE_TEXT),
    "paragraph": ("paragraph", 5, _FAKE_TEXT),
    "date_of_birth": ("date_of_birth", 10, _FAKE_TEXT | {"date", "timestamp", "timestamptz"}),
}

STRATEGIES: dict[str, Strategy] = {
    "keep": _s("keep", frozenset({"*"}), "leave the column as it is (reviewed: not personal)"),
    "null": _s("null", frozenset({"*"}), "NULL", spread=False),
    "constant": _s(
        "constant", frozenset({"*"}), "one value for every row", options=("value",), spread=False
    ),
    "hash": _s(
        "hash",
        TEXT_KINDS | {"integer", "uuid", "binary"},
        "keyed HMAC-SHA256: hex truncated to fit (integers: a number; uuids: a uuid)",
        options=("length",),
        min_length=4,
    ),
    "redact": _s("redact", TEXT_KINDS, "'*' repeated to the value's length class", spread=False),
    "partial": _s(
        "partial",
        TEXT_KINDS,
        "'*' except the last `keep` characters",
        options=("keep",),
        spread=False,
    ),
    "noise": _s("noise", NUMBER_KINDS, "value * (1 ± up to `relative`)", options=("relative",)),
    "date_shift": _s(
        "date_shift", DATE_KINDS, "moved by 1..`max_days` days", options=("max_days",)
    ),
    **{
        name: _s(name, kinds, f"Faker {method}()", options=("locale",), min_length=n, faker=method)
        for name, (method, n, kinds) in _FAKES.items()
    },
}

OPTION_DEFAULTS: dict[str, Any] = {"keep": 4, "relative": 0.1, "max_days": 30}


def digest(key: bytes, text: str, attempt: int = 0) -> bytes:
    """HMAC-SHA256 of a value's text form; ``attempt`` > 0 gives an independent digest."""
    message = text if attempt == 0 else f"{text}\x00{attempt}"
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def check_fit(strategy: Strategy, column: Column, options: Mapping[str, Any]) -> str | None:
    """Why ``strategy`` cannot write ``column``'s values, or None when it fits."""
    kind = column.type.kind
    # PostgreSQL inet/cidr: the only engine-specific type a fake can write
    inet = column.type.native.lower().startswith(("inet", "cidr"))
    if kind == "other" and strategy.faker in {"ipv4", "ipv6"} and not inet:
        return f"strategy {strategy.name} writes addresses; the column is {_type(column)}"
    if "*" not in strategy.kinds and kind not in strategy.kinds:
        kinds = ", ".join(sorted(strategy.kinds))
        return f"strategy {strategy.name} writes {kinds} values; the column is {_type(column)}"
    if strategy.name == "null" and not column.nullable:
        return "the column is NOT NULL; strategy null cannot fit (use constant or a fake)"
    if strategy.name == "constant":
        return _constant_fits(column, options.get("value"))
    length = column.type.length
    if kind in TEXT_KINDS and length is not None:
        wanted = int(options.get("length") or 0) if strategy.name == "hash" else 0
        if length < max(strategy.min_length, wanted):
            return (
                f"strategy {strategy.name} needs at least {max(strategy.min_length, wanted)} "
                f"characters; the column is {_type(column)}"
            )
    if strategy.name == "hash" and kind == "integer" and column.type.bits < 16:
        return f"an integer of {column.type.bits} bits is too narrow for hash"
    return None


def _type(column: Column) -> str:
    return column.type.native or column.type.kind


def _constant_fits(column: Column, value: Any) -> str | None:
    kind = column.type.kind
    if value is None:
        return None if column.nullable else "the column is NOT NULL; the constant is null"
    if kind in TEXT_KINDS:
        if not isinstance(value, str):
            return f"the column is text; write the constant in quotes ({value!r})"
        if column.type.length is not None and len(value) > column.type.length:
            return f"the constant is {len(value)} characters; the column is {_type(column)}"
        return None
    if kind in NUMBER_KINDS:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else f"the column is {_type(column)}; the constant is not a number"
    if kind == "boolean":
        return None if isinstance(value, bool) else "the column is boolean; use true or false"
    if kind == "enum" and str(value) not in column.type.values:
        return f"the constant is not one of the column's values ({', '.join(column.type.values)})"
    return None


def hash_length(column: Column, options: Mapping[str, Any]) -> int:
    """Hex digits a text hash keeps: ``length``, else 64, cut to the column's length."""
    wanted = int(options.get("length") or 64)
    return min(wanted, 64, column.type.length or 64)


def redact_length(length: int, column_length: int | None) -> int:
    """The value's length class: the next power of two, at least 4, at most the column's."""
    out = 4
    while out < length:
        out *= 2
    return min(out, column_length) if column_length else out


def _integer_range(column: Column) -> int:
    return int(2 ** (min(column.type.bits, 64) - 1)) - 1


def _unit(d: bytes) -> float:
    """A number in [-1, 1) from 52 bits of the digest, the same in SQL and Python."""
    return (int(d.hex()[:13], 16) / 2**52) * 2 - 1


def _fraction(d: bytes) -> float:
    """A number in [0, 1) from 53 bits of the digest (bytes 8..15, independent of ``_unit``)."""
    return (int.from_bytes(d[8:16], "big") >> 11) / 2**53


_WORD_LISTS = {
    "first_name": "first_names",
    "last_name": "last_names",
    "state": "states",
    "job": "jobs",
}
"""Fakes that are one weighted word of a Faker locale list: picked directly by the digest."""


def _shift_days(d: bytes, max_days: int) -> int:
    """1..max_days days either way (never 0: a shifted date must differ from the original)."""
    r = int(d.hex()[:15], 16) % (2 * max_days)
    return r - max_days if r < max_days else r - max_days + 1


class Masker:
    """Python forms of the strategies, bound to a key; holds one Faker instance per locale."""

    def __init__(self, key: bytes, locale: str = DEFAULT_LOCALE) -> None:
        self.key = key
        self.locale = locale
        self._fakers: dict[str, Any] = {}
        self._lists: dict[tuple[str, str], tuple[list[str], list[float]] | None] = {}

    def faker(self, locale: str) -> Any:
        """A private Faker instance (never the module-level random state)."""
        if locale not in self._fakers:
            from faker import Faker  # imported on use: most runs mask nothing

            self._fakers[locale] = Faker(locale)
        return self._fakers[locale]

    def _word_list(self, locale: str, name: str) -> tuple[list[str], list[float]] | None:
        """The locale's words for a list-based fake (names, states, jobs), with their weights."""
        attribute = _WORD_LISTS.get(name)
        if attribute is None:
            return None
        if (locale, name) not in self._lists:
            providers = self.faker(locale).get_providers()
            found = next((getattr(p, attribute) for p in providers if hasattr(p, attribute)), None)
            entry: tuple[list[str], list[float]] | None
            if not found or not all(isinstance(w, str) for w in found):
                entry = None
            elif isinstance(found, Mapping):
                entry = (
                    list(found),
                    list(itertools.accumulate(float(w) for w in found.values())),
                )
            else:
                entry = (list(found), [float(i) for i in range(1, len(found) + 1)])
            self._lists[(locale, name)] = entry
        return self._lists[(locale, name)]

    def value(
        self,
        strategy: Strategy,
        options: Mapping[str, Any],
        column: Column,
        value: Any,
        text: str,
        attempt: int = 0,
    ) -> Any:
        """Mask one non-null value; ``text`` is its DuckDB VARCHAR form."""
        name = strategy.name
        if name == "keep":
            return value
        if name == "null":
            return None
        if name == "constant":
            return options.get("value")
        d = digest(self.key, text, attempt)
        kind = column.type.kind
        if name == "hash":
            return _hash_value(d, column, options)
        if name == "redact":
            return "*" * redact_length(len(text), column.type.length)
        if name == "partial":
            keep = int(options.get("keep", OPTION_DEFAULTS["keep"]))
            return "*" * len(text) if len(text) <= keep else "*" * (len(text) - keep) + text[-keep:]
        if name == "noise":
            relative = float(options.get("relative", OPTION_DEFAULTS["relative"]))
            noisy = float(value) * (1 + relative * _unit(d))
            if kind == "integer":
                limit = _integer_range(column)
                return max(-limit, min(limit, round(noisy)))
            if kind == "decimal":
                return _fit_decimal(noisy, column)
            return noisy
        if name == "date_shift":
            days = _shift_days(d, int(options.get("max_days", OPTION_DEFAULTS["max_days"])))
            return value + dt.timedelta(days=days)
        assert strategy.faker is not None, name
        locale = str(options.get("locale") or self.locale)
        words = self._word_list(locale, name)
        if words is not None:  # a weighted pick from the locale's list: ~30x faster than Faker
            pool, cumulative = words
            out: Any = pool[bisect.bisect_right(cumulative, _fraction(d) * cumulative[-1])]
        else:
            fake = self.faker(locale)
            fake.seed_instance(int.from_bytes(d[:8], "big"))
            out = getattr(fake, strategy.faker)()
        if isinstance(out, dt.date) and kind in TEXT_KINDS:
            out = out.isoformat()
        if isinstance(out, str) and column.type.length is not None:
            out = out[: column.type.length]
        if out == value and attempt < MAX_ATTEMPTS:  # a fake must never be the original itself
            return self.value(strategy, options, column, value, text, attempt + 1)
        return out


def _fit_decimal(number: float, column: Column) -> decimal.Decimal:
    """``number`` at the column's scale, inside NUMERIC(p, s): noise must not overflow."""
    scale = column.type.scale or 0
    step = decimal.Decimal(1).scaleb(-scale)
    out = decimal.Decimal(number).quantize(step)
    if column.type.precision:
        top = decimal.Decimal(10) ** (column.type.precision - scale) - step
        out = max(-top, min(top, out))
    return out


def _hash_value(d: bytes, column: Column, options: Mapping[str, Any]) -> Any:
    kind = column.type.kind
    if kind == "integer":
        return int(d.hex()[:15], 16) % _integer_range(column) + 1
    if kind == "uuid":
        return str(uuid.UUID(bytes=d[:16]))
    if kind == "binary":
        return d
    return d.hex()[: hash_length(column, options)]


Sql = tuple[str, list[Any]]
"""A DuckDB expression over ``{col}`` and its parameters."""


def hmac_sql(key: bytes, text_sql: str) -> Sql:
    """HMAC-SHA256 of ``text_sql`` as lowercase hex, in DuckDB SQL (no extension needed).

    HMAC(K, m) = H((K xor opad) || H((K xor ipad) || m)) with the 64-byte block of SHA-256;
    ``sha256`` of a BLOB and ``unhex`` are core DuckDB functions.
    """
    block = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
    inner = bytes(b ^ 0x36 for b in block)
    outer = bytes(b ^ 0x5C for b in block)
    pads = f"unhex('{outer.hex()}')", f"unhex('{inner.hex()}')"
    return f"sha256({pads[0]} || unhex(sha256({pads[1]} || encode({text_sql}))))", []


def sql_form(
    strategy: Strategy, options: Mapping[str, Any], column: Column, key: bytes
) -> Sql | None:
    """The strategy as a DuckDB expression over ``{col}``, or None where only Python can do it.

    Equal to ``Masker.value`` with ``attempt=0`` for every value (a test holds them together).
    """
    name, kind = strategy.name, column.type.kind
    text = "CAST({col} AS VARCHAR)"
    if name == "null":
        return "NULL", []
    if name == "constant":
        return "?", [options.get("value")]
    if name == "redact":
        limit = column.type.length
        cls = "greatest(4, CAST(pow(2, ceil(log2(greatest(length({col}), 1)))) AS BIGINT))"
        return (f"repeat('*', least({cls}, {limit}))" if limit else f"repeat('*', {cls})"), []
    if name == "partial":
        keep = int(options.get("keep", OPTION_DEFAULTS["keep"]))
        return (
            f"CASE WHEN length({{col}}) <= {keep} THEN repeat('*', length({{col}})) "
            f"ELSE repeat('*', length({{col}}) - {keep}) || right({{col}}, {keep}) END"
        ), []
    if name not in {"hash", "noise", "date_shift"} or kind in {"uuid", "binary"}:
        return None
    mac, params = hmac_sql(key, text)
    if name == "hash":
        if kind == "integer":
            return f"(('0x' || left({mac}, 15))::BIGINT % {_integer_range(column)}) + 1", params
        return f"left({mac}, {hash_length(column, options)})", params
    if name == "noise":
        relative = float(options.get("relative", OPTION_DEFAULTS["relative"]))
        unit = f"((('0x' || left({mac}, 13))::BIGINT)::DOUBLE / {2**52}.0 * 2 - 1)"
        noisy = f"(CAST({{col}} AS DOUBLE) * (1 + {relative!r} * {unit}))"
        if kind == "decimal":
            return None  # Python's Decimal rounding is the reference; SQL rounds differently
        if kind == "integer":
            top = _integer_range(column)
            return f"greatest({-top}, least({top}, round({noisy})))", params
        return noisy, params
    max_days = int(options.get("max_days", OPTION_DEFAULTS["max_days"]))
    r = f"((('0x' || left({mac}, 15))::BIGINT) % {2 * max_days})"
    days = f"(CASE WHEN {r} < {max_days} THEN {r} - {max_days} ELSE {r} - {max_days} + 1 END)"
    return f"({{col}} + INTERVAL ({days}) DAY)", params
