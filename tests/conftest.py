"""Shared fixtures: one small generated county, ingested, featured and trained once per session."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
from fastapi.testclient import TestClient

from scoring.data.generate import GeneratorConfig, generate
from scoring.data.ingest import connect, extract_date_of, ingest_directory
from scoring.features.build import store_snapshot
from scoring.features.catalog import load_catalog
from scoring.serve.app import create_app
from scoring.settings import Settings
from scoring.store import Purpose, Role, create_key, engine_for, grant_consent
from scoring.store.local_postgres import NoPostgres, local_postgres

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
        console_warm=False,  # no background reader of the warehouse while tests write to it
    )


def authorize(engine, *, uscc: str, bank_id: str, purpose: Purpose = Purpose.PRE_CREDIT) -> dict:
    """The enterprise's consent (授权) for the bank and purpose, in force from yesterday for 30 days."""
    today = dt.date.today()
    return grant_consent(
        engine,
        uscc=uscc,
        bank_id=bank_id,
        purpose=purpose,
        granted_on=today - dt.timedelta(days=1),
        expires_on=today + dt.timedelta(days=30),
        evidence="tests",
        created_by="tests",
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
def served(county, trained, pre_credit_trained):
    """The county with its champion models (evaluation and pre-credit) and the serving snapshot built."""
    catalog = load_catalog(county.settings.catalog_path)
    with connect(county.settings.warehouse_path) as con:
        as_of = extract_date_of(con)
        store_snapshot(con, catalog, as_of=as_of)
    return county


@pytest.fixture(scope="session")
def analyst_key(served) -> str:
    secret, _ = create_key(engine_for(served.settings.decision_url), role=Role.ANALYST, label="tests")
    return secret


@dataclass
class Keys:
    """One live key per role, two banks among them (secrets)."""

    analyst: str
    regulator: str
    admin: str
    bank_a: str
    bank_b: str
    enterprise: str  # the key of one enterprise of the served snapshot, reading about itself


@pytest.fixture(scope="session")
def keys(served) -> Keys:
    engine = engine_for(served.settings.decision_url)

    def make(role: Role, bank: str | None = None, uscc: str | None = None) -> str:
        return create_key(engine, role=role, bank_id=bank, uscc=uscc, label=f"tests {role}", rate_per_minute=100_000)[0]

    with duckdb.connect(str(served.settings.warehouse_path), read_only=True) as con:
        row = con.execute(
            "SELECT min(uscc) FROM feature_snapshots WHERE as_of = (SELECT max(as_of) FROM feature_snapshots)"
        ).fetchone()

    return Keys(
        analyst=make(Role.ANALYST),
        regulator=make(Role.REGULATOR),
        admin=make(Role.ADMIN),
        bank_a=make(Role.BANK, "BANK_A"),
        bank_b=make(Role.BANK, "BANK_B"),
        enterprise=make(Role.ENTERPRISE, uscc=row[0] if row else None),
    )


def skip_or_fail(reason: str) -> None:
    """Skip, saying why; in CI (SCORING_REQUIRE_SYSTEM_DEPS=1, set by .ci/run) fail instead."""
    if os.environ.get("SCORING_REQUIRE_SYSTEM_DEPS") == "1":
        pytest.fail(f"{reason} (CI requires it: see `make system-deps`)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server on a free loopback port, for the session; skipped (saying so) without binaries.

    CI installs the server from the OS packages (.ci/run); fsync is off: the tests check semantics.
    """
    try:
        with local_postgres(durable=False) as url:
            yield url
    except NoPostgres as exc:  # raised on entering, before anything was yielded
        skip_or_fail(f"{exc}: the PostgreSQL tests did not run")


@pytest.fixture(scope="session")
def client(served):
    with TestClient(create_app(served.settings)) as c:
        yield c


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A SparkSession on a real standalone master with two workers on 127.0.0.1, for the session;
    skipped (saying so) without Java or PySpark, a failure in CI."""
    from scoring.features.spark import SparkUnavailable, java_missing, session, start_cluster

    why = java_missing()
    if why:
        skip_or_fail(f"{why}: the Spark tests did not run")
    try:
        cluster = start_cluster(tmp_path_factory.mktemp("spark"), workers=2, cores=1, memory="1g")
    except SparkUnavailable as exc:
        skip_or_fail(f"{exc}: the Spark tests did not run")
    with cluster:
        spark = session(cluster.master_url, app="scoring-tests")
        try:
            yield spark
        finally:
            spark.stop()
