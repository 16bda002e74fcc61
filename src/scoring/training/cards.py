"""The model cards: what each model is for, the data it saw, its out-of-time figures, its limits.

Each card is Markdown (:func:`scoring.training.report.model_card`) logged with the run as
model_card.md; the service shows it with the model.
"""

from __future__ import annotations

import pandas as pd

from scoring.domain.scorer import AmountConfig, ScorerConfig
from scoring.training.reject import RejectInference, summary
from scoring.training.report import model_card
from scoring.training.spec import AmountSpec, ModelSpec


def evaluation_card(
    spec: ModelSpec,
    config: ScorerConfig,
    *,
    data_window: dict[str, str],
    metrics: dict[str, float],
    tables: dict[str, pd.DataFrame],
) -> str:
    """The credit evaluation's card (公共信用综合评价)."""
    return model_card(
        title=f"{spec.name} ({spec.description})",
        description=(
            "LightGBM with monotone constraints from the feature catalog, Platt-calibrated on a holdout of "
            "enterprises; the score is points-to-double-odds scaled, grades by the bands of the spec."
        ),
        intended_use=(
            "公共信用综合评价 for 分级分类监管: ranking enterprises by the probability of an adverse credit event "
            "in the 12 months after the as-of date, to set how often supervisors inspect. Not a lending "
            "decision by itself; the 信易贷 pre-credit models serve banks."
        ),
        data_window=data_window,
        features=[(n, config.labels_zh[n]) for n in config.features],
        metrics=metrics,
        limitations=[
            "Trained on platform records only: an enterprise with few records gets a score near the average.",
            "Outcomes come from platform records: an adverse event that no department reported is not seen.",
            "A shift in an industry's risk after the test window (a regime change) is not foreseen; "
            "monitor score PSI and the bad rate by grade.",
            "On synthetic data the oracle AUC is the ceiling; on real data there is no oracle.",
        ],
        lineage=config.lineage,
        tables={"bad rate by grade": tables["grades"], "lift by decile": tables["deciles"]},
    )


def default_card(
    spec: ModelSpec,
    config: ScorerConfig,
    *,
    data_window: dict[str, str],
    metrics: dict[str, float],
    tables: dict[str, pd.DataFrame],
    reject: RejectInference | None = None,
) -> str:
    """The 信易贷 pre-credit default model's card, with what reject inference measured (拒绝推断)."""
    shown = {"default rate by grade": tables["grades"], "lift by decile": tables["deciles"]}
    if reject is not None and reject.measured:
        shown["reject inference: funded loans and all applicants of the test vintage"] = reject.figures
        shown["reject inference: each remedy against the funded-only model, all applicants"] = reject.deltas
    return model_card(
        title=f"{spec.name} ({spec.description})",
        description="LightGBM with the catalog's monotone constraints, Platt-calibrated on a holdout of enterprises.",
        intended_use=(
            "信易贷 pre-credit: the probability that a loan to this enterprise reaches 90 days past due within 12 "
            "months, learned from the outcomes partner banks report. Combined with the amount model and the "
            "credit evaluation grade by the limit policy; a bank's own credit decision follows it."
        ),
        data_window=data_window,
        features=[(n, config.labels_zh[n]) for n in config.features],
        metrics=metrics,
        limitations=[
            *summary(reject),
            "Firms that never applied are scored by similarity to those that borrowed.",
            "Defaults are rare: the test AUC has a wide confidence interval on a few dozen defaults.",
            "Loans reported late by banks enter at the next retraining (`scoring retrain`).",
            "Out of time by vintage: the training loans started before the test loans, but the last of their "
            "12-month outcomes fall in the test loans' months, so a shock in those months is partly seen.",
        ],
        lineage=config.lineage,
        tables=shown,
    )


def amount_card(
    spec: AmountSpec, config: AmountConfig, *, data_window: dict[str, str], metrics: dict[str, float]
) -> str:
    """The 信易贷 pre-credit amount model's card."""
    quantile = f"the {spec.alpha:.0%} quantile" if spec.alpha is not None else "the mean"
    return model_card(
        title=f"{spec.name} ({spec.description})",
        description=f"LightGBM ({spec.objective}) on the log of the amount lent, on loans that performed for 12 months.",
        intended_use=(
            f"信易贷 pre-credit: {quantile} of what enterprises like this one borrowed and repaid, in CNY. It starts "
            "the limit; the policy caps it by taxable sales and the product ceiling, reduces it by grade and "
            "zeroes it for listed entities."
        ),
        data_window=data_window,
        features=[(n, config.labels_zh[n]) for n in config.features],
        metrics=metrics,
        limitations=[
            "Learns what banks lent, not what an enterprise could have repaid: limits inherit the banks' past "
            "appetite.",
            "Only loans that performed through 12 months (repaid or current) teach the amount; defaulted loans "
            "teach the default model.",
        ],
        lineage=config.lineage,
    )
