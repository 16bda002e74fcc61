"""The 信易贷 pre-credit models: trained out of time by vintage, validated, combined by the policy."""

import datetime as dt

import duckdb
import mlflow
import numpy as np
import pytest

from scoring.data.ingest import extract_date_of
from scoring.domain.policy import decide_limit, load_policy
from scoring.features.build import load_snapshot
from scoring.features.catalog import load_catalog
from scoring.registry.versions import configure
from scoring.training.precredit import choose_vintages, loan_frame
from scoring.training.promote import _load
from scoring.training.spec import load_spec


@pytest.fixture(scope="module")
def loans(county):
    split = load_spec(county.settings.model_spec_path("pre_credit_default")).split
    catalog = load_catalog(county.settings.catalog_path)
    with duckdb.connect(str(county.settings.warehouse_path)) as con:
        extract = extract_date_of(con)
        start = con.execute("SELECT min(period) FROM tax_monthly").fetchone()[0]
        vintages = choose_vintages(split, start=dt.date(start.year, start.month, 1), extract=extract)
        frame, _ = loan_frame(con, catalog, vintages=vintages, split=split, extract=extract)
    return frame, vintages, split


def test_loans_are_split_by_vintage_and_read_features_from_before_they_started(loans) -> None:
    frame, vintages, split = loans
    assert frame["start_date"].min() >= vintages.train_from and frame["start_date"].max() < vintages.test_before
    assert (frame["snapshot"] <= frame["as_of"]).all()  # features come from before the loan
    lag = [(a.year - s.year) * 12 + a.month - s.month for a, s in zip(frame["as_of"], frame["snapshot"], strict=True)]
    assert max(lag) < split.snapshot_every_months
    assert frame["default_12m"].sum() >= 20 and (frame["repaid"] == 1).sum() >= 100


def test_both_runs_carry_the_validation_report(county, pre_credit_trained) -> None:
    configure(county.settings)
    default, amount = pre_credit_trained.default, pre_credit_trained.amount
    assert default.alias == amount.alias == "champion"  # the first versions
    run = mlflow.get_run(default.run_id)
    for key in ("auc", "ks", "gini", "brier", "ece", "score_psi_train_test", "top_decile_lift", "grades_ordered"):
        assert f"test_{key}" in run.data.metrics, key
    paths = {a.path for a in mlflow.MlflowClient().list_artifacts(default.run_id, "validation")}
    assert {"validation/deciles.csv", "validation/grades.csv", "validation/shap_importance.csv"} <= paths
    for result in (default, amount):
        plots = {a.path for a in mlflow.MlflowClient().list_artifacts(result.run_id, "plots")}
        assert {"plots/shap_importance.png", "plots/shap_summary.png"} <= plots, result.model_name
    card = mlflow.artifacts.load_text(f"runs:/{default.run_id}/model_card.md")
    for part in ("## Intended use", "## Data window", "## Limitations", "## Lineage", "catalog_hash", "policy_hash"):
        assert part in card, part
    importance = mlflow.artifacts.load_text(f"runs:/{default.run_id}/validation/shap_importance.csv")
    assert "近12个月" in importance  # Chinese labels
    assert 0.5 < default.metrics["auc"] <= 1
    m = amount.metrics
    assert abs(m["coverage"] - m["coverage_target"]) < 0.15 and 0 < m["rmse_log"] < 1.5
    assert "test_pinball_loss" in mlflow.get_run(amount.run_id).data.metrics


def test_the_policy_turns_the_champions_into_prudent_limits(county, trained, pre_credit_trained) -> None:
    configure(county.settings)
    evaluation = _load("credit_evaluation", trained.version)
    default = _load("pre_credit_default", pre_credit_trained.default.version)
    amount = _load("pre_credit_amount", pre_credit_trained.amount.version)
    policy = load_policy(county.settings.model_spec_path("pre_credit_policy"))
    catalog = load_catalog(county.settings.catalog_path)
    with duckdb.connect(str(county.settings.warehouse_path)) as con:
        rows = load_snapshot(con, catalog, as_of=extract_date_of(con))
    rows = rows[rows["tax_sales_12m"] > 0].head(600).reset_index(drop=True)
    grades = evaluation.decide(evaluation.matrix(rows))["grade"]
    probability = default.decide(default.matrix(rows))["probability"]
    estimate = amount.amount(amount.matrix(rows))
    results = [
        decide_limit(
            policy,
            amount_estimate=float(estimate[i]),
            default_probability=float(probability[i]),
            grade=grades[i],
            features=rows.iloc[i][policy.features].to_dict(),
        )
        for i in range(len(rows))
    ]
    limits = np.array([r.pre_credit_limit for r in results])
    assert (limits % policy.rounding == 0).all() and (limits <= policy.product_ceiling).all()
    assert (limits <= policy.sales_multiple * rows["tax_sales_12m"] + 1e-6).all()
    assert {r.decision for r in results} >= {"approve", "decline"}
    listed = rows["executee_list_active"].to_numpy() > 0
    assert all(r.pre_credit_limit == 0 for r, hit in zip(results, listed, strict=True) if hit)
    for r in results:  # every change of the limit is a step of the result
        assert r.pre_credit_limit == r.steps[-1].after
