"""`scoring train-table` and `scoring predict-table` on a bank's flat extract."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from scoring.data.synthetic_tables import flat_table
from scoring.training.table import TableError, TableModel, binary_target

REPO = Path(__file__).resolve().parents[2]


def _scoring(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'elsewhere' / 'mlflow.db'}",
        "SCORING_HOME": str(tmp),
        "SCORING_MODELS_DIR": str(REPO / "models"),
        "COLUMNS": "400",
    }
    (tmp / "elsewhere").mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "scoring.cli", *args], env=env, capture_output=True, text=True, cwd=tmp
    )


@pytest.fixture(scope="module")
def extract(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("extract")
    table = flat_table(rows=1500, columns=20, bad_rate=0.3, seed=1)
    table["note"] = [f"客户经理备注{i}" for i in range(len(table))]  # free text: not a feature
    path = folder / "bank_extract.csv"
    table.to_csv(path, index=False, encoding="gbk")
    return path


def test_train_table_then_predict_table_through_the_command(extract: Path, tmp_path: Path) -> None:
    done = _scoring(tmp_path, "train-table", str(extract), "--target", "status", "--id", "borrower_id", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    last = json.loads(done.stdout.strip().splitlines()[-1])
    assert last["model_uri"] == "models:/table_bank_extract/1" and last["positive"] == "违约"
    assert 0.7 < last["auc"] <= 1 and last["metrics"]["ks"] > 0.3
    assert "note" in last["dropped"] and "borrower_id" not in last["features"] and "industry" in last["features"]
    assert (tmp_path / "elsewhere" / "mlflow.db").exists()  # MLFLOW_TRACKING_URI was honoured

    out = tmp_path / "scored.csv"
    done = _scoring(
        tmp_path, "predict-table", str(extract), "--model", last["model_uri"], "--out", str(out), "--id", "borrower_id"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    scored = pd.read_csv(out)
    assert list(scored.columns[:4]) == ["borrower_id", "probability", "score", "grade"]
    assert len(scored) == 1500 and scored["borrower_id"].is_unique
    truth = pd.read_csv(extract, encoding="gbk")["status"].eq("违约").to_numpy()
    assert scored.loc[truth, "probability"].mean() > scored.loc[~truth, "probability"].mean() + 0.15
    assert scored["reason_1"].str.contains("降低评分").any()


def test_a_missing_column_or_an_unknown_model_is_a_clear_error(extract: Path, tmp_path: Path) -> None:
    done = _scoring(tmp_path, "train-table", str(extract), "--target", "no_such_column")
    assert done.returncode != 0 and "no_such_column" in done.stdout
    done = _scoring(tmp_path, "predict-table", str(extract), "--model", "models:/nothing/1", "--out", "x.csv")
    assert done.returncode != 0 and "models:/nothing/1" in done.stdout


def test_the_positive_class_is_given_or_inferred() -> None:
    assert binary_target(pd.Series([0, 1, 1, 0], name="y"), None)[1] == "1"
    assert binary_target(pd.Series(["好", "坏", "好"], name="y"), None)[1] == "坏"
    assert binary_target(pd.Series(["p", "q", "q"], name="y"), None)[1] == "p"  # the rarer one
    y, positive = binary_target(pd.Series(["A", "B", "C"], name="y"), "C")
    assert positive == "C" and y.tolist() == [0, 0, 1]
    with pytest.raises(TableError, match="3 distinct values"):
        binary_target(pd.Series(["A", "B", "C"], name="y"), None)
    with pytest.raises(TableError, match="'Z'"):
        binary_target(pd.Series(["A", "B"], name="y"), "Z")


def test_the_estimator_follows_the_scikit_learn_contract() -> None:
    table = flat_table(rows=800, columns=10, bad_rate=0.3, seed=2)
    X, y = table.drop(columns=["borrower_id", "status"]), (table["status"] == "违约").to_numpy(dtype=int)
    model = TableModel(folds=4, seed=3)
    fitted = clone(model).fit(X, y)
    again = clone(model).fit(X, y)
    np.testing.assert_array_equal(fitted.predict_proba(X), again.predict_proba(X))  # same data and seed
    assert fitted.get_params() == {"folds": 4, "max_rounds": 2000, "seed": 3}
    assert fitted.predict_proba(X).shape == (800, 2) and set(fitted.predict(X)) <= {0, 1}
    assert abs(fitted.oof_probability_.mean() - y.mean()) < 0.03  # calibrated out of fold


def test_the_blend_is_explained_exactly_and_its_grades_fit_the_table() -> None:
    """Every feature's points (TreeSHAP of the booster plus its scorecard term) add up to the score,
    and the grade bands cut from the table's own out-of-fold scores order the bad rate."""
    from scoring.domain.scorer import Scorer, ScorerConfig, ScoreScaling
    from scoring.training.spec import load_table_spec

    table = flat_table(rows=1200, columns=12, bad_rate=0.2, seed=4, shape="additive")
    X, y = table.drop(columns=["borrower_id", "status"]), (table["status"] == "违约").to_numpy(dtype=int)
    model = TableModel(folds=4, seed=5).fit(X, y)
    assert model.additive_ is not None and 0 <= model.booster_weight_ < 1  # a linear table wants the scorecard
    assert {t.feature for t in model.additive_.terms} >= {"tax_sales_growth", "arrears_months"}
    spec = load_table_spec(REPO / "models" / "table_model.yaml")
    scaling: ScoreScaling = spec.score
    logit = np.log(model.oof_probability_ / (1 - model.oof_probability_))
    bands = spec.bands(np.clip(np.round(scaling.offset - scaling.factor * logit), scaling.min, scaling.max))
    config = ScorerConfig(
        model_name="t",
        features=model.features_,
        labels_zh={},
        categories=model.categories_,
        monotone={},
        calibration=model.calibration_,
        score=scaling,
        grades=bands,
        overrides=[],
        lineage={},
        additive=model.additive_,
    )
    scorer = Scorer(model.booster_, ScorerConfig.model_validate_json(config.model_dump_json()))
    x = model.matrix(X)
    np.testing.assert_allclose(scorer.probability(x), model.predict_proba(X)[:, 1], rtol=1e-9)
    _, score, _, _, points, base = scorer.explained(x)
    unclipped = scaling.offset - scaling.factor * scorer.logit(x)
    np.testing.assert_allclose(base + points.sum(axis=1), unclipped, atol=1e-6)
    assert np.array_equal(score, np.clip(np.round(unclipped), scaling.min, scaling.max))
    grades = scorer.grades(scorer.score_from_logit(logit))
    shares = pd.Series(grades).value_counts(normalize=True)
    assert all(abs(shares[g.grade] - 0.25) < 0.03 for g in bands)
    bad = pd.Series(y).groupby(grades).mean().reindex([g.grade for g in bands]).to_numpy()
    assert np.all(np.diff(bad) > 0)  # A best, D worst, out of fold


def test_a_high_cardinality_category_is_used_and_an_id_like_text_is_not() -> None:
    rng = np.random.default_rng(8)
    table = flat_table(rows=2000, columns=10, bad_rate=0.3, seed=8)
    y = (table["status"] == "违约").to_numpy(dtype=int)
    township = rng.integers(0, 120, len(table))
    effect = rng.normal(0, 1.2, 120)[township]
    y = np.where(rng.random(len(y)) < 1 / (1 + np.exp(-(effect - 1))), 1, y)  # townships carry risk
    X = table.drop(columns=["borrower_id", "status"]).assign(
        township=[f"乡镇{t:03d}" for t in township], contact=[f"联系人{i}" for i in range(len(table))]
    )
    model = TableModel(folds=4).fit(X, y)
    assert "township" in model.features_ and len(model.categories_["township"]) == 120
    assert "contact" in model.dropped_ and "distinct values" in model.dropped_["contact"]
