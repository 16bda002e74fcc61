"""The validation report of a training run: the figures and artifacts a model-risk reviewer asks for.

Everything here is computed from arrays already scored; :func:`log_binary_report` and
:func:`log_amount_report` write them to the active MLflow run (metrics, CSV tables, plots and a
model card in Markdown).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from scoring.training.metrics import binary_metrics, grade_table

PSI_BINS = 10


def decile_table(y: np.ndarray, p: np.ndarray) -> pd.DataFrame:
    """Lift by decile of predicted risk, riskiest decile first.

    Columns: n, bads, bad_rate, mean_probability, lift (bad rate over the overall bad rate),
    cumulative share of bads captured.
    """
    frame = pd.DataFrame({"y": y, "p": p})
    # rank first so that ties (many equal scores) still give ten groups of equal size
    frame["decile"] = 10 - pd.qcut(frame["p"].rank(method="first"), 10, labels=False)
    g = frame.groupby("decile").agg(n=("y", "size"), bads=("y", "sum"), mean_probability=("p", "mean"))
    g["bad_rate"] = g["bads"] / g["n"]
    overall = max(float(np.mean(y)), 1e-12)
    g["lift"] = g["bad_rate"] / overall
    g["cumulative_bad_share"] = g["bads"].cumsum() / max(g["bads"].sum(), 1)
    return g[["n", "bads", "bad_rate", "mean_probability", "lift", "cumulative_bad_share"]]


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = PSI_BINS) -> float:
    """Population stability index of ``actual`` against ``expected``, on deciles of ``expected``.

    Below 0.1 is stable by the usual rule; 0.1-0.25 a shift worth a look; above 0.25 a change.
    """
    expected, actual = np.asarray(expected, float), np.asarray(actual, float)
    if expected.size == 0 or actual.size == 0:
        raise ValueError("PSI needs scores on both sides; one side is empty")
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)))
    if len(edges) < 3:
        return 0.0 if set(np.unique(actual)) == set(np.unique(expected)) else float("inf")
    edges[0], edges[-1] = -np.inf, np.inf
    e = np.histogram(expected, edges)[0] / len(expected)
    a = np.histogram(actual, edges)[0] / len(actual)
    e, a = np.clip(e, 1e-6, None), np.clip(a, 1e-6, None)
    return float(np.sum((a - e) * np.log(a / e)))


def grades_ordered(grades: pd.DataFrame) -> bool:
    """True when the observed bad rate strictly rises from the best grade to the worst (grades with
    no enterprise are skipped)."""
    rates = grades.loc[grades["n"] > 0, "bad_rate"].to_numpy()
    return bool(len(rates) >= 2 and np.all(np.diff(rates) > 0))


def shap_importance(contrib: np.ndarray, names: list[str], labels_zh: dict[str, str]) -> pd.DataFrame:
    """Mean |TreeSHAP| per feature (on the model's margin), with the Chinese label, largest first."""
    frame = pd.DataFrame(
        {
            "feature": names,
            "label_zh": [labels_zh.get(n, n) for n in names],
            "mean_abs_shap": np.abs(contrib[:, : len(names)]).mean(axis=0),
            "mean_shap": contrib[:, : len(names)].mean(axis=0),
        }
    )
    frame["share"] = frame["mean_abs_shap"] / max(frame["mean_abs_shap"].sum(), 1e-12)
    return frame.sort_values("mean_abs_shap", ascending=False).reset_index(drop=True)


def binary_report(
    *,
    y_test: np.ndarray,
    p_test: np.ndarray,
    score_train: np.ndarray,
    score_test: np.ndarray,
    grades_test: np.ndarray,
    grade_order: list[str],
    p_true: np.ndarray | None = None,
    p_asof: np.ndarray | None = None,
) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
    """(metrics, tables) for a binary risk model on its out-of-time test set.

    On synthetic data, two oracles: ``p_true`` knows every shock of the outcome window, ``p_asof``
    only what could be known at the as-of date (the figures ``oracle_auc`` / ``auc_over_oracle``
    and ``asof_oracle_auc`` / ``auc_over_asof_oracle``).
    """
    from sklearn.metrics import roc_auc_score

    metrics = binary_metrics(y_test, p_test)
    for prefix, oracle in (("", p_true), ("asof_", p_asof)):
        if oracle is not None and not np.isnan(oracle).any():
            metrics[f"{prefix}oracle_auc"] = float(roc_auc_score(y_test, oracle))
            metrics[f"auc_over_{prefix}oracle"] = metrics["auc"] / metrics[f"{prefix}oracle_auc"]
    grades = grade_table(y_test, grades_test, grade_order)
    metrics.update({f"bad_rate_{g}": float(grades.loc[g, "bad_rate"]) for g in grade_order})
    metrics.update({f"share_{g}": float(grades.loc[g, "share"]) for g in grade_order})
    metrics["grades_ordered"] = float(grades_ordered(grades))
    metrics["score_psi_train_test"] = psi(score_train, score_test)
    deciles = decile_table(y_test, p_test)
    metrics["top_decile_lift"] = float(deciles["lift"].iloc[0])
    return metrics, {"grades": grades, "deciles": deciles}


def amount_metrics(log_actual: np.ndarray, log_predicted: np.ndarray, alpha: float | None) -> dict[str, float]:
    """Error on the log scale, and how often the actual amount reached the predicted one.

    For a lower-quantile model at ``alpha`` the coverage (share of actual ≥ predicted) should be
    near ``1 - alpha``: the limit is prudent that often.
    """
    err = log_predicted - log_actual
    out = {
        "rmse_log": float(np.sqrt(np.mean(err**2))),
        "mae_log": float(np.mean(np.abs(err))),
        "bias_log": float(np.mean(err)),
        "median_ratio": float(np.exp(np.median(err))),
        "coverage": float(np.mean(log_actual >= log_predicted)),
        "n": float(len(err)),
    }
    if alpha is not None:
        diff = log_actual - log_predicted
        out["pinball_loss"] = float(np.mean(np.maximum(alpha * diff, (alpha - 1) * diff)))
        out["coverage_target"] = 1 - alpha
    return out


def model_card(
    *,
    title: str,
    description: str,
    intended_use: str,
    data_window: dict[str, Any],
    features: list[tuple[str, str]],
    metrics: dict[str, float],
    limitations: list[str],
    lineage: dict[str, Any],
    tables: dict[str, pd.DataFrame] | None = None,
) -> str:
    """A model card in Markdown: intended use, data window, features, figures, limitations, lineage."""
    lines = [f"# Model card: {title}", "", description, "", "## Intended use", "", intended_use, ""]
    lines += ["## Data window", ""] + [f"- {k}: {v}" for k, v in data_window.items()] + [""]
    lines += [f"## Features ({len(features)})", "", ", ".join(f"{label} (`{name}`)" for name, label in features), ""]
    lines += ["## Out-of-time figures", "", "| metric | value |", "|---|---:|"]
    lines += [f"| {k} | {v:.4f} |" for k, v in metrics.items()] + [""]
    for name, table in (tables or {}).items():
        lines += [f"### {name}", "", table.to_markdown(floatfmt=".4f"), ""]
    lines += ["## Limitations", ""] + [f"- {x}" for x in limitations] + [""]
    lines += ["## Lineage", ""] + [f"- {k}: `{v}`" for k, v in lineage.items()] + [""]
    return "\n".join(lines)


def log_tables(tables: dict[str, pd.DataFrame]) -> None:
    import mlflow

    for name, table in tables.items():
        mlflow.log_text(table.to_csv(), f"validation/{name}.csv")


def log_json(obj: Any, path: str) -> None:
    import mlflow

    mlflow.log_text(json.dumps(obj, ensure_ascii=False, indent=2, default=str), path)


def importance_figure(importance: pd.DataFrame, top: int = 20) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    head = importance.head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(head) + 1))
    # feature names, not the Chinese labels: the plot must not depend on a CJK font being
    # installed; validation/shap_importance.csv and the model card carry the Chinese labels
    ax.barh(head["feature"], head["mean_abs_shap"])
    ax.set(xlabel="mean |TreeSHAP| (log-odds)", title=f"Top {len(head)} features, out-of-time test")
    fig.tight_layout()
    plt.close(fig)
    return fig


def roc_figure(y: np.ndarray, p: np.ndarray, p_true: pd.Series | None, p_asof: pd.Series | None = None) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_auc_score, roc_curve

    fig, ax = plt.subplots(figsize=(5, 5))
    fpr, tpr, _ = roc_curve(y, p)
    ax.plot(fpr, tpr, label=f"model AUC {roc_auc_score(y, p):.3f}")
    for name, oracle in (("oracle", p_true), ("as-of oracle", p_asof)):
        if oracle is not None and oracle.notna().all():
            fpr, tpr, _ = roc_curve(y, oracle)
            ax.plot(fpr, tpr, "--", label=f"{name} AUC {roc_auc_score(y, oracle):.3f}")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, out-of-time test")
    ax.legend(loc="lower right")
    plt.close(fig)
    return fig


def calibration_figure(y: np.ndarray, p: np.ndarray) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = pd.DataFrame({"y": y, "p": p})
    frame["bin"] = pd.qcut(frame["p"], 10, labels=False, duplicates="drop")
    g = frame.groupby("bin").mean()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(g["p"], g["y"], "o-", label="deciles")
    top = float(max(g["p"].max(), g["y"].max()))
    ax.plot([0, top], [0, top], ":", color="grey", label="perfect")
    ax.set(xlabel="predicted probability", ylabel="observed bad rate", title="Calibration, out-of-time test")
    ax.legend()
    plt.close(fig)
    return fig
