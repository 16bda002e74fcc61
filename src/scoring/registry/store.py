"""The MLflow store: tracking URI, experiments, registered versions and aliases.

MLflow runs on a SQLite backend under mlflow/ by default (the file store is in maintenance
mode in MLflow 3). Nothing here runs at import time: commands call :func:`configure`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow import MlflowClient

from scoring.registry.scorer import Scorer, ScorerConfig
from scoring.settings import Settings

log = logging.getLogger(__name__)

CONFIG_KEY = "scorer_config"


def configure(settings: Settings) -> MlflowClient:
    """Point MLflow at the project's store (creating the folder for a local SQLite store)."""
    uri = settings.tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def ensure_experiment(settings: Settings, name: str) -> str:
    """The experiment's id, creating it with artifacts under mlflow/artifacts for a local store."""
    client = MlflowClient()
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = settings.artifact_root if settings.tracking_uri.startswith("sqlite:") else None
    return client.create_experiment(name, artifact_location=location)


@dataclass
class LoadedModel:
    """A registered model version loaded for scoring."""

    name: str
    version: str
    alias: str | None
    run_id: str | None
    scorer: Scorer

    @property
    def config(self) -> ScorerConfig:
        return self.scorer.config


def load_version(name: str, version: str, alias: str | None = None) -> LoadedModel:
    """Load one registered version: the native booster and the scorer config stored with it."""
    uri = f"models:/{name}/{version}"
    info = mlflow.models.get_model_info(uri)
    if not info.metadata or CONFIG_KEY not in info.metadata:
        raise ValueError(f"{uri} carries no scorer config: it was not registered by `scoring train`")
    config = ScorerConfig.model_validate(info.metadata[CONFIG_KEY])
    booster = mlflow.lightgbm.load_model(uri)
    mv = MlflowClient().get_model_version(name, version)
    return LoadedModel(name=name, version=str(version), alias=alias, run_id=mv.run_id, scorer=Scorer(booster, config))


def resolve_alias(name: str, alias: str) -> str:
    """The version number the alias points at now."""
    return str(MlflowClient().get_model_version_by_alias(name, alias).version)
