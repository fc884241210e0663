"""Engine support: one module per engine behind ``Dialect``, found through an explicit registry.

Drivers are imported lazily, so a missing driver only matters when its engine is used, and then
the error says which package to install.
"""

from __future__ import annotations

import importlib

from sqlalchemy.engine import URL, make_url

from subsetter.catalog import did_you_mean
from subsetter.dialects.base import Dialect, TypeChoice, hidden_password_url
from subsetter.errors import ConfigError, UnsupportedError

#: URL backend -> "module:Class", and the package that brings its driver.
REGISTRY: dict[str, tuple[str, str]] = {
    "postgresql": ("subsetter.dialects.postgres:PostgresDialect", "psycopg[binary]"),
    "mysql": ("subsetter.dialects.mysql:MySQLDialect", "pymysql"),
    "mariadb": ("subsetter.dialects.mysql:MySQLDialect", "pymysql"),
    "sqlite": ("subsetter.dialects.sqlite:SQLiteDialect", "sqlite3 (part of Python)"),
    "duckdb": ("subsetter.dialects.duckdb:DuckDBDialect", "duckdb"),
}
_ALIASES = {"postgres": "postgresql", "pgsql": "postgresql"}
_DRIVERS = {"postgresql": "psycopg", "mysql": "pymysql", "mariadb": "pymysql"}


def dialect_for(url: str, what: str = "URL") -> Dialect:
    """Return the dialect for a database URL; ``what`` names the URL in errors."""
    try:
        parsed = make_url(url)
    except Exception:
        raise ConfigError(
            f'{what}: "{hidden_password_url(url)}" is not a database URL '
            "(expected e.g. postgresql://user@host/db or sqlite:///file.db)"
        ) from None
    backend = _ALIASES.get(parsed.get_backend_name(), parsed.get_backend_name())
    if backend not in REGISTRY:
        hint = did_you_mean(backend, REGISTRY)
        raise UnsupportedError(
            f'{what}: unsupported database "{backend}" (supported: {", ".join(REGISTRY)}).{hint}'
        )
    target, package = REGISTRY[backend]
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnsupportedError(
            f"{what}: the {backend} driver is not installed ({exc.name}); "
            f"run: pip install {package}"
        ) from None
    cls: type[Dialect] = getattr(module, class_name)
    driver = _DRIVERS.get(backend)
    normalized: URL = parsed.set(drivername=f"{backend}+{driver}" if driver else backend)
    return cls(normalized)


__all__ = ["REGISTRY", "Dialect", "TypeChoice", "dialect_for", "hidden_password_url"]
