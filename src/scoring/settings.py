"""One settings object for every command and the service, read from the environment or `.env`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from scoring.errors import ScoringError

ENV_PREFIX = "SCORING_"


class HomeNotFoundError(ScoringError):
    """No project folder is known, and a setting needs one to resolve its relative path."""

    code = "no_home"
    status = None
    title_zh = "找不到项目目录"


def holds_specifications(folder: Path) -> bool:
    """Whether ``folder`` holds the feature catalog and the model specifications (a project folder)."""
    return (folder / "features" / "catalog.yaml").is_file() and (folder / "models").is_dir()


def installed_project() -> Path | None:
    """The repository the package was installed from (editable): the folder above ``src/scoring``
    holding ``pyproject.toml``, ``features/`` and ``models/``; None for an installed wheel."""
    folder = Path(__file__).resolve().parents[2]
    return folder if (folder / "pyproject.toml").is_file() and holds_specifications(folder) else None


def find_home() -> Path | None:
    """The home when ``SCORING_HOME`` is not set: the working folder when it holds the specifications,
    else the project the package was installed from; None when neither does."""
    cwd = Path.cwd()
    return cwd if holds_specifications(cwd) else installed_project()


class Settings(BaseSettings):
    """Where the warehouse, MLflow store and decision store live, and how the API runs.

    Every field can be set as ``SCORING_<FIELD>`` in the environment, in `.env` in the working folder
    or in `.env` in the home (in that order of precedence). Relative paths are taken from ``home``:
    ``SCORING_HOME``, else the working folder when it holds ``features/`` and ``models/``, else the
    project the package was installed from. With none of them, a setting whose relative path needs the
    home raises :class:`HomeNotFoundError` naming what to set; nothing is looked up at import time.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore")

    home: Path | None = Field(
        default_factory=find_home,
        description="project folder; relative paths start here (default: found, see the class docstring)",
    )
    var_dir: Path = Path("var")
    warehouse: Path = Path("var/warehouse.duckdb")
    raw_dir: Path = Path("var/raw")
    features_dir: Path = Path("features")
    models_dir: Path = Path("models")
    mlflow_dir: Path = Path("mlflow")
    mlflow_tracking_uri: str | None = Field(
        default=None, description="defaults to a SQLite store under mlflow/ (or $MLFLOW_TRACKING_URI)"
    )
    decision_db_url: str | None = Field(default=None, description="SQLAlchemy URL; defaults to var/decisions.db")
    experiment: str = "credit-evaluation"
    model_name: str = "credit_evaluation"
    model_alias: str = "champion"
    challenger_alias: str = "challenger"
    pre_credit_experiment: str = "pre-credit"
    monitoring_experiment: str = Field(default="monitoring", description="where `scoring monitor` logs its runs")
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = Field(default=64 * 1024, description="larger request bodies get 413 (chunked ones too)")
    max_batch_body_bytes: int = Field(default=1024 * 1024, description="the body limit of /v1/batch/evaluations")
    rate_limit_per_minute: int = Field(
        default=600, description="requests a key may make per minute (per server process), unless the key sets its own"
    )
    max_in_flight: int = Field(
        default=48,
        ge=1,
        description="requests a server process works on at once; more get 503 with Retry-After at once "
        "(health, readiness and metrics are always answered)",
    )
    stored_outputs: bool = Field(
        default=True,
        description="take a decision's model outputs (the three TreeSHAP passes) from what `scoring score` stored "
        "for the served snapshot and champion versions, when current; false: compute them for every request",
    )
    key_cache_seconds: float = Field(
        default=5.0, description="how long a live API key is remembered: a revoked key is refused at most this late"
    )
    model_poll_seconds: float = Field(
        default=30.0, description="how often the service asks the registry for a new champion"
    )
    console_secure_cookie: bool = Field(
        default=False, description="mark the console's session cookie Secure (set it when served over HTTPS)"
    )
    console_warm: bool = Field(
        default=True,
        description="grade the whole population for the console's supervision pages as soon as a model loads",
    )
    duckdb_memory_limit: str = Field(default="6GB", description="DuckDB spills to disk beyond this")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The usual sources, then the home's `.env` (when the home is not the working folder)."""
        given = init_settings.init_kwargs if isinstance(init_settings, InitSettingsSource) else {}
        home = given.get("home") or env_settings().get("home") or dotenv_settings().get("home") or find_home()
        sources = [init_settings, env_settings, dotenv_settings]
        if home is not None:
            env_file = Path(home) / ".env"
            if env_file.is_file() and env_file.resolve() != Path(".env").resolve():
                sources.append(DotEnvSettingsSource(settings_cls, env_file=env_file))
        return (*sources, file_secret_settings)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Settings:
        """A copy with ``update`` applied, its derived paths worked out again.

        pydantic copies the instance's ``__dict__``, where ``cached_property`` keeps its values: a
        copy with another ``warehouse`` or ``var_dir`` would otherwise keep the old paths.
        """
        copy = super().model_copy(update=update, deep=deep)
        for cls in type(self).__mro__:
            for name, member in vars(cls).items():
                if isinstance(member, cached_property):
                    copy.__dict__.pop(name, None)
        return copy

    def path(self, p: Path, *, setting: str | None = None) -> Path:
        """``p`` resolved against ``home``.

        Raises:
            HomeNotFoundError: ``p`` is relative and no home is known; the message names
                ``SCORING_HOME`` and ``setting`` (the variable that would make the home unneeded).
        """
        if p.is_absolute():
            return p
        if self.home is None:
            alternative = f", or {setting}" if setting else ""
            raise HomeNotFoundError(
                f"no project folder to find {p} in: set SCORING_HOME to the folder holding features/ and "
                f"models/{alternative} (the working folder {Path.cwd()} holds no features/catalog.yaml "
                "and the package was not installed from a project)",
                message_zh=f"找不到项目目录，无法定位 {p}：请设置 SCORING_HOME（包含 features/ 与 models/ 的目录）"
                + (f"，或设置 {setting}" if setting else ""),
            )
        return (self.home / p).resolve()

    def _field_path(self, field: str) -> Path:
        """The path setting ``field`` resolved against ``home`` (an error names ``SCORING_<FIELD>``)."""
        return self.path(getattr(self, field), setting=f"{ENV_PREFIX}{field.upper()}")

    @cached_property
    def warehouse_path(self) -> Path:
        return self._field_path("warehouse")

    @cached_property
    def lake_path(self) -> Path:
        """The Parquet lake `scoring export` writes for Spark."""
        return self._field_path("var_dir") / "lake"

    @cached_property
    def spark_path(self) -> Path:
        """Where the Spark path writes its snapshots, labels and scores (Parquet), and its cluster's scratch."""
        return self._field_path("var_dir") / "spark"

    @cached_property
    def raw_path(self) -> Path:
        return self._field_path("raw_dir")

    @cached_property
    def catalog_path(self) -> Path:
        return self._field_path("features_dir") / "catalog.yaml"

    def model_spec_path(self, name: str) -> Path:
        return self._field_path("models_dir") / f"{name}.yaml"

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking URI: the setting, else $MLFLOW_TRACKING_URI, else SQLite under mlflow/."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        if os.environ.get("MLFLOW_TRACKING_URI"):
            return os.environ["MLFLOW_TRACKING_URI"]
        mlflow_dir = self.path(self.mlflow_dir, setting=f"{ENV_PREFIX}MLFLOW_TRACKING_URI")
        return f"sqlite:///{mlflow_dir / 'mlflow.db'}"

    @property
    def artifact_root(self) -> str:
        """Where a new experiment of a SQLite store keeps its artifacts: mlflow/artifacts, except for a
        store named only by $MLFLOW_TRACKING_URI, whose artifacts go in the `artifacts` folder beside it
        (a store kept outside the project keeps its runs whole)."""
        outside = "" if self.mlflow_tracking_uri else os.environ.get("MLFLOW_TRACKING_URI", "")
        if outside.startswith("sqlite:///"):
            return (Path(outside.removeprefix("sqlite:///")).parent / "artifacts").resolve().as_uri()
        return (self._field_path("mlflow_dir") / "artifacts").as_uri()

    @property
    def decision_url(self) -> str:
        if self.decision_db_url:
            return self.decision_db_url
        return f"sqlite:///{self.path(self.var_dir, setting=f'{ENV_PREFIX}DECISION_DB_URL') / 'decisions.db'}"

    @property
    def demo_key_path(self) -> Path:
        return self._field_path("var_dir") / "demo_api_key"
