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
