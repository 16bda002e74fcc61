"""Whether two builds of the same tables agree: the contract between the DuckDB and the Spark paths.

Two frames agree when they hold the same keys, every column the same NULLs, every text the same
value and every number within a relative 1e-9 (a sum or a mean added up in another order). A difference names the column, the number of rows that differ
and the first of them, so a parity failure says which feature to look at.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

RELATIVE = 1e-9


@dataclass(frozen=True)
class Difference:
    column: str
    rows: int
    example: str


def _frame(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    out = frame.copy()
    for k in keys:
        if k == "as_of" or "date" in k:
            out[k] = pd.to_datetime(out[k]).dt.date
    return out.sort_values(keys).set_index(keys)


def _numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)


def compare(left: pd.DataFrame, right: pd.DataFrame, *, keys: list[str]) -> list[Difference]:
    """Every difference between ``left`` and ``right`` (rows matched on ``keys``); none when they agree."""
    a, b = _frame(left, keys), _frame(right, keys)
    out = []
    if set(a.columns) != set(b.columns):
        out.append(
            Difference(
                "(columns)",
                0,
                f"only left {sorted(set(a.columns) - set(b.columns))}, "
                f"only right {sorted(set(b.columns) - set(a.columns))}",
            )
        )
    if not a.index.equals(b.index):
        only = a.index.difference(b.index).union(b.index.difference(a.index))
        return [*out, Difference("(keys)", len(only), f"{only[0]} is in one build only")]
    for column in [c for c in a.columns if c in b.columns]:
        x, y = a[column], b[column]
        null_x, null_y = x.isna().to_numpy(), y.isna().to_numpy()
        differs = null_x != null_y
        both = ~(null_x | null_y)
        if _numeric(x) and _numeric(y):
            u = x.to_numpy(dtype="float64", na_value=np.nan)
            v = y.to_numpy(dtype="float64", na_value=np.nan)
            close = np.abs(u - v) <= RELATIVE * np.maximum(np.abs(u), np.abs(v))
            differs |= both & ~close
        else:
            differs |= both & (x.astype(str).to_numpy() != y.astype(str).to_numpy())
        if differs.any():
            first = int(np.flatnonzero(differs)[0])
            out.append(
                Difference(column, int(differs.sum()), f"{a.index[first]}: {x.iloc[first]!r} against {y.iloc[first]!r}")
            )
    return out
