"""Drift figures: population stability index (PSI), missing-rate changes and grade migration.

Everything here works on arrays and frames already loaded and scored; :mod:`scoring.monitor.run`
gathers them from the warehouse and the registry. PSI compares the share of the current population
in each bin with the reference's, the bins being fixed from the reference alone:

    PSI = sum over bins of (current share - reference share) * ln(current share / reference share)

Below 0.1 is stable by the usual rule, 0.1 to 0.25 a shift worth a look, 0.25 and above a change.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise

import numpy as np
import pandas as pd

MISSING = "(missing)"
OTHER = "(other)"


class Flag(StrEnum):
    """The traffic light of one figure."""

    GREEN = "green"
    AMBER = "amber"
    RED = "red"


@dataclass(frozen=True)
class Thresholds:
    """Where a figure turns amber and red, and how PSI is binned.

    ``epsilon`` stands in for the share of an empty bin, so that a bin the reference never filled
    gives a large but finite term. ``min_segment_rows`` is the size a segment needs on both sides
    before its PSI is flagged: with 10 bins, two samples of 100 drawn from one distribution already
    differ by a PSI of about 0.18 on average (roughly ``(bins - 1) * (1/n_ref + 1/n_cur)``).
    A segment's mean score shift is flagged at the PSI thresholds read in reference standard
    deviations (0.25 of a score's ~120-point spread is ~30 points, odds x1.3 at 80 points to double
    the odds), once it is ``min_shift_z`` standard errors from zero.
    """

    psi_amber: float = 0.1
    psi_red: float = 0.25
    missing_amber: float = 0.05  # absolute change of the share of missing values
    missing_red: float = 0.10
    bins: int = 10
    epsilon: float = 1e-4
    min_segment_rows: int = 100
    min_shift_z: float = 3.0

    def psi_flag(self, value: float) -> Flag:
        return Flag.RED if value >= self.psi_red else Flag.AMBER if value >= self.psi_amber else Flag.GREEN

    def shift_flag(self, shift: float, z: float) -> Flag:
        """A mean shift is flagged by the PSI thresholds read in standard deviations, when it is
        also ``min_shift_z`` standard errors from zero (not the noise of a small segment)."""
        if abs(z) < self.min_shift_z:
            return Flag.GREEN
        return self.psi_flag(abs(shift))

    def missing_flag(self, change: float) -> Flag:
        size = abs(change)
        return Flag.RED if size >= self.missing_red else Flag.AMBER if size >= self.missing_amber else Flag.GREEN


@dataclass(frozen=True)
class Bins:
    """Bins fixed from a reference sample: quantile cut points of a number, or the reference's
    categories; missing values always have a bin of their own (the last one).

    A numeric value ``x`` falls in bin ``i`` when ``cuts[i-1] <= x < cuts[i]`` (the first and last
    bins are open-ended).
    """

    cuts: np.ndarray | None = None  # numeric: sorted distinct cut points
    categories: tuple[str, ...] | None = None  # categorical: the reference's values, then OTHER

    @property
    def labels(self) -> list[str]:
        if self.categories is not None:
            return [*self.categories, OTHER, MISSING]
        assert self.cuts is not None
        edges = ["-inf", *(f"{c:.6g}" for c in self.cuts), "inf"]
        spans = [f"[{lo}, {hi})" for lo, hi in pairwise(edges)]
        return [*spans, MISSING]

    def index(self, values: pd.Series | np.ndarray) -> np.ndarray:
        """The bin of every value (missing values in the last bin)."""
        if self.categories is not None:
            series = pd.Series(values, dtype=object)
            lookup = {c: i for i, c in enumerate(self.categories)}
            known = series.where(series.isna(), series.astype(str)).map(lookup)
            codes = known.fillna(len(self.categories)).to_numpy(dtype=np.int64, copy=True)  # an unseen category
            codes[series.isna().to_numpy()] = len(self.categories) + 1
            return codes
        assert self.cuts is not None
        x = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), dtype=np.float64)
        out = np.searchsorted(self.cuts, x, side="right").astype(np.int64)
        out[np.isnan(x)] = len(self.cuts) + 1
        return out

    def shares(self, values: pd.Series | np.ndarray) -> np.ndarray:
        """The share of ``values`` in each bin (zeros for an empty sample)."""
        counts = np.bincount(self.index(values), minlength=len(self.labels)).astype(np.float64)
        return counts / counts.sum() if counts.sum() else counts


def fit_bins(reference: pd.Series | np.ndarray, *, bins: int = 10, categorical: bool = False) -> Bins:
    """Bins from the reference alone: its categories, its distinct values when there are at most
    ``bins`` of them, else its ``bins`` quantiles, a value that fills more than one quantile (the 0
    of a count) getting a bin of its own."""
    series = pd.Series(reference)
    if categorical:
        return Bins(categories=tuple(sorted(str(v) for v in series.dropna().unique())))
    x = pd.to_numeric(series, errors="coerce").dropna().to_numpy(dtype=np.float64)
    if x.size == 0:  # never observed in the reference: the missing bin and one for any value
        return Bins(cuts=np.array([np.inf]))
    distinct = np.unique(x)
    if distinct.size <= bins:
        return Bins(cuts=distinct)
    quantiles = np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1])
    values, repeats = np.unique(quantiles, return_counts=True)
    heavy = np.nextafter(values[repeats > 1], np.inf)  # [v, next float) holds exactly v
    return Bins(cuts=np.unique(np.concatenate([values, heavy])))


def psi_from_shares(expected: np.ndarray, actual: np.ndarray, epsilon: float = 1e-4) -> float:
    """PSI of two vectors of bin shares; a share below ``epsilon`` counts as ``epsilon``."""
    e, a = np.clip(expected, epsilon, None), np.clip(actual, epsilon, None)
    return float(np.sum((a - e) * np.log(a / e)))


def psi(
    expected: pd.Series | np.ndarray,
    actual: pd.Series | np.ndarray,
    *,
    bins: int = 10,
    categorical: bool = False,
    epsilon: float = 1e-4,
) -> float:
    """PSI of ``actual`` against ``expected``, on bins fixed from ``expected`` (see :class:`Bins`)."""
    if len(expected) == 0 or len(actual) == 0:
        raise ValueError("PSI needs values on both sides; one side is empty")
    fitted = fit_bins(expected, bins=bins, categorical=categorical)
    return psi_from_shares(fitted.shares(expected), fitted.shares(actual), epsilon)


def feature_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: list[str],
    *,
    categorical: set[str],
    labels_zh: dict[str, str],
    thresholds: Thresholds,
    comparable: dict[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Per feature: PSI (the missing bin included) and the change of its missing rate, with flags;
    the largest PSI first.

    ``comparable`` gives, for a feature, the reference rows it is compared on (a boolean mask; all
    rows when absent): the snapshots whose window of that feature was complete. A feature left
    without a row is reported without figures or flags (``compared`` False), after the others.
    """
    rows = []
    for name in features:
        mask = (comparable or {}).get(name)
        ref = reference[name] if mask is None else reference[name][mask]
        row = {"feature": name, "label_zh": labels_zh.get(name, name), "compared": len(ref) > 0}
        if not row["compared"]:
            rows.append(row | dict.fromkeys(_FIGURES, float("nan")) | {"psi_flag": None, "missing_flag": None})
            continue
        fitted = fit_bins(ref, bins=thresholds.bins, categorical=name in categorical)
        value = psi_from_shares(fitted.shares(ref), fitted.shares(current[name]), thresholds.epsilon)
        missing_ref, missing_cur = float(ref.isna().mean()), float(current[name].isna().mean())
        rows.append(
            row
            | {
                "psi": value,
                "psi_flag": thresholds.psi_flag(value).value,
                "missing_reference": missing_ref,
                "missing_current": missing_cur,
                "missing_change": missing_cur - missing_ref,
                "missing_flag": thresholds.missing_flag(missing_cur - missing_ref).value,
            }
        )
    frame = pd.DataFrame(rows, columns=FEATURE_COLUMNS)
    for col in ("psi_flag", "missing_flag"):
        frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
    return frame.sort_values(["compared", "psi", "feature"], ascending=[False, False, True], ignore_index=True)


_FIGURES = ("psi", "missing_reference", "missing_current", "missing_change")
FEATURE_COLUMNS = [
    "feature",
    "label_zh",
    "compared",
    "psi",
    "psi_flag",
    "missing_reference",
    "missing_current",
    "missing_change",
    "missing_flag",
]


def mean_shift(reference: pd.Series | np.ndarray, current: pd.Series | np.ndarray) -> tuple[float, float]:
    """(shift, z): the change of the mean in standard deviations of the reference, and that change
    over its standard error. A location shift that PSI barely sees (a quarter of a standard
    deviation gives a PSI near 0.06) is plain here once the segment is large."""
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    sd = float(np.std(ref, ddof=1)) if ref.size > 1 else 0.0
    if sd == 0 or cur.size < 2:
        return 0.0, 0.0
    shift = (float(cur.mean()) - float(ref.mean())) / sd
    se = float(np.sqrt(np.var(cur, ddof=1) / cur.size + sd**2 / ref.size)) / sd
    return shift, shift / se if se > 0 else 0.0


def segment_psi(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    segments: list[str],
    value: str,
    thresholds: Thresholds,
) -> pd.DataFrame:
    """Per segment (each value of each column in ``segments``): the PSI of ``value`` on bins fixed
    from that segment's own reference, and the shift of its mean (see :func:`mean_shift`).

    A shift in one industry of twenty barely moves the whole population's figures; within the
    industry it shows. A segment smaller than ``min_segment_rows`` on either side is reported but
    not flagged (``flag`` is ``None``): its figures are mostly sampling noise. ``flag`` is the worse
    of ``psi_flag`` and ``shift_flag``.
    """
    rows = []
    for column in segments:
        ref_groups = {k: g[value] for k, g in reference.groupby(column, observed=True, dropna=False)}
        cur_groups = {k: g[value] for k, g in current.groupby(column, observed=True, dropna=False)}
        for key in sorted(set(ref_groups) | set(cur_groups), key=str):
            ref, cur = ref_groups.get(key), cur_groups.get(key)
            n_ref, n_cur = len(ref) if ref is not None else 0, len(cur) if cur is not None else 0
            value_psi, shift, z = float("nan"), float("nan"), float("nan")
            if ref is not None and cur is not None:
                value_psi = psi(ref, cur, bins=thresholds.bins, epsilon=thresholds.epsilon)
                shift, z = mean_shift(ref, cur)
            eligible = min(n_ref, n_cur) >= thresholds.min_segment_rows
            psi_flag = thresholds.psi_flag(value_psi) if eligible else None
            shift_flag = thresholds.shift_flag(shift, z) if eligible else None
            rows.append(
                {
                    "segment": column,
                    "value": str(key),
                    "n_reference": n_ref,
                    "n_current": n_cur,
                    "mean_reference": float(ref.mean()) if ref is not None else float("nan"),
                    "mean_current": float(cur.mean()) if cur is not None else float("nan"),
                    "psi": value_psi,
                    "psi_flag": psi_flag.value if psi_flag else None,
                    "shift_sd": shift,
                    "shift_z": z,
                    "shift_flag": shift_flag.value if shift_flag else None,
                    "flag": worst_of(psi_flag, shift_flag),
                }
            )
    frame = pd.DataFrame(rows, columns=SEGMENT_COLUMNS)
    for col in ("psi_flag", "shift_flag", "flag"):
        frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
    return frame


SEGMENT_COLUMNS = [
    "segment",
    "value",
    "n_reference",
    "n_current",
    "mean_reference",
    "mean_current",
    "psi",
    "psi_flag",
    "shift_sd",
    "shift_z",
    "shift_flag",
    "flag",
]


def worst_of(*flags: Flag | None) -> str | None:
    """The worst of the flags given (``None`` when there is none)."""
    order = [Flag.GREEN, Flag.AMBER, Flag.RED]
    present = [f for f in flags if f is not None]
    return max(present, key=order.index).value if present else None


def migration_matrix(reference: pd.Series, current: pd.Series, order: list[str]) -> pd.DataFrame:
    """Grade migration of the same enterprises: rows the reference grade, columns the current one,
    counts. ``reference`` and ``current`` are indexed by uscc; only enterprises in both count."""
    both = pd.concat({"reference": reference, "current": current}, axis=1, join="inner")
    table = pd.crosstab(
        pd.Categorical(both["reference"], categories=order),
        pd.Categorical(both["current"], categories=order),
        dropna=False,
    )
    table.index.name, table.columns.name = "reference", "current"
    return table.reindex(index=order, columns=order, fill_value=0).astype(int)


def migration_by_segment(paired: pd.DataFrame, *, segment: str, order: list[str]) -> pd.DataFrame:
    """Per segment value, of the enterprises graded at both dates: how many, the mean change of the
    score, and the shares moved to a worse and to a better grade (``order`` runs from the best)."""
    rank = {g: i for i, g in enumerate(order)}
    moved = paired["grade_current"].map(rank) - paired["grade_reference"].map(rank)
    frame = pd.DataFrame(
        {
            segment: paired[segment].astype(str),
            "score_change": paired["score_current"] - paired["score_reference"],
            "downgraded": moved > 0,
            "upgraded": moved < 0,
        }
    )
    out = frame.groupby(segment).agg(
        n=("score_change", "size"),
        mean_score_change=("score_change", "mean"),
        downgraded=("downgraded", "mean"),
        upgraded=("upgraded", "mean"),
    )
    return out.reset_index()
