"""A training run in MLflow: what it was trained on (lineage), what it logs, and the registered
version it leaves (``champion`` if first, else ``challenger``)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import pandas as pd

from scoring.data.ingest import connect, data_fingerprint
from scoring.features.catalog import catalog_hash
from scoring.settings import Settings
from scoring.training.report import log_tables
from scoring.training.spec import spec_hash


@dataclass
class TrainResult:
    """What a training run leaves: the registered version, its run and its out-of-time figures."""

    model_name: str
    version: str
    run_id: str
    test_as_of: dt.date
    train_as_of: list[dt.date]
    metrics: dict[str, float]
    grades: pd.DataFrame
    alias: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def code_version() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        from scoring import __version__

        return __version__


def current_lineage(settings: Settings, spec_path: Path | None = None) -> dict[str, str]:
    """Hashes of the data, catalog and spec a model would be trained on now, and one over all three."""
    spec_path = spec_path or settings.model_spec_path("credit_evaluation")
    with connect(settings.warehouse_path, read_only=True) as con:
        data = data_fingerprint(con)
    parts = {
        "data_fingerprint": data,
        "catalog_hash": catalog_hash(settings.catalog_path),
        "spec_hash": spec_hash(spec_path),
    }
    parts["fingerprint"] = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]
    return parts


@dataclass
class RunRecord:
    """What a training run logs to MLflow: its inputs, figures, report and the model to register."""

    run_name: str
    params: dict[str, Any]
    lineage: dict[str, Any]
    metrics: dict[str, float]
    figures: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    card: str
    config_key: str  # "scorer_config" or "amount_config": the metadata the loaders look for
    config: dict[str, Any]
    example: pd.DataFrame
    tags: dict[str, str]


def log_run(
    settings: Settings, *, experiment_id: str, booster: lgb.Booster, name: str, record: RunRecord, register: bool
) -> tuple[str, str, str]:
    """Log one run (params, lineage tags, ``test_`` metrics, plots, tables, model card, config) and,
    when ``register``, register its booster; return (run id, version, alias)."""
    import mlflow

    with mlflow.start_run(experiment_id=experiment_id, run_name=record.run_name) as run:
        mlflow.log_params(record.params)
        mlflow.set_tags({f"lineage.{k}": str(v) for k, v in record.lineage.items()})
        mlflow.log_metrics({f"test_{k}": v for k, v in record.metrics.items()})
        for path, figure in record.figures.items():
            mlflow.log_figure(figure, path)
        log_tables(record.tables)
        mlflow.log_text(record.card, "model_card.md")
        mlflow.log_text(json.dumps(record.config, ensure_ascii=False, indent=2), f"{record.config_key}.json")
        version, alias = "0", ""
        if register:
            version, alias = register_booster(
                settings,
                booster=booster,
                name=name,
                example=record.example,
                metadata={record.config_key: record.config},
                tags={**record.tags, "lineage_fingerprint": record.lineage["fingerprint"]},
            )
    return run.info.run_id, version, alias


def register_booster(
    settings: Settings,
    *,
    booster: lgb.Booster,
    name: str,
    example: pd.DataFrame,
    metadata: dict[str, Any],
    tags: dict[str, str],
) -> tuple[str, str]:
    """Log the booster in the active run and register it with its signature; return (version, alias).

    The first version of a model becomes ``champion``; later ones become ``challenger`` and reach
    ``champion`` only through `scoring promote` and its gate.
    """
    import mlflow
    from mlflow.models import infer_signature

    signature = infer_signature(example, booster.predict(example.to_numpy(), raw_score=True))
    info = mlflow.lightgbm.log_model(
        booster,
        name="model",
        signature=signature,
        input_example=example,
        registered_model_name=name,
        metadata=metadata,
    )
    version = str(info.registered_model_version)
    client = mlflow.MlflowClient()
    try:
        client.get_model_version_by_alias(name, settings.model_alias)
        alias = settings.challenger_alias
    except mlflow.exceptions.MlflowException:  # no champion yet: the first model is it
        alias = settings.model_alias
    client.set_registered_model_alias(name, alias, version)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    return version, alias
