"""The real server for end-to-end tests: uvicorn in its own process on a free loopback port."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A started server: its base URL, its process (the leader of its own process group) and its log."""

    base: str
    proc: subprocess.Popen
    log: Path


def served_env(settings, **extra: str) -> dict[str, str]:
    """The environment that serves the county of ``settings`` (and ``extra`` SCORING_ settings)."""
    return {
        **os.environ,
        "SCORING_HOME": str(settings.home),
        "SCORING_FEATURES_DIR": str(settings.features_dir),
        "SCORING_MODELS_DIR": str(settings.models_dir),
        "SCORING_MLFLOW_TRACKING_URI": settings.tracking_uri,
        "SCORING_MLFLOW_DIR": str(settings.mlflow_dir),
        **{f"SCORING_{k.upper()}": v for k, v in extra.items()},
    }


@contextmanager
def run_server(env: dict[str, str], log: Path, *, workers: int = 1) -> Iterator[Server]:
    """``scoring serve`` with ``env`` (uvicorn; with several workers, a socket each), ready (``/readyz``
    200) when this yields; stopped after."""
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scoring.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a process group of its own: a test may kill it with its workers
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
        yield Server(base=base, proc=proc, log=log)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.fixture(scope="module")
def server(served, tmp_path_factory):
    """The served county's API at a loopback URL, for the module."""
    log = tmp_path_factory.mktemp("server") / "uvicorn.log"
    with run_server(served_env(served.settings), log) as started:
        yield started.base


def pytest_terminal_summary(terminalreporter) -> None:
    """The contract runs' figures (tests/e2e/test_contract.py), when they ran."""
    from tests.e2e.test_contract import FIGURES

    if FIGURES:
        terminalreporter.section("schemathesis: the API against its OpenAPI document")
        for line in FIGURES:
            terminalreporter.write_line(line)
