"""The real server for end-to-end tests: uvicorn in its own process on a free loopback port."""

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(served, tmp_path_factory):
    """The served county's API at a loopback URL, for the module."""
    port = free_port()
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
