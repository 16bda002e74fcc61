"""The feature catalog (features/catalog.yaml) read into strict pydantic models.

A typo in the catalog is an error that names the file and the entry; so is a reason template
that names a feature the catalog does not have.
"""

from __future__ import annotations

import hashlib
import re
import string
from enum import StrEnum
from functools import cache, cached_property
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlglot import exp

from scoring.data import schema
from scoring.errors import ScoringError
from scoring.features.sql import Kind, SnippetError, columns_of, parse_snippet, parse_tree


class CatalogError(ScoringError, ValueError):
    """The catalog file is invalid; the message names the file and the entry."""

    code = "invalid_catalog"
    status = None
    title_zh = "特征目录文件有误"


class Monotone(StrEnum):
    INCREASING = "increasing"  # a higher value may only raise the risk
    DECREASING = "decreasing"
    NONE = "none"

    @property
    def constraint(self) -> int:
        return {"increasing": 1, "decreasing": -1, "none": 0}[self.value]


Aggregation = Literal[
    "count",
    "sum",
    "max",
    "min",
    "mean",
    "count_distinct",
    "last",
    "months_since_last",
    "active",
    "expression",
    "category",
    "derived",
    "peer_percentile",
]


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid")

    table: str
    date: str
    # 信用修复: the column with the repair date, and (optionally) the condition that makes that date a repair
    repaired_from: str | None = None
    repaired_when: str | None = None

    @model_validator(mode="after")
    def _known_table(self) -> Source:
        if self.table not in schema.TABLES:
            raise ValueError(f"unknown table {self.table!r}")
        cols = schema.TABLES[self.table].column_names
        for c in (self.date, self.repaired_from):
            if c is not None and c not in cols:
                raise ValueError(f"table {self.table} has no column {c!r}")
        return self


class Feature(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label_zh: str
    description: str
    owner: str  # the domain (department) that owns the source and answers for the feature
    source: str
    aggregation: Aggregation
    window_months: int | None = Field(default=None, gt=0)
    offset_months: int = Field(default=0, ge=0)
    column: str | None = None
    expression: str | None = None
    filter: str | None = None
    date: str | None = None
    end: str | None = None
    categories: list[str] | None = None
    of: str | None = None  # peer_percentile: the feature ranked within the same industry and division
    # peer_percentile, tied values: ``low`` the share of peers with a lower value (the default), ``high``
    # the share with a value not higher. Where most peers tie at the best value (a utility bill paid in
    # full), ``high`` puts them all at 1, not at a share below them that moves from month to month.
    ties: Literal["low", "high"] = "low"
    default: float | None = None
    unit: str | None = None
    monotone: Monotone
    monotone_reason: str
    reason_template: str
    missing_template: str | None = None
    absent_template: str | None = None
    value_labels: dict[int, str] | None = None
    in_model: bool = True
    # A window reaching before the first month of its source's records: ``missing`` gives NULL, not a
    # count, sum or ratio over part of the window; ``kept`` keeps what the shorter history shows (a
    # latest value, found there, is the latest of the whole window). Unset: ``kept`` for ``last`` and
    # ``months_since_last``, ``missing`` for every other windowed aggregation.
    partial_window: Literal["missing", "kept"] | None = None

    @model_validator(mode="after")
    def _shape(self) -> Feature:
        needs_column = {"sum", "max", "min", "mean", "count_distinct", "last"}
        if self.aggregation in needs_column and not self.column:
            raise ValueError(f"aggregation {self.aggregation} needs `column`")
        if self.aggregation in {"expression", "derived", "category"} and not self.expression:
            raise ValueError(f"aggregation {self.aggregation} needs `expression`")
        if self.aggregation == "category":
            if not self.categories:
                raise ValueError("a category feature needs `categories`")
            if self.monotone != Monotone.NONE:
                raise ValueError("a category feature cannot be monotone")
        if self.aggregation == "peer_percentile" and not self.of:
            raise ValueError("aggregation peer_percentile needs `of` (the feature to rank among peers)")
        if self.ties != "low" and self.aggregation != "peer_percentile":
            raise ValueError("`ties` is for aggregation peer_percentile only")
        if self.aggregation == "active" and not self.end:
            raise ValueError("aggregation active needs `end` (the column that ends the record)")
        if self.partial_window is not None and not self.window_months:
            raise ValueError("`partial_window` needs `window_months`")
        return self

    @property
    def is_categorical(self) -> bool:
        return self.aggregation == "category"

    @property
    def needs_full_window(self) -> bool:
        """Whether the value is missing when the window reaches before its source's first records."""
        if not self.window_months:
            return False  # all the history there is: no window to fall short of
        if self.partial_window is not None:
            return self.partial_window == "missing"
        return self.aggregation not in ("last", "months_since_last")

    @property
    def reach_months(self) -> int:
        """How many months before the as-of date the window starts (0 without a window)."""
        return (self.window_months or 0) + self.offset_months if self.window_months else 0

    def template_names(self, template: str | None = None) -> set[str]:
        return set(_template_fields(template or self.reason_template))


@cache  # a batch renders millions of reasons from a few hundred templates
def _template_fields(template: str) -> frozenset[str]:
    """The names a reason template's fields read (``{a}``, ``{a:.0f}``, ``{a[0]}`` all read ``a``)."""
    return frozenset(re.split(r"[.\[]", field)[0] for _, field, _, _ in string.Formatter().parse(template) if field)


class Catalog(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int
    disputed_records: Literal["count", "exclude"] = "count"
    sources: dict[str, Source]
    features: list[Feature]

    @model_validator(mode="after")
    def _consistent(self) -> Catalog:
        names = [f.name for f in self.features]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"duplicate feature names {sorted(dupes)}")
        known = set(names) | {"value"}
        base = {f.name for f in self.features if f.aggregation not in ("derived", "peer_percentile")}
        for f in self.features:
            where = f"feature {f.name!r}"
            if f.source not in self.sources:
                raise ValueError(f"{where}: unknown source {f.source!r}")
            table = schema.TABLES[self.sources[f.source].table]
            for c in (f.column, f.date, f.end):
                if c is not None and c not in table.column_names:
                    raise ValueError(f"{where}: table {table.name} has no column {c!r}")
            for template in (f.reason_template, f.missing_template, f.absent_template):
                if template is None:
                    continue
                unknown = f.template_names(template) - known - ({"label"} if f.value_labels else set())
                if unknown:
                    raise ValueError(f"{where}: template names unknown values {sorted(unknown)}")
            if f.aggregation == "peer_percentile" and (f.of not in names or f.of == f.name):
                raise ValueError(f"{where}: `of` must name another feature, not {f.of!r}")
            self._check_snippets(f, where, table.column_names, set(names), base)
        for name, src in self.sources.items():
            if src.repaired_when:
                try:
                    parse_snippet(src.repaired_when, kind="filter", names=set(schema.TABLES[src.table].column_names))
                except SnippetError as exc:
                    raise ValueError(f"source {name!r}: repaired_when: {exc}") from exc
        return self

    @staticmethod
    def _check_snippets(f: Feature, where: str, columns: list[str], features: set[str], base: set[str]) -> None:
        """Parse the feature's SQL snippets (sql.py): allowed constructs only, known columns only."""
        checks: list[tuple[str, str, Kind, set[str]]] = []
        if f.filter is not None:
            checks.append(("filter", f.filter, "filter", set(columns)))
        if f.expression is not None:
            derived = f.aggregation == "derived"
            checks.append(
                (
                    "expression",
                    f.expression,
                    "derived" if derived else "expression",
                    features if derived else set(columns),
                )
            )
        for field, text, kind, names in checks:
            try:
                tree = parse_snippet(text, kind=kind, names=names)
            except SnippetError as exc:
                raise ValueError(f"{where}: {field}: {exc}") from exc
            if kind == "derived" and not (columns_of(tree) and columns_of(tree) <= base):
                raise ValueError(
                    f"{where}: a derived expression must reference features that are neither derived nor peer percentiles (those are computed after it)"
                )

    @property
    def digest(self) -> str:
        """A hash of every definition: snapshots built from another catalog are rebuilt."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]

    @property
    def model_features(self) -> list[Feature]:
        """Features the models use, in catalog order (this order is the model's column order)."""
        return [f for f in self.features if f.in_model]

    def feature(self, name: str) -> Feature:
        return self.by_name[name]

    @cached_property
    def labels_zh(self) -> dict[str, str]:
        """Each feature's Chinese label, by name (every decision labels its 130-odd inputs)."""
        return {name: f.label_zh for name, f in self.by_name.items()}

    @cached_property
    def by_name(self) -> dict[str, Feature]:
        # serving looks up every input's label per decision: a scan of 120 features cost 0.8 ms
        return {f.name: f for f in self.features}

    @cached_property
    def snippet_trees(self) -> dict[tuple[str, str], exp.Expr]:
        """Every feature's filter and expression parsed (checked when the catalog loaded), by (name, field)."""
        return {
            (f.name, field): parse_tree(text)
            for f in self.features
            for field, text in (("filter", f.filter), ("expression", f.expression))
            if text is not None
        }

    def snippet(self, name: str, field: Literal["filter", "expression"]) -> exp.Expr:
        """The parsed ``filter`` or ``expression`` of feature ``name`` (shared: copy it to change it)."""
        return self.snippet_trees[(name, field)]

    def categories_of(self, names: list[str]) -> dict[str, list[str]]:
        """The category lists of the categorical features among ``names`` (what ``encode_matrix`` takes)."""
        return {n: self.feature(n).categories or [] for n in names if self.feature(n).is_categorical}


def load_catalog(path: Path) -> Catalog:
    """Read and validate the catalog; errors name the file and the entry."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogError(f"{path}: cannot read the catalog: {exc}") from exc
    try:
        return Catalog.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = list(err["loc"])
            if len(loc) >= 2 and loc[0] == "features" and isinstance(loc[1], int):
                entry = raw["features"][loc[1]]
                name = entry.get("name", f"#{loc[1]}") if isinstance(entry, dict) else f"#{loc[1]}"
                loc = [f"features[{name}]", *loc[2:]]
            lines.append(f"{path}: {'.'.join(map(str, loc))}: {err['msg']}")
        raise CatalogError("\n".join(lines)) from exc


def catalog_hash(path: Path) -> str:
    """A short content hash recorded with every model trained on this catalog."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
