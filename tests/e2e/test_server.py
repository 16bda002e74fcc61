"""The real server: uvicorn in its own process on a free loopback port, called over HTTP."""

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from scoring.serve.store import Purpose, Role, create_key, engine_for
from tests.conftest import authorize

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(served, tmp_path_factory):
    port = _free_port()
    s = served.settings
    env = {
        **os.environ,
        "SCORING_HOME": str(s.home),
        "SCORING_FEATURES_DIR": str(s.features_dir),
        "SCORING_MODELS_DIR": str(s.models_dir),
        "SCORING_MLFLOW_TRACKING_URI": s.tracking_uri,
        "SCORING_MLFLOW_DIR": str(s.mlflow_dir),
    }
    log = tmp_path_factory.mktemp("server") / "uvicorn.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "scoring.serve.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"server exited: {log.read_text()}")
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        else:
            pytest.fail(f"server not ready in 120 s: {log.read_text()}")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_served_explained_score_over_http(server, served, known_uscc) -> None:
    engine = engine_for(served.settings.decision_url)
    secret, _ = create_key(engine, role=Role.BANK, bank_id="B3413001")
    authorize(engine, uscc=known_uscc, bank_id="B3413001", purpose=Purpose.EVALUATION)
    r = httpx.post(
        f"{server}/v1/evaluations", json={"uscc": known_uscc}, headers={"Authorization": f"Bearer {secret}"}, timeout=30
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["uscc"] == known_uscc and body["grade"] in "ABCD" and body["reasons"]
    assert httpx.get(f"{server}/healthz").json() == {"status": "ok"}
    assert httpx.post(f"{server}/v1/evaluations", json={"uscc": known_uscc}).status_code == 401
    bad = httpx.post(
        f"{server}/v1/evaluations", json={"uscc": "91320100748204660X"}, headers={"Authorization": f"Bearer {secret}"}
    )
    assert bad.status_code == 422 and "check character" in bad.json()["error"]["message_en"]


@pytest.fixture(scope="module")
def known_uscc(served) -> str:
    import duckdb

    con = duckdb.connect(str(served.settings.warehouse_path), read_only=True)
    try:
        return con.execute("SELECT uscc FROM feature_snapshots ORDER BY as_of DESC, uscc LIMIT 1").fetchone()[0]
    finally:
        con.close()
