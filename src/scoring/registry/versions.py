"""The MLflow store: tracking URI, experiments, registered versions and aliases.

MLflow runs on a SQLite backend under mlflow/ by default (the file store is in maintenance
mode in MLflow 3). Nothing here runs at import time: commands call :func:`configure`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow
from mlflow import MlflowClient

from scoring.domain.models import LoadedModel
from scoring.domain.scorer import AmountConfig, AmountScorer, Scorer, ScorerConfig
from scoring.settings import Settings

log = logging.getLogger(__name__)

CONFIG_KEY = "scorer_config"
AMOUNT_KEY = "amount_config"


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


def load_scorer(name: str, version: str, *, alias: str | None = None, card: bool = False) -> LoadedModel:
    """Load one registered version: the native booster and the config stored with it.

    A credit evaluation or default model comes back with a :class:`Scorer`, the amount model with
    an :class:`AmountScorer`. With ``card`` the run's model card (model_card.md) is read too.
    """
    uri = f"models:/{name}/{version}"
    info = mlflow.models.get_model_info(uri)
    meta = info.metadata or {}
    booster = mlflow.lightgbm.load_model(uri)
    scorer: Scorer | AmountScorer
    if CONFIG_KEY in meta:
        scorer = Scorer(booster, ScorerConfig.model_validate(meta[CONFIG_KEY]))
    elif AMOUNT_KEY in meta:
        scorer = AmountScorer(booster, AmountConfig.model_validate(meta[AMOUNT_KEY]))
    else:
        raise ValueError(f"{uri} carries no scorer config: it was not registered by `scoring train`")
    mv = MlflowClient().get_model_version(name, version)
    signature = [str(c.name) for c in info.signature.inputs.inputs] if info.signature else None
    text = _card(mv.run_id, uri) if card and mv.run_id else None
    return LoadedModel(
        name=name,
        version=str(version),
        alias=alias,
        run_id=mv.run_id,
        scorer=scorer,
        signature=signature,
        model_card=text,
    )


def _card(run_id: str, uri: str) -> str | None:
    try:
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="model_card.md")
        return Path(path).read_text(encoding="utf-8")
    except Exception as exc:  # a card is documentation: its absence does not stop scoring
        log.warning("no model card for %s: %s", uri, exc)
        return None


def model_card(name: str, version: str) -> tuple[str | None, str | None]:
    """(run id, model card text) of a registered version, without loading its booster."""
    mv = MlflowClient().get_model_version(name, version)
    return mv.run_id, _card(mv.run_id, f"models:/{name}/{version}") if mv.run_id else None


def load_version(name: str, version: str, alias: str | None = None) -> LoadedModel:
    """Load one registered credit evaluation or default model version (a :class:`Scorer`)."""
    loaded = load_scorer(name, version, alias=alias)
    if not isinstance(loaded.scorer, Scorer):
        raise ValueError(f"models:/{name}/{version} is an amount model, not a scorer")
    return loaded


def resolve_alias(name: str, alias: str) -> str:
    """The version number the alias points at now."""
    return str(MlflowClient().get_model_version_by_alias(name, alias).version)
