"""The catalog's SQL snippets: parsed when the catalog loads, checked, and printed for each engine.

A filter, an aggregate expression or a derived feature's formula is a small piece of SQL written
as DuckDB reads it. SQLGlot parses it once; the tree is checked against an allow-list of
constructs, and each column it names must be a column of the source's table (or, in a derived
formula, a feature of the catalog). So a catalog error names the feature and the construct before
any engine sees the SQL, and the same tree is printed for DuckDB or for Spark.

Constructs whose meaning differs between the engines have one definition per engine here, never a
mechanical transpile:
- ``date_diff('month', a, b)`` counts month boundaries crossed (2023-12-31 to 2024-01-01 is 1), as
  DuckDB does; Spark's ``datediff(MONTH, ...)`` counts whole elapsed months, so Spark gets the
  boundary count from years and months;
- ``arg_max(x, d)``, the value of ``x`` on the latest ``d``, skips rows where ``x`` is NULL, as
  DuckDB does; Spark's ``max_by`` would return the NULL, so Spark gets ``max_by`` over the rows
  whose ``x`` is not NULL (and ``arg_min`` the same way); two rows on the latest date give the
  greater ``x`` on both engines (each would otherwise take whichever row it met first);
- a division by zero is ``inf`` in DuckDB and an error in Spark's ANSI mode, so a snippet may
  divide only by ``nullif(x, 0)`` or by a number other than zero, and both engines give NULL.

SQLGlot is the library made for this (a parser and printer for both dialects); what is written
here is only the allow-list and the two engine-specific meanings it cannot know.
"""

from __future__ import annotations

from typing import Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

Engine = Literal["duckdb", "spark"]
Kind = Literal["filter", "expression", "derived"]

AS_OF = "AS_OF"  # the as-of date in a snippet (a DATE)

# every construct a snippet may contain; the allowed functions are named nodes of SQLGlot's tree
_VALUES = (exp.Column, exp.Identifier, exp.Literal, exp.Null, exp.Boolean, exp.Paren, exp.Var)
_LOGIC = (exp.And, exp.Or, exp.Not, exp.Is, exp.In, exp.Between)
_COMPARE = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)
_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Neg)
_SCALAR = (exp.Case, exp.If, exp.Nullif, exp.Coalesce, exp.Abs, exp.Least, exp.Greatest, exp.DateDiff)
_AGGREGATE = (
    exp.Sum,
    exp.Avg,
    exp.Count,
    exp.Max,
    exp.Min,
    exp.StddevSamp,
    exp.ArgMax,
    exp.ArgMin,
    exp.Star,
    exp.Distinct,
)
ALLOWED: dict[Kind, tuple[type[exp.Expr], ...]] = {
    "filter": (*_VALUES, *_LOGIC, *_COMPARE, *_ARITHMETIC, *_SCALAR),
    "expression": (*_VALUES, *_LOGIC, *_COMPARE, *_ARITHMETIC, *_SCALAR, *_AGGREGATE),
    "derived": (*_VALUES, *_LOGIC, *_COMPARE, *_ARITHMETIC, *_SCALAR),
}


class SnippetError(ValueError):
    """A snippet the catalog cannot take: the message names the construct and the snippet."""


def _construct(node: exp.Expr) -> str:
    if isinstance(node, exp.Anonymous):
        return f"function {node.name}()"
    if isinstance(node, exp.Func):
        return f"function {node.sql_name()}()"
    return node.key.upper()


def parse_snippet(text: str, *, kind: Kind, names: set[str]) -> exp.Expr:
    """Parse ``text`` and check it: only the constructs of ``kind``; every column among ``names``
    (the source table's columns, or the catalog's features for a derived formula) or ``AS_OF``."""
    try:
        statements = sqlglot.parse(text, dialect="duckdb")
    except ParseError as exc:
        raise SnippetError(f"cannot parse {text!r}: {exc.errors[0]['description'] if exc.errors else exc}") from exc
    if len(statements) != 1 or statements[0] is None:
        raise SnippetError(f"{text!r} must be one expression, not {len(statements)} statements")
    tree = statements[0]
    allowed = ALLOWED[kind]
    for node in tree.walk():
        if not isinstance(node, allowed):
            raise SnippetError(f"{_construct(node)} is not allowed in a {kind} ({text!r})")
        if isinstance(node, exp.DateDiff) and (node.unit is None or node.text("unit").lower() != "month"):
            raise SnippetError(f"date_diff is allowed in months only ({text!r})")
        if isinstance(node, exp.Column) and node.name != AS_OF and node.name not in names:
            raise SnippetError(f"unknown column {node.name!r} in {text!r}")
        if isinstance(node, exp.AggFunc) and node.find_ancestor(exp.AggFunc) is not None:
            raise SnippetError(f"an aggregate inside an aggregate is not allowed ({text!r})")
        if isinstance(node, exp.Column) and node.table:
            raise SnippetError(f"column {node.sql()!r}: name a column without its table ({text!r})")
        if isinstance(node, exp.Div) and not _safe_denominator(node.expression):
            raise SnippetError(
                f"divide by nullif(x, 0) or by a number other than 0, not by {node.expression.sql()!r}: "
                f"a zero denominator is inf in DuckDB and an error in Spark ({text!r})"
            )
    return tree


def _safe_denominator(node: exp.Expr) -> bool:
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Nullif):
        zero = node.expression
        return isinstance(zero, exp.Literal) and not zero.is_string and float(zero.this) == 0
    return isinstance(node, exp.Literal) and not node.is_string and float(node.this) != 0


def parse_tree(text: str) -> exp.Expr:
    """A snippet already checked by :func:`parse_snippet`, parsed again (DuckDB's SQL)."""
    return sqlglot.parse_one(text, dialect="duckdb")


def columns_of(tree: exp.Expr) -> set[str]:
    """The column names a snippet reads (``AS_OF`` left out)."""
    return {c.name for c in tree.find_all(exp.Column)} - {AS_OF}


def _month_boundaries_spark(node: exp.DateDiff) -> exp.Expr:
    # DuckDB's date_diff('month', a, b) is the number of month boundaries between a and b
    a, b = node.expression, node.this  # SQLGlot keeps date_diff(unit, a, b) as this=b, expression=a
    years = exp.Paren(this=exp.Sub(this=exp.Year(this=b.copy()), expression=exp.Year(this=a.copy())))
    months = exp.Sub(this=exp.Month(this=b.copy()), expression=exp.Month(this=a.copy()))
    return exp.Paren(this=exp.Add(this=exp.Mul(this=years, expression=exp.Literal.number(12)), expression=months))


def _by_value(node: exp.ArgMax | exp.ArgMin, engine: Engine) -> exp.Expr:
    """``arg_max(x, d)``: ``x`` of the latest ``d`` whose ``x`` is not NULL, and of two rows on that
    date the greater ``x`` (``arg_min``: earliest, lesser), ordered by the pair (d, x) on both engines.
    DuckDB's arg_max skips a row whose x is NULL; Spark's max_by does not, so Spark orders by a pair
    that is NULL where x is."""
    value, order = node.this, node.expression
    if engine == "spark":
        known = exp.Not(this=exp.Is(this=exp.Paren(this=value.copy()), expression=exp.Null()))
        pair = exp.Anonymous(this="struct", expressions=[order.copy(), value.copy()])
        key: exp.Expr = exp.Case(ifs=[exp.If(this=known, true=pair)])
    else:
        key = exp.Anonymous(this="row", expressions=[order.copy(), value.copy()])
    return type(node)(this=value.copy(), expression=key)


def meaning(tree: exp.Expr, engine: Engine) -> exp.Expr:
    """``tree`` (DuckDB's SQL) with the constructs whose meaning the catalog fixes, or whose meaning
    differs between the engines, written to mean the same on ``engine``; inner constructs first, so
    an outer one is built of their meaning."""
    if engine == "spark":
        tree = tree.transform(lambda n: _month_boundaries_spark(n) if isinstance(n, exp.DateDiff) else n)
    return tree.transform(lambda n: _by_value(n, engine) if isinstance(n, exp.ArgMax | exp.ArgMin) else n)


def render(tree: exp.Expr, engine: Engine, *, as_of: str) -> str:
    """The snippet as ``engine``'s SQL, ``AS_OF`` replaced by the SQL expression ``as_of``."""
    marker = exp.column("__as_of__")
    tree = tree.transform(lambda n: marker.copy() if isinstance(n, exp.Column) and n.name == AS_OF else n)
    return meaning(tree, engine).sql(dialect=engine).replace("__as_of__", f"({as_of})")


def translate(text: str, engine: Engine) -> str:
    """A statement or expression written in DuckDB's SQL, as ``engine``'s SQL meaning the same.

    For the fixed SQL of the project (the labels, the plan's own expressions), not for catalog
    snippets, which :func:`parse_snippet` checks first. DuckDB's text is returned as it is.
    """
    if engine == "duckdb":
        return text
    return meaning(sqlglot.parse_one(text, dialect="duckdb"), engine).sql(dialect="spark")
