"""Registry governance: champion and challenger, the promotion gate, forcing with a reason, retraining.

Each test module gets its own MLflow store (a copy of the county's warehouse beside it), so that
moving aliases here does not touch the models the other tests serve.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import mlflow
import pytest
import yaml

from scoring.data.ingest import ingest
from scoring.registry.versions import configure
from scoring.training.promote import PromotionError, evaluate_gate, promote
from scoring.training.train import train_evaluation
from tests.conftest import REPO, settings_for


@pytest.fixture(scope="module")
def home(county, tmp_path_factory):
    home = tmp_path_factory.mktemp("registry")
    (home / "var").mkdir()
    shutil.copy(county.settings.warehouse_path, home / "var" / "warehouse.duckdb")
    settings = settings_for(home)
    first = train_evaluation(settings)
    assert first.alias == "champion"
    return settings, first


def _tags(settings, name: str, version: str) -> dict[str, str]:
    return configure(settings).get_model_version(name, version).tags


def test_a_challenger_as_good_as_the_champion_passes_and_the_gate_is_recorded(home) -> None:
    settings, first = home
    second = train_evaluation(settings)  # same data, spec and seed: the same model
    assert second.alias == "challenger"
    gate, moved = promote(settings, "credit_evaluation")
    assert moved and gate.passed and gate.champion == first.version and gate.challenger == second.version
    assert gate.figures["challenger_auc"] == pytest.approx(gate.figures["champion_auc"])
    assert gate.figures["score_psi"] < 1e-9
    client = configure(settings)
    assert str(client.get_model_version_by_alias("credit_evaluation", "champion").version) == second.version
    with pytest.raises(mlflow.exceptions.MlflowException):
        client.get_model_version_by_alias("credit_evaluation", "challenger")
    tags = _tags(settings, "credit_evaluation", second.version)
    assert tags["gate.verdict"] == "pass" and float(tags["gate.challenger_auc"]) > 0.5
    assert tags["gate.check.grades_ordered"] == "true" and "gate.data" in tags
    assert _tags(settings, "credit_evaluation", first.version)["replaced_by"] == second.version


def test_a_worse_challenger_is_refused_and_forcing_it_needs_a_recorded_reason(home, tmp_path: Path) -> None:
    settings, _ = home
    champion = str(configure(settings).get_model_version_by_alias("credit_evaluation", "champion").version)
    spec = yaml.safe_load((REPO / "models" / "credit_evaluation.yaml").read_text(encoding="utf-8"))
    spec["features"] = ["ent_age_months", "registered_capital", "serious_list_active"]  # knows almost nothing
    weak = tmp_path / "weak.yaml"
    weak.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    worse = train_evaluation(settings, spec_path=weak)
    assert worse.alias == "challenger"

    gate = evaluate_gate(settings, "credit_evaluation")
    assert not gate.passed and not gate.checks["auc_not_below_champion"]
    env = {**os.environ, "SCORING_HOME": str(settings.home), "COLUMNS": "400"}
    env.update({"SCORING_FEATURES_DIR": str(REPO / "features"), "SCORING_MODELS_DIR": str(REPO / "models")})
    env["SCORING_MLFLOW_TRACKING_URI"] = settings.tracking_uri
    refused = subprocess.run(
        [sys.executable, "-m", "scoring.cli", "promote", "credit_evaluation"], env=env, capture_output=True, text=True
    )
    assert refused.returncode == 1 and "fails the gate" in refused.stdout and "champion unchanged" in refused.stdout
    assert str(configure(settings).get_model_version_by_alias("credit_evaluation", "champion").version) == champion
    assert _tags(settings, "credit_evaluation", worse.version)["gate.verdict"] == "fail"

    with pytest.raises(PromotionError, match="reason"):
        promote(settings, "credit_evaluation", force=True, reason="  ")
    forced = subprocess.run(
        [sys.executable, "-m", "scoring.cli", "promote", "credit_evaluation", "--force"],
        env={**env, "SCORING_USER": "analyst-wang"},
        input="监管要求临时切换到简化模型\n",  # the prompt asks for the reason
        capture_output=True,
        text=True,
    )
    assert forced.returncode == 0, forced.stdout + forced.stderr
    tags = _tags(settings, "credit_evaluation", worse.version)
    assert tags["gate.forced"] == "true" and tags["gate.force_reason"] == "监管要求临时切换到简化模型"
    assert tags["gate.forced_by"] == "analyst-wang" and tags["gate.verdict"] == "fail"
    assert str(configure(settings).get_model_version_by_alias("credit_evaluation", "champion").version) == worse.version


def test_retraining_learns_from_the_loans_a_bank_reports_later(county, tmp_path: Path) -> None:
    """A bank joins: its loans and their outcomes reach the warehouse, and `scoring retrain` trains
    pre-credit challengers on them and reports them against the champions on the same test loans."""
    home = tmp_path / "home"
    (home / "var").mkdir(parents=True)
    raw = tmp_path / "raw"
    shutil.copytree(county.raw, raw)
    loans = raw / "loans.parquet"
    late_bank = "B3413002"
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT * FROM '{loans}' WHERE bank_id <> '{late_bank}') TO '{tmp_path}/early.parquet'")
        con.execute(f"COPY (SELECT * FROM '{loans}' WHERE bank_id = '{late_bank}') TO '{tmp_path}/late.parquet'")
    shutil.move(tmp_path / "early.parquet", loans)
    settings = settings_for(home)
    ingest([raw], settings.warehouse_path)
    from scoring.training.precredit import train_pre_credit

    before = train_pre_credit(settings)
    report = tmp_path / "report"
    report.mkdir()
    shutil.move(tmp_path / "late.parquet", report / "loans.parquet")
    shutil.copy(raw / "manifest.json", report / "manifest.json")
    env = {**os.environ, "SCORING_HOME": str(home), "COLUMNS": "400"}
    env.update({"SCORING_FEATURES_DIR": str(REPO / "features"), "SCORING_MODELS_DIR": str(REPO / "models")})
    loaded = subprocess.run(
        [sys.executable, "-m", "scoring.cli", "ingest", str(report)], env=env, capture_output=True, text=True
    )
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    done = subprocess.run([sys.executable, "-m", "scoring.cli", "retrain"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pre_credit_default v2" in done.stdout and "against champion v1" in done.stdout
    client = configure(settings)
    challenger = client.get_model_version_by_alias("pre_credit_default", "challenger")
    run = mlflow.get_run(challenger.run_id)
    assert int(run.data.params["n_train"]) > before.default.extra["n_fit"]  # learned from the new outcomes
    assert str(client.get_model_version_by_alias("pre_credit_amount", "challenger").version) == "2"
