"""The YAML config file as strict, frozen Pydantic models.

``load_config(path)`` reads the file, substitutes ``${VAR}`` and ``${VAR:-default}`` from the
environment, validates it, and reports any problem as one ``ConfigError`` that names the file,
the line and the key: ``prod.yml:14:5 seeds[1].table: ...``.
"""

from __future__ import annotations

import hashlib
import os
import re
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from subsetter.errors import ConfigError
from subsetter.strategies import STRATEGIES

_ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")
_COLUMNS_SPEC = re.compile(r"^\s*([^()]+?)\s*\(\s*([^()]+?)\s*\)\s*$")

KeyPath = tuple[str | int, ...]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(_Strict):
    """Where the subset is read from."""

    url: str = Field(description="SQLAlchemy URL of the source database.")
    schemas: tuple[str, ...] | None = Field(
        default=None, description="Schemas to read; default: the URL's default schema."
    )


LoadMode = Literal["create", "replace", "truncate", "append"]
OnConflict = Literal["error", "skip", "update"]


class TargetConfig(_Strict):
    """A named database the subset can be loaded into, and how to treat what it holds."""

    url: str = Field(description="SQLAlchemy URL of the target database.")
    mode: LoadMode = Field(
        default="create",
        description="create: new tables (fail if they exist); replace: drop and recreate them; "
        "truncate: empty existing tables and load; append: insert into existing tables.",
    )
    on_conflict: OnConflict = Field(
        default="error",
        description="append only: a row whose key is already there fails the run (error), is "
        "left as it is (skip) or is overwritten (update).",
    )
    allow_disabling_fk_checks: bool = Field(
        default=False,
        description="truncate/append: a cycle of NOT NULL, non-deferrable foreign keys may be "
        "loaded with the target's foreign-key checks off, then verified.",
    )
    protected: bool = Field(
        default=False,
        description="Never write to this database: every run into it is refused (a name kept "
        "in the file for `subset verify`, or to stop a copy-paste from loading into it).",
    )

    @model_validator(mode="after")
    def _conflict_needs_append(self) -> TargetConfig:
        if self.on_conflict != "error" and self.mode != "append":
            raise ValueError(f'on_conflict only applies to mode "append" (mode is "{self.mode}")')
        return self


class Seed(_Strict):
    """Rows the subset starts from."""

    table: str = Field(description='Table name, "table" or "schema.table".')
    where: str | None = Field(
        default=None, description="SQL condition, run on the source as written."
    )
    percent: float | None = Field(
        default=None, gt=0, le=100, description="Deterministic sample of this percentage of rows."
    )
    limit: int | None = Field(default=None, gt=0, description="At most this many rows.")
    order_by: str | None = Field(
        default=None, description="SQL ORDER BY for limit; default: the primary key."
    )
    children: bool = Field(
        default=True, description="Also take the rows that reference these rows, transitively."
    )
    seed: int | None = Field(
        default=None,
        description="Changes which rows a percent (or an unordered limit) sample picks; "
        "the same number picks the same rows on every run and machine.",
    )

    @model_validator(mode="after")
    def _order_needs_limit(self) -> Seed:
        if self.order_by is not None and self.limit is None:
            raise ValueError("order_by only makes sense with limit")
        if self.seed is not None and self.percent is None and self.limit is None:
            raise ValueError("seed only changes a sample: add percent or limit")
        if self.seed is not None and self.order_by is not None:
            raise ValueError("seed changes an unordered sample; remove order_by or seed")
        return self


class Relation(_Strict):
    """How the closure treats one foreign key going downstream (parent row -> its children)."""

    child: str = Field(description='The table holding the foreign key: "table" or "schema.table".')
    parent: str = Field(description="The table it points at.")
    columns: tuple[str, ...] | None = Field(
        default=None,
        description="The child's key columns; needed only when several keys join the two tables.",
    )
    follow: bool | Literal["always"] = Field(
        default=True,
        description="true: downstream rows pull their children; false: never; always: every "
        "row in the subset does, even one taken only as somebody's parent.",
    )
    limit: int | None = Field(default=None, gt=0, description="At most N children per parent row.")
    order_by: str | None = Field(
        default=None, description="SQL ORDER BY choosing which children the limit keeps."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Relation:
        if self.order_by is not None and self.limit is None:
            raise ValueError("order_by only makes sense with limit")
        if self.follow is False and self.limit is not None:
            raise ValueError("limit caps children of a followed relation; follow is false")
        if self.columns is not None and not all(c.strip() for c in self.columns):
            raise ValueError("columns has an empty column name")
        return self


class ColumnsSpec(_Strict):
    """``table(col, col)`` parsed."""

    table: str
    columns: tuple[str, ...]


class VirtualForeignKey(_Strict):
    """A relation the schema does not declare, e.g. ``child: rental(inventory_id)``."""

    child: str = Field(description='"table(column, ...)" holding the reference.')
    parent: str = Field(description='"table(column, ...)" being referenced.')
    where: str | None = Field(
        default=None,
        description="SQL condition on the child row (polymorphic keys, e.g. "
        "\"commentable_type = 'Post'\"): only rows matching it reference this parent.",
    )

    @model_validator(mode="after")
    def _parse(self) -> VirtualForeignKey:
        child, parent = self.child_spec, self.parent_spec
        if len(child.columns) != len(parent.columns):
            raise ValueError(
                f"child has {len(child.columns)} column(s) but parent has {len(parent.columns)}"
            )
        return self

    @property
    def child_spec(self) -> ColumnsSpec:
        return _parse_columns_spec(self.child, "child")

    @property
    def parent_spec(self) -> ColumnsSpec:
        return _parse_columns_spec(self.parent, "parent")


class Budget(_Strict):
    """Limits on the staged subset: a run stops before loading anything when one is exceeded."""

    max_rows: int | None = Field(
        default=None, gt=0, description="Most rows the whole subset may hold."
    )
    max_bytes: int | None = Field(
        default=None,
        gt=0,
        description="Most bytes the whole subset may hold, estimated from the source's row sizes.",
    )
    tables: dict[str, PositiveInt] = Field(
        default_factory=dict, description='Most rows per table: {"schema.table" or "table": rows}.'
    )
    warn_percent: float = Field(
        default=50,
        gt=0,
        le=100,
        description="`subset plan` warns when a table is expected to exceed this share of its "
        "source.",
    )


class MaskRule(_Strict):
    """How one column is masked: a strategy with its options, a JSON path map, or a hook.

    Written in YAML as a strategy name (``email``), or a mapping (``{strategy: noise,
    relative: 0.1}``, ``{json: {"$.email": email}}``, ``{hook: "module:function"}``).
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        json_schema_extra=lambda schema: _with_short_forms(schema),
    )

    strategy: str | None = Field(
        default=None,
        description="A built-in strategy's name.",
        json_schema_extra={"enum": [*sorted(STRATEGIES), None]},
    )
    hook: str | None = Field(default=None, description='Your function, "module:function".')
    json_paths: dict[str, MaskRule] | None = Field(
        default=None, alias="json", description='Rules inside a JSON value by path ("$.a.b").'
    )
    value: str | int | float | bool | None = Field(default=None, description="constant: the value.")
    keep: int | None = Field(default=None, ge=0, description="partial: characters kept at the end.")
    length: int | None = Field(default=None, ge=4, le=64, description="hash: hex digits kept.")
    relative: float | None = Field(default=None, gt=0, le=10, description="noise: max change.")
    max_days: int | None = Field(default=None, ge=1, description="date_shift: max days moved.")
    locale: str | None = Field(default=None, description="Faker locale, e.g. de_DE.")

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, data: Any) -> Any:
        if data is None:  # `column: null` unquoted in YAML still means the null strategy
            return {"strategy": "null"}
        return {"strategy": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _one_kind(self) -> MaskRule:
        kinds = [k for k in ("strategy", "hook", "json") if self.field(k) is not None]
        if len(kinds) != 1:
            raise ValueError("give exactly one of strategy, json, hook")
        if self.strategy is not None:
            if self.strategy not in STRATEGIES:
                from subsetter.catalog import did_you_mean

                hint = did_you_mean(self.strategy, STRATEGIES)
                raise ValueError(
                    f'unknown strategy "{self.strategy}".{hint} '
                    f"Strategies: {', '.join(sorted(STRATEGIES))}"
                )
            allowed = STRATEGIES[self.strategy].options
            for option in self.options:
                if option not in allowed:
                    takes = f"takes {', '.join(allowed)}" if allowed else "takes no options"
                    raise ValueError(f"{option} is not an option of {self.strategy} ({takes})")
        elif self.options:
            raise ValueError(f"{', '.join(self.options)}: options need a strategy")
        if self.hook is not None and not re.match(r"^[\w.]+:\w+$", self.hook):
            raise ValueError(f'hook must look like "module:function", got "{self.hook}"')
        for path in self.json_paths or {}:
            if not path.startswith("$"):
                raise ValueError(f'JSON path "{path}" must start with "$" (e.g. "$.email")')
        return self

    def field(self, name: str) -> Any:
        return self.json_paths if name == "json" else getattr(self, name)

    @property
    def options(self) -> dict[str, Any]:
        """The strategy options that were given (``value`` counts when the key is present)."""
        given = self.model_fields_set
        names = ("value", "keep", "length", "relative", "max_days", "locale")
        return {n: getattr(self, n) for n in names if n in given}

    def describe(self) -> str:
        """``email``, ``noise(relative=0.1)``, ``hook mod:fn``, ``json($.email, $.card)``."""
        if self.hook:
            return f"hook {self.hook}"
        if self.json_paths is not None:
            return f"json({', '.join(self.json_paths)})"
        opts = {k: v for k, v in self.options.items() if k != "value"}
        args = ", ".join(f"{k}={v}" for k, v in opts.items())
        return f"{self.strategy}({args})" if args else str(self.strategy)


def _with_short_forms(schema: dict[str, Any]) -> None:
    """A rule may also be written as a strategy's name, or as null (the null strategy)."""
    rule = {k: schema.pop(k) for k in list(schema) if k not in ("title", "description")}
    schema["anyOf"] = [{"type": "string", "enum": sorted(STRATEGIES)}, {"type": "null"}, rule]


class Config(_Strict):
    """A whole subsetter config file."""

    source: SourceConfig
    targets: dict[str, TargetConfig] = Field(default_factory=dict)
    seeds: tuple[Seed, ...] = ()
    passthrough: tuple[str, ...] = Field(default=(), description="Tables copied whole.")
    exclude: tuple[str, ...] = Field(default=(), description="Tables never copied.")
    virtual_foreign_keys: tuple[VirtualForeignKey, ...] = ()
    relations: tuple[Relation, ...] = Field(
        default=(), description="Per-relation policy: follow, limit and order of children."
    )
    max_depth: int | None = Field(
        default=None, ge=0, description="Downward steps from a seed row; default unlimited."
    )
    budget: Budget = Field(default_factory=Budget, description="Limits on the subset's size.")
    masks: dict[str, MaskRule] = Field(
        default_factory=dict, description='"table.column" (or "schema.table.column") -> rule.'
    )
    mask_key: SecretStr | None = Field(
        default=None, description="Secret that makes masking deterministic; never printed."
    )
    locale: str | None = Field(default=None, description="Default Faker locale, e.g. en_US.")

    _path: Path | None = PrivateAttr(default=None)
    _sha256: str = PrivateAttr(default="")
    _positions: Mapping[KeyPath, tuple[int, int]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _something_to_copy(self) -> Config:
        if not self.seeds and not self.passthrough:
            raise ValueError("no seeds and no passthrough tables: nothing would be copied")
        return self

    @field_validator("masks")
    @classmethod
    def _column_names(cls, masks: dict[str, MaskRule]) -> dict[str, MaskRule]:
        for name in masks:
            if "." not in name.strip(".") or not all(name.split(".")):
                raise ValueError(f'mask "{name}" must name "table.column" or "schema.table.column"')
        return masks

    @property
    def sha256(self) -> str:
        """Hash of the file's text as written (before ``${VAR}`` substitution: no secrets)."""
        return self._sha256

    @property
    def path(self) -> Path | None:
        """The file this config was read from, if any."""
        return self._path

    def locate(self, *key: str | int) -> str:
        """Return ``"file:line:col key: "``, the prefix of an error about ``key``."""
        name = self._path.name if self._path else "config"
        for cut in range(len(key), 0, -1):
            if key[:cut] in self._positions:
                line, col = self._positions[key[:cut]]
                return f"{name}:{line}:{col} {format_key(key)}: "
        return f"{name} {format_key(key)}: " if key else f"{name}: "

    def target_url(self, name: str) -> str:
        """The URL of the target called ``name``, relative file paths resolved."""
        if name not in self.targets:
            known = ", ".join(sorted(self.targets)) or "none defined"
            raise ConfigError(f'{self.locate("targets")}no target "{name}" (targets: {known})')
        return self.resolve_url(self.targets[name].url)

    @property
    def source_url(self) -> str:
        return self.resolve_url(self.source.url)

    def resolve_url(self, url: str) -> str:
        """Make the path of a file URL (sqlite, duckdb) relative to the config file's folder."""
        return resolve_file_url(url, self._path.parent if self._path else Path.cwd())


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema of the config file, from the models: editors validate and complete it.

    Point an editor at it with ``# yaml-language-server: $schema=<path or URL>`` as the first
    line of the YAML file (``subset schema > subsetter.schema.json``).
    """
    schema = Config.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "subsetter config"
    return schema


def resolve_file_url(url: str, base: Path) -> str:
    """Resolve ``sqlite:///rel.db`` against ``base``; other URLs are returned unchanged."""
    match = re.match(r"^(sqlite|duckdb)(\+\w+)?:///(.*)$", url)
    if not match or not match.group(3) or match.group(3).startswith((":memory:", "/")):
        return url
    path, sep, query = match.group(3).partition("?")
    resolved = (base / path).resolve()
    return f"{match.group(1)}{match.group(2) or ''}:///{resolved}{sep}{query}"


def format_key(key: KeyPath) -> str:
    """Render a key path the way a reader of the YAML file would write it: ``seeds[1].table``."""
    out = ""
    for part in key:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read, interpolate and validate a config file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the config file ({exc.strerror})") from exc
    return parse_config(text, file, os.environ if environ is None else environ)


def parse_config(text: str, file: Path | None, environ: Mapping[str, str]) -> Config:
    """Validate YAML ``text``; ``file`` only names the source in messages and anchors paths."""
    name = file.name if file else "config"
    try:
        return _parse_config(text, file, environ, name)
    except RecursionError:  # thousands of nested brackets: every recursive walk gives up
        raise ConfigError(f"{name}: lists or mappings nest too deeply to be a config") from None


def _parse_config(text: str, file: Path | None, environ: Mapping[str, str], name: str) -> Config:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None:
            _check_aliases(node, name)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        problem = getattr(exc, "problem", None) or str(exc)
        # An unclosed quote or bracket is found at the end of the file: say where it was opened.
        context, opened = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and opened and (not mark or opened.line != mark.line):
            problem += f" ({context} started at line {opened.line + 1}, column {opened.column + 1})"
        raise ConfigError(f"{where}: not valid YAML: {problem}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{name}: expected a mapping with keys source, seeds, ... at the top")
    positions: dict[KeyPath, tuple[int, int]] = {}
    if node is not None:
        _record_positions(node, (), positions)
    data = _interpolate(data, (), environ, name, positions)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe_validation_error(exc, name, positions)) from None
    config._path = file.resolve() if file else None
    config._positions = positions
    config._sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return config


_MAX_EXPANDED_NODES = 100_000


def _check_aliases(root: yaml.Node, name: str) -> None:
    """Refuse an alias that contains itself, and aliases that expand to a huge document.

    ``&a [*a]`` is a list holding itself, and ten nested lists of ten aliases each ("billion
    laughs") expand to 10^10 values: either would make every walk over the config endless.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in open_nodes:
            mark = node.start_mark
            raise ConfigError(
                f"{name}:{mark.line + 1}:{mark.column + 1}: a YAML alias refers to the anchor "
                "that contains it (a recursive structure); write the values out instead"
            )
        open_nodes.add(id(node))
        total = 1
        if isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(item) for item in node.value)
        open_nodes.discard(id(node))
        sizes[id(node)] = total
        if total > _MAX_EXPANDED_NODES:
            raise ConfigError(
                f"{name}: YAML aliases expand this file to more than {_MAX_EXPANDED_NODES:,} "
                "values; a subsetter config is never that large"
            )
        return total

    size(root)


def _record_positions(node: yaml.Node, key: KeyPath, out: dict[KeyPath, tuple[int, int]]) -> None:
    out[key] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            child = (*key, str(k.value))
            out[child] = (k.start_mark.line + 1, k.start_mark.column + 1)
            _record_positions_value(v, child, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _record_positions(item, (*key, i), out)


def _record_positions_value(
    node: yaml.Node, key: KeyPath, out: dict[KeyPath, tuple[int, int]]
) -> None:
    keep = out[key]
    _record_positions(node, key, out)
    out[key] = keep


def _interpolate(
    value: Any,
    key: KeyPath,
    environ: Mapping[str, str],
    name: str,
    positions: Mapping[KeyPath, Any],
) -> Any:
    if isinstance(value, dict):
        return {
            k: _interpolate(v, (*key, str(k)), environ, name, positions) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_interpolate(v, (*key, i), environ, name, positions) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        var, default = match.group(1), match.group(2)
        if var in environ and (environ[var] or default is None):
            return environ[var]
        if default is not None:
            return default
        line = positions.get(key, (0, 0))
        where = f"{name}:{line[0]}:{line[1]}" if key in positions else name
        raise ConfigError(
            f"{where} {format_key(key)}: environment variable {var} is not set "
            f"(set it, or write ${{{var}:-default}})"
        )

    return _ENV_VAR.sub(substitute, value)


def _describe_validation_error(
    exc: ValidationError, name: str, positions: Mapping[KeyPath, tuple[int, int]]
) -> str:
    lines = []
    for err in exc.errors():
        key: KeyPath = tuple(p for p in err["loc"] if isinstance(p, str | int))
        where = name
        for cut in range(len(key), -1, -1):
            if key[:cut] in positions:
                line, col = positions[key[:cut]]
                where = f"{name}:{line}:{col}"
                break
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = f'unknown key "{key[-1]}"' if key else "unknown key"
            allowed = _allowed_keys(key[:-1])
            if allowed:
                from subsetter.catalog import did_you_mean

                message += f" (allowed: {', '.join(allowed)}).{did_you_mean(str(key[-1]), allowed)}"
        elif err["type"] == "missing":
            message = f'missing required key "{key[-1]}"' if key else "missing key"
        label = format_key(key)
        lines.append(f"{where} {label}: {message}" if label else f"{where}: {message}")
    return "\n".join(lines)


def _allowed_keys(parent: KeyPath) -> list[str]:
    model: type[BaseModel] | None = Config
    mapping = False  # the previous key was a dict field: this part is a free key (masks' names)
    for part in parent:
        if model is None:
            return []
        if isinstance(part, int) or mapping:
            mapping = False
            continue
        fields = {f.alias or n: f for n, f in model.model_fields.items()}
        field = fields.get(part)
        if field is None:
            return []
        model = _model_of(field.annotation)
        mapping = any(
            typing.get_origin(a) is dict
            for a in (field.annotation, *typing.get_args(field.annotation))
        )
    return sorted(f.alias or n for n, f in model.model_fields.items()) if model else []


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _parse_columns_spec(text: str, what: str) -> ColumnsSpec:
    match = _COLUMNS_SPEC.match(text)
    if not match:
        raise ValueError(f'{what} must look like "table(column, ...)", got "{text}"')
    columns = tuple(c.strip() for c in match.group(2).split(","))
    if not all(columns):
        raise ValueError(f'{what} has an empty column name in "{text}"')
    return ColumnsSpec(table=match.group(1), columns=columns)
