"""One settings object for every command and the service, read from the environment or `.env`."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where the warehouse, MLflow store and decision store live, and how the API runs.

    Every field can be set as ``SCORING_<FIELD>`` in the environment or in `.env`.
    Relative paths are taken from ``home`` (the project folder by default).
    """

    model_config = SettingsConfigDict(env_prefix="SCORING_", env_file=".env", extra="ignore")

    home: Path = Field(default_factory=Path.cwd, description="project folder; relative paths start here")
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

    def path(self, p: Path) -> Path:
        """``p`` resolved against ``home``."""
        return p if p.is_absolute() else (self.home / p).resolve()

    @cached_property
    def warehouse_path(self) -> Path:
        return self.path(self.warehouse)

    @cached_property
    def raw_path(self) -> Path:
        return self.path(self.raw_dir)

    @cached_property
    def catalog_path(self) -> Path:
        return self.path(self.features_dir) / "catalog.yaml"

    def model_spec_path(self, name: str) -> Path:
        return self.path(self.models_dir) / f"{name}.yaml"

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking URI: the setting, else $MLFLOW_TRACKING_URI, else SQLite under mlflow/."""
        import os

        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        if os.environ.get("MLFLOW_TRACKING_URI"):
            return os.environ["MLFLOW_TRACKING_URI"]
        return f"sqlite:///{self.path(self.mlflow_dir) / 'mlflow.db'}"

    @property
    def artifact_root(self) -> str:
        return (self.path(self.mlflow_dir) / "artifacts").as_uri()

    @property
    def decision_url(self) -> str:
        return self.decision_db_url or f"sqlite:///{self.path(self.var_dir) / 'decisions.db'}"

    @property
    def demo_key_path(self) -> Path:
        return self.path(self.var_dir) / "demo_api_key"
