"""Reject inference for the pre-credit default model: measured on all applicants, reported with the run."""

import datetime as dt

import duckdb
import mlflow
import numpy as np

from scoring.data.ingest import extract_date_of
from scoring.domain.scorer import Scorer
from scoring.features.catalog import load_catalog
from scoring.registry.versions import configure
from scoring.training import reject
from scoring.training.fit import feature_names, fit, scorer_config
from scoring.training.precredit import choose_vintages, declined_frame, loan_frame
from scoring.training.spec import load_spec


def test_the_default_run_reports_the_model_on_funded_loans_and_on_all_applicants(county, pre_credit_trained) -> None:
    configure(county.settings)
    run_id = pre_credit_trained.default.run_id
    m = mlflow.get_run(run_id).data.metrics
    for population in ("funded", "declined", "all_applicants"):
        for model in ("funded_only", "reweighted", "parcelled", "all_outcomes"):
            for figure in ("n", "bads", "bad_rate", "mean_probability", "auc", "brier", "ece"):
                assert f"test_ri_{population}_{model}_{figure}" in m, (population, model, figure)
    for remedy in ("reweighted", "parcelled"):
        for key in ("delta_auc", "delta_auc_lo", "delta_auc_hi", "delta_ece", "delta_brier", "helps"):
            assert f"test_ri_{remedy}_{key}" in m, (remedy, key)
    # the funded population is the run's own test loans, scored by the registered model
    assert m["test_ri_funded_funded_only_n"] == m["test_n"]
    assert abs(m["test_ri_funded_funded_only_auc"] - m["test_auc"]) < 1e-9
    n = {p: m[f"test_ri_{p}_funded_only_n"] for p in ("funded", "declined", "all_applicants")}
    assert n["declined"] > 0 and n["all_applicants"] == n["funded"] + n["declined"]
    assert m["test_ri_declined_funded_only_bad_rate"] > m["test_ri_funded_funded_only_bad_rate"]
    card = mlflow.artifacts.load_text(f"runs:/{run_id}/model_card.md")
    for part in (
        "reject inference: funded loans and all applicants",
        "On all the test vintage's applicants",
        "Remedy reweighted",
        "Remedy parcelled",
        "Reference, impossible on real data",
    ):
        assert part in card, part
    paths = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id, "validation")}
    assert {"validation/reject_inference.csv", "validation/reject_inference_deltas.csv"} <= paths


def test_without_counterfactual_outcomes_only_the_adopted_remedy_is_fitted(county, monkeypatch) -> None:
    """Real data: the declined applications are reported, their outcomes are not."""
    spec = load_spec(county.settings.model_spec_path("pre_credit_default"))
    catalog = load_catalog(county.settings.catalog_path)
    with duckdb.connect(str(county.settings.warehouse_path)) as con:
        extract = extract_date_of(con)
        start = con.execute("SELECT min(period) FROM tax_monthly").fetchone()[0]
        vintages = choose_vintages(spec.split, start=dt.date(start.year, start.month, 1), extract=extract)
        loans, _ = loan_frame(con, catalog, vintages=vintages, split=spec.split, extract=extract)
        declined_train, declined_test = declined_frame(
            con, catalog, vintages=vintages, split=spec.split, extract=extract
        )
    assert len(declined_train) > 0 and len(declined_test) > 0
    assert (declined_train["snapshot"] <= declined_train["as_of"]).all()  # features from before the decision
    is_test = (loans["start_date"] >= vintages.test_from).to_numpy()
    train, test = loans[~is_test].reset_index(drop=True), loans[is_test].reset_index(drop=True)
    seed = int(spec.lightgbm["seed"])
    booster, calibration, _ = fit(spec, catalog, train, seed=seed, target="default_12m")
    baseline = Scorer(booster, scorer_config(spec, catalog, feature_names(spec, catalog), calibration=calibration))
    monkeypatch.setattr(reject, "ADOPTED_REMEDY", "reweighted")
    ri = reject.assess(
        spec,
        catalog,
        train=train,
        test=test,
        declined=(declined_train.assign(default_12m=np.nan), declined_test.assign(default_12m=np.nan)),
        baseline=baseline,
        seed=seed,
    )
    assert not ri.measured and ri.figures.empty and ri.adopted == "reweighted"
    assert list(ri.models) == ["reweighted"]
    registered, config = ri.registered(baseline.booster, baseline.config)
    assert registered is ri.models["reweighted"][0] and config.calibration == ri.models["reweighted"][1]
    assert "not measured" in " ".join(reject.summary(ri))
    assert not any(k.startswith("ri_all_applicants") for k in ri.metrics())
