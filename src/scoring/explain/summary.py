"""The SHAP summary plot (beeswarm) of a model on its test rows, with the catalog's Chinese labels.

The values are TreeSHAP from the booster itself (``booster.predict(x, pred_contrib=True)``, the
algorithm ``shap.TreeExplainer`` runs, on the model's raw margin); the shap library only draws them.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection
from typing import Any

import numpy as np

from scoring.explain.fonts import cjk_font

SUMMARY_ROWS = 2_000  # points per feature: more draw slower and read no better
TOP_FEATURES = 20


def summary_figure(
    contrib: np.ndarray,
    x: np.ndarray,
    *,
    names: list[str],
    labels_zh: dict[str, str],
    categorical: Collection[str] = (),
    title: str,
    xlabel: str = "TreeSHAP (model margin)",
    max_display: int = TOP_FEATURES,
    rows: int = SUMMARY_ROWS,
    seed: int = 0,
) -> Any:
    """A beeswarm of per-row contributions, one row of points per feature, largest mean |SHAP| first.

    Args:
        contrib: ``booster.predict(x, pred_contrib=True)``: a column per feature, the expected value last.
        x: the rows explained, as the booster took them; a point's colour is its feature value.
        names: the features in model order.
        labels_zh: the Chinese label (标签) of each feature, the catalog's ``label_zh``; shown with the
            feature name when a CJK font is installed, the feature name alone otherwise.
        categorical: the categorical features: their codes have no order to colour by, so their
            points are grey, as the shap library draws categories.
        title: the plot's title.
        xlabel: what the contributions are in.
        max_display: the features drawn; the others are summed in one last row.
        rows: at most this many rows are drawn, a seeded sample of ``x``.
        seed: the seed of that sample and of the plot's jitter.

    Returns:
        The matplotlib figure, closed (log it with ``mlflow.log_figure`` or save it).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import shap
    from matplotlib.text import Text

    contrib, x = np.asarray(contrib, dtype=float), np.asarray(x, dtype=float)
    k = len(names)
    if contrib.shape != (len(x), k + 1):
        raise ValueError(f"contributions of shape {contrib.shape} do not match {len(x)} rows of {k} features")
    pick = np.arange(len(x))
    if len(x) > rows:
        pick = np.sort(np.random.default_rng(seed).choice(len(x), size=rows, replace=False))
    colour_by = x[pick]
    colour_by[:, [j for j, n in enumerate(names) if n in categorical]] = np.nan
    font = cjk_font()
    explanation = shap.Explanation(
        values=contrib[pick, :k],
        base_values=contrib[pick, k],
        data=colour_by,
        feature_names=[f"{labels_zh.get(n, n)} ({n})" if font else n for n in names],
    )
    shown = min(k, max_display)
    fig, ax = plt.subplots(figsize=(13 if font else 9, 0.4 * shown + 1.5))
    state = np.random.get_state()  # the beeswarm jitters with NumPy's global generator
    np.random.seed(seed)
    try:
        with warnings.catch_warnings():  # a column without values (a category, a feature never filled)
            warnings.filterwarnings("ignore", "All-NaN slice encountered", RuntimeWarning)
            shap.plots.beeswarm(explanation, max_display=max_display, ax=ax, show=False, plot_size=None)
    finally:
        np.random.set_state(state)
    if font and k > max_display:
        ticks = [t.get_text() for t in ax.get_yticklabels()]
        ax.set_yticks(
            ax.get_yticks(), [f"其余{k - max_display + 1}个特征之和" if t.startswith("Sum of") else t for t in ticks]
        )
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    if font:  # on every text, so the figure keeps the font wherever it is saved
        for text in fig.findobj(Text):
            text.set_fontfamily([font, "DejaVu Sans"])
    fig.tight_layout()
    plt.close(fig)
    return fig
