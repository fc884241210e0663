"""Stage 1: reflect the source into a Catalog and add the config's virtual foreign keys."""

from __future__ import annotations

from subsetter.catalog import Catalog, ForeignKey, did_you_mean
from subsetter.config import Config
from subsetter.dialects import Dialect
from subsetter.errors import ConfigError


def reflect_source(dialect: Dialect, config: Config) -> Catalog:
    """Read the source schema and add ``virtual_foreign_keys``, each checked against it."""
    catalog = dialect.reflect(config.source.schemas)
    if not catalog.tables:
        schemas = ", ".join(config.source.schemas or ["the default schema"])
        raise ConfigError(
            f"{config.locate('source', 'url')}no tables found in {schemas} of {dialect.describe()}"
        )
    return with_virtual_foreign_keys(catalog, config)


def with_virtual_foreign_keys(catalog: Catalog, config: Config) -> Catalog:
    """Return the catalog with the config's virtual foreign keys added, validated by name."""
    virtual = []
    for i, vfk in enumerate(config.virtual_foreign_keys):
        child_spec, parent_spec = vfk.child_spec, vfk.parent_spec
        child = catalog.resolve(child_spec.table, config.locate("virtual_foreign_keys", i, "child"))
        parent = catalog.resolve(
            parent_spec.table, config.locate("virtual_foreign_keys", i, "parent")
        )
        for side, ref, columns in (
            ("child", child, child_spec.columns),
            ("parent", parent, parent_spec.columns),
        ):
            known = catalog.table(ref).column_names
            for col in columns:
                if col not in known:
                    where = config.locate("virtual_foreign_keys", i, side)
                    raise ConfigError(
                        f'{where}no column "{col}" in table {ref}.{did_you_mean(col, known)}'
                    )
        virtual.append(
            ForeignKey(
                child,
                child_spec.columns,
                parent,
                parent_spec.columns,
                None,
                virtual=True,
                condition=vfk.where,
            )
        )
    if not virtual:
        return catalog
    return Catalog(
        catalog.tables,
        catalog.foreign_keys + tuple(virtual),
        catalog.default_schema,
        catalog.dialect,
    )
