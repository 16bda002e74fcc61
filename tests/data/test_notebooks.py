"""The analysts' notebooks (jupytext percent format) run top to bottom on the small county."""

import runpy
import shutil
from pathlib import Path

import duckdb
import pytest

from scoring.store import Purpose, engine_for
from tests.conftest import authorize

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.py"))


def _env(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.setenv("SCORING_HOME", str(home))
    monkeypatch.setenv("SCORING_FEATURES_DIR", str(REPO / "features"))
    monkeypatch.setenv("SCORING_MODELS_DIR", str(REPO / "models"))


def test_every_notebook_is_tested() -> None:
    assert [p.stem for p in NOTEBOOKS] == [
        "01_explore_platform_data",
        "02_retrain_and_compare",
        "03_explain_a_decision",
    ]


def test_explore_platform_data(county, monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, county.home)
    runpy.run_path(str(REPO / "notebooks" / "01_explore_platform_data.py"), run_name="__main__")


def test_retrain_and_compare(served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a copy of the county's MLflow store, so that the challenger it promotes stays there."""
    store = tmp_path / "mlflow.db"
    shutil.copy(served.settings.tracking_uri.removeprefix("sqlite:///"), store)
    _env(monkeypatch, served.home)
    monkeypatch.setenv("SCORING_MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    runpy.run_path(str(REPO / "notebooks" / "02_retrain_and_compare.py"), run_name="__main__")


def test_explain_a_decision(served, client, keys, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pre-credit decision made through the API, then read back as a regulator would."""
    with duckdb.connect(str(served.settings.warehouse_path), read_only=True) as con:
        uscc = con.execute(
            "SELECT uscc FROM feature_snapshots WHERE as_of = (SELECT max(as_of) FROM feature_snapshots) "
            "AND tax_sales_12m > 2000000 ORDER BY uscc DESC LIMIT 1"
        ).fetchone()[0]
    authorize(engine_for(served.settings.decision_url), uscc=uscc, bank_id="BANK_A", purpose=Purpose.PRE_CREDIT)
    r = client.post("/v1/pre-credit", json={"uscc": uscc}, headers={"Authorization": f"Bearer {keys.bank_a}"})
    assert r.status_code == 200, r.text
    _env(monkeypatch, served.home)
    monkeypatch.setenv("DECISION_ID", r.json()["decision_id"])
    runpy.run_path(str(REPO / "notebooks" / "03_explain_a_decision.py"), run_name="__main__")
    assert (served.home / "var" / "figures" / f"waterfall-{r.json()['decision_id']}.png").exists()
