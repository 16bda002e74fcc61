"""The MLflow store: tracking URI, experiments, registered versions and aliases.

MLflow runs on a SQLite backend under mlflow/ by default (the file store is in maintenance
mode in MLflow 3). Nothing here runs at import time: commands call :func:`configure`.
"""

from __future__ import annotations

import logging
import subprocess  # nosec B404 # the booster file is read first by a child process
import sys
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.models import Model

from scoring.domain.models import LoadedModel
from scoring.domain.scorer import AmountConfig, AmountScorer, Scorer, ScorerConfig
from scoring.errors import ScoringError
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
    local = mlflow.artifacts.download_artifacts(uri)
    check_readable(uri, local)
    booster = mlflow.lightgbm.load_model(local)
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


class CorruptArtifact(ScoringError):
    """A registered version's booster file that LightGBM cannot read whole."""

    code = "corrupt_model_artifact"
    status = None  # a registry fault: the service refuses the version and keeps what it serves
    title_zh = "模型文件损坏或不完整"


# the child reads the file with LightGBM's C library alone (ctypes: a tenth of a second, where importing the
# Python package takes seconds); argv: the library, the file
PROBE = """import ctypes, sys
lib = ctypes.cdll.LoadLibrary(sys.argv[1])
lib.LGBM_GetLastError.restype = ctypes.c_char_p
n, handle = ctypes.c_int(), ctypes.c_void_p()
if lib.LGBM_BoosterCreateFromModelfile(sys.argv[2].encode(), ctypes.byref(n), ctypes.byref(handle)) != 0:
    sys.exit(lib.LGBM_GetLastError().decode())
lib.LGBM_BoosterFree(handle)
"""


def _lightgbm_library() -> str:
    """The C library the lightgbm package loads (its wheels keep it in the package's lib/)."""
    import lightgbm

    return str(Path(lightgbm.__file__).parent / "lib" / "lib_lightgbm.so")


PROBE_SECONDS = 120


def check_readable(uri: str, local: str) -> None:
    """Refuse a booster file that is truncated or corrupt before this process reads it.

    LightGBM aborts the whole process (C++ ``std::terminate``) on some damaged model files instead of
    raising, so a file is first read by a child process; a file cut at a tree's end reads without
    error but lacks the closing ``end of trees``, which is checked here.
    """
    data = Path(local) / str(Model.load(local).flavors["lightgbm"]["data"])
    if not data.is_file():
        raise CorruptArtifact(f"{uri}: no booster file {data.name} among its artifacts")
    if b"end of trees" not in data.read_bytes():
        raise CorruptArtifact(f"{uri}: {data.name} is cut short (no 'end of trees'): truncated or corrupt")
    probe = subprocess.run(  # nosec B603 # this interpreter, a fixed script, a path of ours
        [sys.executable, "-I", "-c", PROBE, _lightgbm_library(), str(data)],
        capture_output=True,
        text=True,
        timeout=PROBE_SECONDS,
    )
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["no message"])[-1]
        raise CorruptArtifact(f"{uri}: LightGBM cannot read {data.name} (exit {probe.returncode}: {last})")


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
