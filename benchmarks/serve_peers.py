"""The serving benchmark's peers: the same champion evaluation model served for prediction only, one row
per request, by `mlflow models serve` (from the project's environment) and by MLServer with its LightGBM
runtime (from its own, ``make serving-env``), each with as many worker processes as ours.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from load import free_port, start, stop, wait_ready, wrk

REPO = Path(__file__).resolve().parents[1]
MLSERVER = REPO / ".venv-serving" / "bin" / "mlserver"


def _rows(scorer, frame: pd.DataFrame) -> list[list[float | None]]:
    """The booster's input rows of the benchmark's enterprises, a missing value as null."""
    return [[None if np.isnan(v) else float(v) for v in scorer.vector(row)[0]] for row in frame.to_dict("records")]


def mlflow_serve(settings, env: dict[str, str], frame: pd.DataFrame, *, seconds: int, connections: int, workers: int):
    """wrk against `mlflow models serve` of the champion evaluation model: (its result, the model's URI)."""
    import mlflow

    from scoring.registry.versions import configure, load_version, resolve_alias

    configure(settings)
    version = resolve_alias(settings.model_name, settings.model_alias)
    uri = f"models:/{settings.model_name}/{version}"
    info = mlflow.models.get_model_info(uri)
    scorer = load_version(settings.model_name, version).scorer
    columns = [str(c.name) for c in info.signature.inputs.inputs] if info.signature else list(scorer.config.features)
    bodies = [json.dumps({"dataframe_split": {"columns": columns, "data": [row]}}) for row in _rows(scorer, frame)]
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="bench-mlflow-")) / "mlflow.log"
    bin_dir = Path(sys.executable).parent
    command = [str(bin_dir / "mlflow"), "models", "serve", "-m", uri, "--env-manager", "local"]
    proc = start(
        [*command, "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
        # it runs `uvicorn` from PATH: the one of this environment
        env={
            **env,
            "MLFLOW_TRACKING_URI": settings.tracking_uri,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        },
        log=log,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(f"{base}/ping", 180, proc, log)
        probe = httpx.post(f"{base}/invocations", content=bodies[0], headers={"Content-Type": "application/json"})
        assert probe.status_code == 200, probe.text
        wrk(base, "/invocations", bodies, auth=None, seconds=5, connections=connections)  # warm-up
        return wrk(base, "/invocations", bodies, auth=None, seconds=seconds, connections=connections), uri
    finally:
        stop(proc)


def mlserver(settings, frame: pd.DataFrame, *, seconds: int, connections: int, workers: int) -> dict:
    """wrk against MLServer's LightGBM runtime serving the same booster (its text model file), V2 protocol.

    MLServer answers HTTP in one process and predicts in ``parallel_workers`` processes of its own.
    """
    from scoring.registry.versions import configure, load_version, resolve_alias

    if not MLSERVER.exists():
        raise SystemExit(f"{MLSERVER} not found: `make serving-env` installs MLServer in its own environment")
    configure(settings)
    version = resolve_alias(settings.model_name, settings.model_alias)
    scorer = load_version(settings.model_name, version).scorer
    folder = Path(tempfile.mkdtemp(prefix="bench-mlserver-"))
    scorer.booster.save_model(str(folder / "model.txt"))
    http, grpc, metrics = free_port(), free_port(), free_port()
    server = {"http_port": http, "grpc_port": grpc, "metrics_port": metrics, "parallel_workers": workers}
    (folder / "settings.json").write_text(json.dumps({**server, "host": "127.0.0.1"}))
    model = {
        "name": "evaluation",
        "implementation": "mlserver_lightgbm.LightGBMModel",
        "parameters": {"uri": "./model.txt", "version": str(version)},
    }
    (folder / "model-settings.json").write_text(json.dumps(model))
    k = len(scorer.config.features)
    bodies = [
        json.dumps({"inputs": [{"name": "predict", "shape": [1, k], "datatype": "FP64", "data": row}]})
        for row in _rows(scorer, frame)
    ]
    log = folder / "mlserver.log"
    proc = start([str(MLSERVER), "start", str(folder)], env=dict(os.environ), log=log)
    try:
        base = f"http://127.0.0.1:{http}"
        wait_ready(f"{base}/v2/models/evaluation/ready", 180, proc, log)
        path = "/v2/models/evaluation/infer"
        probe = httpx.post(f"{base}{path}", content=bodies[0], headers={"Content-Type": "application/json"})
        assert probe.status_code == 200, probe.text
        wrk(base, path, bodies, auth=None, seconds=5, connections=connections)  # warm-up
        return wrk(base, path, bodies, auth=None, seconds=seconds, connections=connections)
    finally:
        stop(proc)
