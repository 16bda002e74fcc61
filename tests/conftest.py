"""Shared fixtures: one small generated county, ingested, featured and trained once per session."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from scoring.data.generate import GeneratorConfig, generate
from scoring.data.ingest import connect, extract_date_of, ingest_directory
from scoring.features.build import store_snapshot
from scoring.features.catalog import load_catalog
from scoring.serve.app import create_app
from scoring.serve.store import Role, create_key, engine_for
from scoring.settings import Settings

REPO = Path(__file__).resolve().parents[1]
SMALL = GeneratorConfig(enterprises=2500, months=48, seed=11)


def settings_for(home: Path) -> Settings:
    """Settings for a throw-away home, reading the repository's catalog and model specs."""
    return Settings(
        home=home,
        features_dir=REPO / "features",
        models_dir=REPO / "models",
        mlflow_tracking_uri=f"sqlite:///{home / 'mlflow' / 'mlflow.db'}",
        mlflow_dir=home / "mlflow",
    )


@dataclass
class County:
    home: Path
    raw: Path
    manifest: dict
    settings: Settings


@pytest.fixture(scope="session")
def county(tmp_path_factory: pytest.TempPathFactory) -> County:
    """A generated county of 2,500 enterprises over 48 months, ingested into a warehouse."""
    home = tmp_path_factory.mktemp("county")
    raw = home / "var" / "raw"
    manifest = generate(SMALL, raw)
    settings = settings_for(home)
    ingest_directory(raw, settings.warehouse_path)
    return County(home=home, raw=raw, manifest=manifest, settings=settings)


@pytest.fixture(scope="session")
def trained(county: County):
    """The credit evaluation model trained and registered on the county (champion)."""
    from scoring.training.train import train_evaluation

    return train_evaluation(county.settings)


@pytest.fixture(scope="session")
def pre_credit_trained(county: County):
    """The 信易贷 default and amount models trained and registered on the county (champions)."""
    from scoring.training.precredit import train_pre_credit

    return train_pre_credit(county.settings)


@pytest.fixture()
def warehouse_copy(county: County, tmp_path: Path) -> Path:
    """A private copy of the county's warehouse that a test may change."""
    target = tmp_path / "warehouse.duckdb"
    shutil.copy(county.settings.warehouse_path, target)
    return target


@pytest.fixture(scope="session")
def served(county, trained):
    """The county with its champion model and the serving snapshot built."""
    catalog = load_catalog(county.settings.catalog_path)
    with connect(county.settings.warehouse_path) as con:
        as_of = extract_date_of(con)
        store_snapshot(con, catalog, as_of=as_of)
    return county


@pytest.fixture(scope="session")
def analyst_key(served) -> str:
    secret, _ = create_key(engine_for(served.settings.decision_url), role=Role.ANALYST, label="tests")
    return secret


@pytest.fixture(scope="session")
def client(served):
    with TestClient(create_app(served.settings)) as c:
        yield c
