"""The commands find the project's specifications and settings from any folder: ``SCORING_HOME``, else
the working folder when it is a project, else the project the package was installed from, else an
error naming what to set (issue 14's one defect: `scoring train-table` failed outside the project)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

import scoring.settings
from scoring.cli import app
from scoring.data.synthetic_tables import flat_table
from scoring.settings import HomeNotFoundError, Settings

REPO = Path(__file__).resolve().parents[2]


def _scoring_script() -> str:
    """The installed `scoring` script of the interpreter running the tests."""
    beside = Path(sys.executable).parent / "scoring"
    found = str(beside) if beside.exists() else shutil.which("scoring")
    assert found, "the `scoring` script is not installed"
    return found


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder, outside the project, with no SCORING_ variable set."""
    for name in list(os.environ):
        if name.startswith("SCORING_") or name == "MLFLOW_TRACKING_URI":
            monkeypatch.delenv(name)
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def test_scoring_home_is_the_home(elsewhere: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("SCORING_HOME", str(home))
    settings = Settings()
    assert settings.home == home
    assert settings.catalog_path == home / "features" / "catalog.yaml"
    assert settings.model_spec_path("credit_evaluation") == home / "models" / "credit_evaluation.yaml"
    assert settings.warehouse_path == home / "var" / "warehouse.duckdb"


def test_without_scoring_home_the_installed_project_is_the_home(elsewhere: Path) -> None:
    settings = Settings()
    assert settings.home == REPO  # installed editable from the repository
    assert settings.model_spec_path("credit_evaluation") == REPO / "models" / "credit_evaluation.yaml"
    assert settings.model_spec_path("credit_evaluation").is_file()
    assert settings.catalog_path.is_file()


def test_a_project_folder_one_works_in_stays_the_home(elsewhere: Path) -> None:
    """Run from a project folder (another checkout, a deployment), its own specifications count, as before."""
    (elsewhere / "features").mkdir()
    (elsewhere / "features" / "catalog.yaml").write_text("features: []\n", encoding="utf-8")
    (elsewhere / "models").mkdir()
    assert Settings().home == elsewhere


def test_the_homes_env_file_is_read(elsewhere: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".env").write_text("SCORING_PORT=9123\nSCORING_MODEL_ALIAS=staging\n", encoding="utf-8")
    (elsewhere / ".env").write_text("SCORING_MODEL_ALIAS=mine\n", encoding="utf-8")
    monkeypatch.setenv("SCORING_HOME", str(home))
    settings = Settings()
    assert settings.port == 9123  # from the home's .env
    assert settings.model_alias == "mine"  # the working folder's .env comes first, as before
    assert Settings(port=1).port == 1


def test_without_any_home_the_error_names_the_settings_to_set(elsewhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scoring.settings, "installed_project", lambda: None)  # as from an installed wheel
    settings = Settings()
    assert settings.home is None
    with pytest.raises(HomeNotFoundError, match="SCORING_HOME") as caught:
        settings.model_spec_path("credit_evaluation")
    assert "SCORING_MODELS_DIR" in caught.value.message_en and "SCORING_MODELS_DIR" in caught.value.message_zh
    with pytest.raises(HomeNotFoundError, match="SCORING_FEATURES_DIR"):
        _ = settings.catalog_path
    with pytest.raises(HomeNotFoundError, match="SCORING_MLFLOW_TRACKING_URI"):
        _ = settings.tracking_uri
    given = Settings(models_dir=REPO / "models")  # an absolute path needs no home
    assert given.model_spec_path("credit_evaluation") == REPO / "models" / "credit_evaluation.yaml"

    done = CliRunner().invoke(app, ["dictionary", "--check"], env={"COLUMNS": "400"})
    assert done.exit_code == 1, done.output
    assert done.output.startswith("error: no project folder") and "SCORING_HOME" in done.output
    assert "SCORING_FEATURES_DIR" in done.output and "Traceback" not in done.output


def test_nothing_is_created_or_looked_up_on_import(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCORING_")}
    code = "import scoring.cli, scoring.settings"
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True, capture_output=True)
    assert list(tmp_path.iterdir()) == []


def test_train_table_from_an_empty_folder_stores_the_run_where_mlflow_tracking_uri_says(tmp_path: Path) -> None:
    work, store = tmp_path / "work", tmp_path / "store"
    work.mkdir()
    flat_table(rows=600, columns=10, bad_rate=0.3, seed=5).to_csv(work / "loans.csv", index=False)
    uri = f"sqlite:///{store / 'mlflow.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCORING_", "MLFLOW_"))}
    env.update({"MLFLOW_TRACKING_URI": uri, "COLUMNS": "400"})

    done = subprocess.run(
        [_scoring_script(), "train-table", "loans.csv", "--target", "status", "--id", "borrower_id"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "registered models:/table_loans/1" in done.stdout

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    version = client.get_model_version("table_loans", "1")
    run = client.get_run(version.run_id)
    assert run.info.run_name == "table_loans" and run.data.tags["lineage.table"] == "loans.csv"
    assert 0.6 < run.data.metrics["oof_auc"] <= 1
    # the run's artifacts are kept with the store it was logged to, not in the project
    assert run.info.artifact_uri.startswith((store / "artifacts").as_uri())
    assert sorted(p.name for p in work.iterdir()) == ["loans.csv"]  # nothing written in the working folder
