"""Reject inference (拒绝推断) for the 信易贷 pre-credit default model: the bias measured, remedies tried.

The default model learns only from the loans banks chose to make. Banks report their declined
applications too (``loan_applications``), but a declined application has no outcome, so on real
data the bias cannot be measured. The generator knows what each declined application would have
done had it been funded (``synthetic_declined_outcomes``): on synthetic data this module measures
the funded-only model on the test vintage's funded loans and on all its applicants (funded with
their outcome, declined with their counterfactual one), and tries two standard remedies, both
with their constants fixed in advance, never tuned on the data:

- **reweighting** (augmentation): an accept/decline model on all training applicants' features;
  each funded training loan weighs ``1 / P(approved | features)``, capped at :data:`WEIGHT_CAP`;
- **parcelling**: declined training applicants join the funded loans with an outcome drawn from
  the funded-only model's expected bad rate of their score band (deciles of all applicants),
  times :data:`PARCEL_FACTOR` (rejects are assumed worse than accepts of the same score).

A remedy would replace the funded-only model only if it improved the all-applicants AUC or
calibration without worsening the other (paired bootstrap over enterprises, 95 %);
:data:`ADOPTED_REMEDY` records the decision taken from the measurement (docs/benchmarks.md).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score

from scoring.domain.scorer import Calibration, Scorer, ScorerConfig, encode_matrix
from scoring.features.catalog import Catalog
from scoring.features.labels import LABEL_MONTHS
from scoring.training.fit import feature_names, fit
from scoring.training.rows import holdout_of
from scoring.training.spec import ModelSpec

REMEDIES = ("reweighted", "parcelled")
# the reference, not a remedy: fitted on every training applicant's outcome, the declined ones'
# counterfactual outcomes included, which no real platform has; what learning from funded loans costs
REFERENCE = "all_outcomes"
# None: on demo-sized counties (benchmarks/reject_inference.py, 20,000 enterprises, seeds 7 and 8)
# neither remedy improved the all-applicants AUC or calibration error beyond its bootstrap interval;
# parcelling worsened calibration on seed 7, reweighting changed nothing
ADOPTED_REMEDY: str | None = None
WEIGHT_CAP = 10.0  # an approval probability below 1/10 weighs as 1/10: a few loans must not carry the fit
PARCEL_FACTOR = 2.0  # a common judgmental choice: rejects go bad twice as often as accepts of their score
PARCEL_BANDS = 10
BOOTSTRAP = 200
POPULATIONS = ("funded", "declined", "all applicants")


def declined_labels(
    con: Any, *, start_from: dt.date, start_before: dt.date, months: int = LABEL_MONTHS
) -> pd.DataFrame:
    """Declined applications (审批结果 拒绝) decided in ``[start_from, start_before)``, in the shape of loan labels.

    The decision date stands for the start date of the loan that was not made: ``as_of`` is the
    first day of its month (features read records dated before it). ``default_12m`` is the
    counterfactual outcome in ``[decision_date, decision_date + months)`` from
    ``synthetic_declined_outcomes``, NULL where the generator's truth is absent (real data).
    Empty when the warehouse holds no applications table (loaded before it existed).
    """
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if not {"loan_applications", "synthetic_declined_outcomes"} <= tables:
        return pd.DataFrame(columns=["loan_id", "uscc", "start_date", "as_of", "default_12m"])
    return con.execute(
        """
        SELECT a.application_id AS loan_id, a.uscc, a.bank_id, a.decision_date AS start_date,
               CAST(date_trunc('month', a.decision_date) AS DATE) AS as_of,
               a.requested_amount AS amount, a.requested_term_months AS term_months,
               CASE WHEN o.application_id IS NULL THEN NULL
                    ELSE CAST(coalesce(o.would_dpd90_date < a.decision_date + INTERVAL ($months) MONTH, false)
                              AS INTEGER) END AS default_12m
        FROM loan_applications a LEFT JOIN synthetic_declined_outcomes o USING (application_id)
        WHERE a.decision = '拒绝' AND a.decision_date >= $start_from AND a.decision_date < $start_before
        ORDER BY a.decision_date, a.application_id
        """,
        {"months": months, "start_from": start_from, "start_before": start_before},
    ).df()


@dataclass
class RejectInference:
    """What reject inference measured on the test vintage and which model the default model is.

    ``figures`` has one row per (model, population): n, bads, bad_rate, mean_probability, auc,
    brier, ece. ``deltas`` has one row per remedy: its all-applicants change of AUC, ECE and Brier
    against the funded-only model with 95 % bootstrap bounds, and the verdict of the adoption rule.
    """

    n_declined_train: int
    n_declined_test: int
    approval_rate_test: float
    measured: bool
    figures: pd.DataFrame = field(default_factory=pd.DataFrame)
    deltas: pd.DataFrame = field(default_factory=pd.DataFrame)
    adopted: str | None = None
    models: dict[str, tuple[lgb.Booster, Calibration]] = field(default_factory=dict)

    def registered(self, booster: lgb.Booster, config: ScorerConfig) -> tuple[lgb.Booster, ScorerConfig]:
        """The booster and config to register: the adopted remedy's, else the funded-only ones given."""
        if self.adopted is None:
            return booster, config
        remedy, calibration = self.models[self.adopted]
        return remedy, config.model_copy(update={"calibration": calibration})

    def metrics(self) -> dict[str, float]:
        """The figures as flat MLflow metrics: ``ri_<population>_<model>_<figure>`` and ``ri_<remedy>_<delta>``."""
        out = {
            "ri_declined_train": float(self.n_declined_train),
            "ri_declined_test": float(self.n_declined_test),
            "ri_approval_rate_test": self.approval_rate_test,
        }
        for (model, population), row in self.figures.iterrows():
            for name, value in row.items():
                out[f"ri_{_key(population)}_{model}_{name}"] = float(value)
        for remedy, row in self.deltas.iterrows():
            for name, value in row.items():
                out[f"ri_{remedy}_{name}"] = float(value)
        return out


def _key(text: str) -> str:
    return text.replace(" ", "_")


def assess(
    spec: ModelSpec,
    catalog: Catalog,
    *,
    train: pd.DataFrame,
    test: pd.DataFrame,
    declined: tuple[pd.DataFrame, pd.DataFrame],
    baseline: Scorer,
    seed: int,
) -> RejectInference:
    """Measure the funded-only ``baseline`` and the remedies on the test vintage's applicants.

    ``train`` and ``test`` are the funded loans of the two vintages, ``declined`` the declined
    applications decided in each (:func:`declined_labels` with their feature rows). The remedies
    are fitted only when there is something to measure (counterfactual outcomes of the test
    vintage) or one is adopted: on real data only the adopted one is.
    """
    declined_train, declined_test = declined
    measured = len(declined_test) > 0 and bool(pd.to_numeric(declined_test["default_12m"]).notna().all())
    result = RejectInference(
        n_declined_train=len(declined_train),
        n_declined_test=len(declined_test),
        approval_rate_test=len(test) / max(len(test) + len(declined_test), 1),
        measured=measured,
        adopted=ADOPTED_REMEDY if len(declined_train) else None,
    )
    wanted = [r for r in REMEDIES if len(declined_train) and (measured or r == result.adopted)]
    if measured and len(declined_train) and declined_train["default_12m"].notna().all():
        wanted.append(REFERENCE)
    for remedy in wanted:
        result.models[remedy] = fit_remedy(
            remedy, spec, catalog, train=train, declined=declined_train, baseline=baseline, seed=seed
        )
    if measured:
        scorers = {"funded_only": baseline} | {
            r: Scorer(booster, baseline.config.model_copy(update={"calibration": cal}))
            for r, (booster, cal) in result.models.items()
        }
        result.figures, result.deltas = measure(scorers, test=test, declined=declined_test, seed=seed)
    return result


def fit_remedy(
    remedy: str,
    spec: ModelSpec,
    catalog: Catalog,
    *,
    train: pd.DataFrame,
    declined: pd.DataFrame,
    baseline: Scorer,
    seed: int,
    parcel_factor: float = PARCEL_FACTOR,
) -> tuple[lgb.Booster, Calibration]:
    """(booster, calibration) of a remedy (or the reference) fitted on the funded ``train`` loans and the
    ``declined`` applications of the same vintages."""
    if remedy == "reweighted":
        weight = approval_weights(spec, catalog, funded=train, declined=declined, seed=seed)
        return fit_weighted(spec, catalog, train, weight, target="default_12m", seed=seed)
    if remedy == "parcelled":
        rng = np.random.default_rng([seed, 1])
        p_funded = baseline.probability(baseline.matrix(train))
        p_declined = baseline.probability(baseline.matrix(declined))
        parcelled = declined.assign(default_12m=parcel(p_funded, p_declined, rng=rng, factor=parcel_factor))
        booster, calibration, _ = fit(
            spec, catalog, pd.concat([train, parcelled], ignore_index=True), seed=seed, target="default_12m"
        )
        return booster, calibration
    if remedy == REFERENCE:
        known = declined.assign(default_12m=declined["default_12m"].astype(int))
        booster, calibration, _ = fit(
            spec, catalog, pd.concat([train, known], ignore_index=True), seed=seed, target="default_12m"
        )
        return booster, calibration
    raise ValueError(f"unknown remedy {remedy!r}: one of {REMEDIES}")


def approval_weights(
    spec: ModelSpec, catalog: Catalog, *, funded: pd.DataFrame, declined: pd.DataFrame, seed: int
) -> np.ndarray:
    """``1 / P(approved | features)`` of each funded loan, capped at :data:`WEIGHT_CAP`, mean 1.

    The accept/decline model is LightGBM with the spec's parameters but no monotone constraints
    (a bank's screen need not follow the risk directions), fitted on every applicant of the
    training vintages: funded loans approved, declined applications not.
    """
    applicants = pd.concat([funded.assign(approved=1), declined.assign(approved=0)], ignore_index=True)
    booster, calibration = fit_weighted(
        spec, catalog, applicants, np.ones(len(applicants)), target="approved", seed=seed, monotone=False
    )
    names = feature_names(spec, catalog)
    margin = booster.predict(encode_matrix(funded, names, catalog.categories_of(names)), raw_score=True)
    p = 1.0 / (1.0 + np.exp(-(calibration.intercept + calibration.slope * np.asarray(margin))))
    weight = np.minimum(1.0 / np.maximum(p, 1e-12), WEIGHT_CAP)
    return weight / weight.mean()


def parcel(
    p_funded: np.ndarray, p_declined: np.ndarray, *, rng: np.random.Generator, factor: float = PARCEL_FACTOR
) -> np.ndarray:
    """Outcomes (0/1) for the declined applicants: bad with the band's expected bad rate times ``factor``.

    Bands are the :data:`PARCEL_BANDS` quantiles of the funded-only probability over all applicants;
    a band's expected bad rate is the mean probability of the declined applicants in it.
    """
    edges = np.unique(np.quantile(np.concatenate([p_funded, p_declined]), np.linspace(0, 1, PARCEL_BANDS + 1)))
    band = np.clip(np.searchsorted(edges, p_declined, side="right") - 1, 0, max(len(edges) - 2, 0))
    expected = pd.Series(p_declined).groupby(band).transform("mean").to_numpy()
    return (rng.random(len(p_declined)) < np.minimum(1.0, factor * expected)).astype(int)


def fit_weighted(
    spec: ModelSpec,
    catalog: Catalog,
    frame: pd.DataFrame,
    weight: np.ndarray,
    *,
    target: str,
    seed: int,
    monotone: bool = True,
) -> tuple[lgb.Booster, Calibration]:
    """:func:`scoring.training.fit.fit` with row weights: LightGBM early-stopped on a holdout of
    enterprises (weighted loss), then Platt calibration weighted the same way."""
    names = feature_names(spec, catalog)
    x = encode_matrix(frame, names, catalog.categories_of(names))
    y = frame[target].to_numpy(dtype=float)
    held = holdout_of(frame["uscc"].to_numpy(), spec.split.holdout_fraction, seed)
    params = {k: v for k, v in spec.lightgbm.items() if k not in ("num_boost_round", "early_stopping_rounds")}
    if monotone:
        params["monotone_constraints"] = [catalog.feature(n).monotone.constraint for n in names]
    cats = [i for i, n in enumerate(names) if catalog.feature(n).is_categorical]
    dtrain = lgb.Dataset(x[~held], y[~held], weight=weight[~held], feature_name=names, categorical_feature=cats)
    dvalid = lgb.Dataset(x[held], y[held], weight=weight[held], reference=dtrain)
    booster = lgb.train(
        params,
        dtrain,
        num_boost_round=int(spec.lightgbm.get("num_boost_round", 500)),
        valid_sets=[dvalid],
        valid_names=["holdout"],
        callbacks=[lgb.early_stopping(int(spec.lightgbm.get("early_stopping_rounds", 50)), verbose=False)],
    )
    margin = np.asarray(booster.predict(x[held], raw_score=True)).reshape(-1, 1)
    platt = LogisticRegression(C=1e6, max_iter=1000).fit(margin, y[held], sample_weight=weight[held])
    return booster, Calibration(intercept=float(platt.intercept_[0]), slope=float(platt.coef_[0, 0]))


def figures_of(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """n, bads, observed bad rate, mean predicted probability, AUC, Brier and calibration error (deciles)."""
    both = 0 < y.sum() < len(y)
    return {
        "n": float(len(y)),
        "bads": float(y.sum()),
        "bad_rate": float(y.mean()),
        "mean_probability": float(p.mean()),
        "auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "brier": float(brier_score_loss(y, p)),
        "ece": _ece(y, p),
    }


def measure(
    scorers: dict[str, Scorer], *, test: pd.DataFrame, declined: pd.DataFrame, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(figures per model and population, each remedy's all-applicants deltas with bootstrap bounds)."""
    applicants = pd.concat([test, declined], ignore_index=True)
    y = applicants["default_12m"].astype("float64").to_numpy()
    funded = np.arange(len(applicants)) < len(test)
    p = {name: s.probability(s.matrix(applicants)) for name, s in scorers.items()}
    rows = {}
    for name, prob in p.items():
        for population, mask in zip(POPULATIONS, (funded, ~funded, np.ones_like(funded)), strict=True):
            rows[(name, population)] = figures_of(y[mask], prob[mask])
    figures = pd.DataFrame.from_dict(rows, orient="index")
    figures.index.names = ["model", "population"]
    deltas = {
        name: _deltas(y, p["funded_only"], p[name], applicants["uscc"].to_numpy(), seed=seed)
        for name in scorers
        if name != "funded_only"
    }
    return figures, pd.DataFrame.from_dict(deltas, orient="index")


def _deltas(y: np.ndarray, p_base: np.ndarray, p_new: np.ndarray, uscc: np.ndarray, *, seed: int) -> dict[str, float]:
    """All-applicants change of AUC, ECE and Brier (new - base), 95 % bounds by resampling enterprises,
    and the adoption rule: AUC or calibration (ECE) better, neither worse (bounds clear of zero)."""

    def stats(idx: np.ndarray) -> np.ndarray:
        yy, b, n = y[idx], p_base[idx], p_new[idx]
        return np.array(
            [_auc(yy, n) - _auc(yy, b), _ece(yy, n) - _ece(yy, b), np.mean((n - yy) ** 2) - np.mean((b - yy) ** 2)]
        )

    codes, firms = pd.factorize(uscc)
    order = np.argsort(codes, kind="stable")
    rows_of = np.split(order, np.cumsum(np.bincount(codes, minlength=len(firms)))[:-1])
    rng = np.random.default_rng([seed, 2])
    draws = []
    for _ in range(BOOTSTRAP):
        idx = np.concatenate([rows_of[k] for k in rng.integers(0, len(firms), len(firms))])
        if 0 < y[idx].sum() < len(idx):
            draws.append(stats(idx))
    lo, hi = np.quantile(np.array(draws), [0.025, 0.975], axis=0)
    point = stats(np.arange(len(y)))
    auc_better, ece_better = lo[0] > 0, hi[1] < 0
    auc_worse, ece_worse = hi[0] < 0, lo[1] > 0
    out: dict[str, float] = {}
    for j, name in enumerate(("auc", "ece", "brier")):
        out |= {f"delta_{name}": point[j], f"delta_{name}_lo": lo[j], f"delta_{name}_hi": hi[j]}
    out["helps"] = float((auc_better or ece_better) and not (auc_worse or ece_worse))
    return out


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    """AUC by the rank sum (ties count half), as ``roc_auc_score`` but fast enough to bootstrap."""
    ranks = pd.Series(p).rank().to_numpy()  # average ranks of ties
    bads = y.sum()
    return float((ranks[y == 1].sum() - bads * (bads + 1) / 2) / (bads * (len(y) - bads)))


def _ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """:func:`scoring.training.metrics.expected_calibration_error` (the same decile bins) in NumPy."""
    edges = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)))
    band = np.searchsorted(edges[1:-1], p, side="left")
    n = np.bincount(band)
    gap = np.abs(np.bincount(band, weights=y) - np.bincount(band, weights=p))
    return float(gap.sum() / n.sum())


def summary(ri: RejectInference | None) -> list[str]:
    """The model card's sentences on reject inference."""
    if ri is None or ri.n_declined_train + ri.n_declined_test == 0:
        return [
            "Learned only from loans partner banks made: no declined application (授信申请 拒绝) was reported, "
            "so the bias of learning from funded loans only is neither measured nor corrected."
        ]
    chosen = f"the {ri.adopted} model is registered" if ri.adopted else "the funded-only model is registered"
    if not ri.measured:
        return [
            f"Learned from funded loans; {ri.n_declined_train:,} declined training applications are reported but "
            f"their outcomes are unknown on real data, so the bias is not measured here ({chosen}; see the "
            "reject-inference measurement on synthetic data in docs/benchmarks.md)."
        ]
    f = ri.figures
    base_f, base_a = f.loc[("funded_only", "funded")], f.loc[("funded_only", "all applicants")]
    lines = [
        f"Learned from funded loans only (test vintage approval rate {ri.approval_rate_test:.0%}). On all the test "
        f"vintage's applicants (funded with their outcome, {ri.n_declined_test:,} declined with the generator's "
        f"counterfactual one) AUC {base_a['auc']:.3f} (funded loans {base_f['auc']:.3f}); mean predicted "
        f"{base_a['mean_probability']:.2%} against an observed bad rate of {base_a['bad_rate']:.2%} (funded "
        f"{base_f['mean_probability']:.2%} against {base_f['bad_rate']:.2%}); calibration error {base_a['ece']:.4f} "
        f"(funded {base_f['ece']:.4f})."
    ]
    for remedy, d in ri.deltas.iterrows():
        a = f.loc[(remedy, "all applicants")]
        figures = (
            f"all applicants AUC {a['auc']:.3f} (change {d['delta_auc']:+.3f}, 95% {d['delta_auc_lo']:+.3f} to "
            f"{d['delta_auc_hi']:+.3f}), calibration error {a['ece']:.4f} (change {d['delta_ece']:+.4f}, "
            f"{d['delta_ece_lo']:+.4f} to {d['delta_ece_hi']:+.4f}), mean predicted {a['mean_probability']:.2%}"
        )
        if remedy == REFERENCE:
            lines.append(
                f"Reference, impossible on real data: a model fitted on every training applicant's outcome "
                f"(the declined ones' counterfactual outcomes included): {figures}."
            )
        else:
            verdict = "helps" if d["helps"] else "does not help"
            lines.append(f"Remedy {remedy}: {figures}; by the rule it {verdict} on this data; {chosen}.")
    return lines
