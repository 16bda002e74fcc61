"""A corrupt or truncated booster registered as the new champion: refused, the last good set serves on."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient

from scoring.serve.app import create_app

NAME = "credit_evaluation"


def _damaged(client: MlflowClient, source: str, into: Path, how: str) -> str:
    """A copy of ``source``'s artifacts with its booster file damaged ``how``; the copy's folder."""
    shutil.copytree(client.get_model_version_download_uri(NAME, source).removeprefix("file://"), into)
    booster = into / "model.lgb"
    text = booster.read_bytes()
    if how == "truncated":
        booster.write_bytes(text[: len(text) // 2])
    else:  # garbled in the middle: still ends as a whole file does
        middle = len(text) // 2
        booster.write_bytes(text[:middle] + b"\x00garbage\x00" * 400 + text[middle + 3600 :])
    return str(into)


@pytest.mark.parametrize("how", ["truncated", "garbled"])
def test_a_damaged_champion_is_refused_and_the_last_good_set_keeps_serving(served, keys, tmp_path, how) -> None:
    # a registry of our own (a copy of the county's), so that the damaged champion stays in this test
    store = tmp_path / "mlflow.db"
    shutil.copy(Path(served.settings.tracking_uri.removeprefix("sqlite:///")), store)
    uri = f"sqlite:///{store}"
    settings = served.settings.model_copy(update={"mlflow_tracking_uri": uri, "model_poll_seconds": 0.2})
    registry = MlflowClient(tracking_uri=uri, registry_uri=uri)
    good = registry.get_model_version_by_alias(NAME, "champion")
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").json()["status"] == "ready"
        source = _damaged(registry, good.version, tmp_path / "damaged", how)
        bad = registry.create_model_version(NAME, source, run_id=good.run_id)
        registry.set_registered_model_alias(NAME, "champion", bad.version)
        deadline = time.monotonic() + 60
        while (ready := client.get("/readyz").json())["status"] != "degraded" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ready["status"] == "degraded", ready
        (label, why), *_ = ready["registry"]["refused"].items()
        assert f"{NAME} v{bad.version}" in label and why.startswith("CorruptArtifact") and "model.lgb" in why
        assert [m["version"] for m in ready["models"] if m["name"] == NAME] == [str(good.version)]
        metrics = client.get("/metrics").text
        assert f'scoring_registry_refused{{fault="CorruptArtifact",versions="{label}"}} 1.0' in metrics
        asked = client.post("/v1/evaluations", json={"uscc": _one(served)}, headers=_auth(keys.analyst))
        assert asked.status_code == 200 and asked.json()["model"]["version"] == str(good.version)


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _one(served) -> str:
    import duckdb

    with duckdb.connect(str(served.settings.warehouse_path), read_only=True) as con:
        return con.execute("SELECT uscc FROM feature_snapshots ORDER BY as_of DESC, uscc LIMIT 1").fetchone()[0]
