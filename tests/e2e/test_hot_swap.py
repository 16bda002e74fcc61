"""Models without downtime, with real processes: an MLflow tracking server and the uvicorn service.

The registry is a copy of the county's MLflow store behind ``mlflow server``; the service polls it
every second. While a client keeps asking for evaluations, a new champion is registered (served
without a failed request), then a wrong one (refused, the last good one kept), then the registry
is stopped (the service keeps serving and /readyz says degraded).
"""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient

from scoring.store import Role, create_key, engine_for
from tests.e2e.conftest import free_port

pytestmark = pytest.mark.e2e

NAME = "credit_evaluation"


def _wait(predicate, seconds: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"{what} within {seconds} s" + (f": {log.read_text()[-3000:]}" if log else ""))


@pytest.fixture(scope="module")
def stack(served, tmp_path_factory):
    home = tmp_path_factory.mktemp("swap")
    db = home / "mlflow.db"
    shutil.copy(Path(served.settings.tracking_uri.removeprefix("sqlite:///")), db)
    mlflow_port, api_port = free_port(), free_port()
    tracking = f"http://127.0.0.1:{mlflow_port}"
    mlflow_log = (home / "mlflow.log").open("w")
    registry = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{db}",
            "--host",
            "127.0.0.1",
            "--port",
            str(mlflow_port),
            "--workers",
            "1",
        ],
        stdout=mlflow_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    s = served.settings
    decision_db = f"sqlite:///{home / 'decisions.db'}"
    env = {
        **os.environ,
        "SCORING_HOME": str(s.home),
        "SCORING_FEATURES_DIR": str(s.features_dir),
        "SCORING_MODELS_DIR": str(s.models_dir),
        "SCORING_MLFLOW_TRACKING_URI": tracking,
        "SCORING_DECISION_DB_URL": decision_db,
        "SCORING_MODEL_POLL_SECONDS": "1",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
    }
    api_log_path = home / "uvicorn.log"
    api_log = api_log_path.open("w")
    base = f"http://127.0.0.1:{api_port}"
    api = None
    try:
        _wait(lambda: httpx.get(f"{tracking}/health", timeout=2).status_code == 200, 120, "mlflow server up")
        api = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "scoring.serve.app:create_app", "--factory", "--port", str(api_port)],
            env=env,
            stdout=api_log,
            stderr=subprocess.STDOUT,
        )
        _wait(lambda: httpx.get(f"{base}/readyz", timeout=2).status_code == 200, 120, "service ready", api_log_path)
        key, _ = create_key(engine_for(decision_db), role=Role.ANALYST, rate_per_minute=1_000_000)
        yield {"base": base, "tracking": tracking, "registry": registry, "key": key, "log": api_log_path}
    finally:
        if api is not None:
            api.terminate()
            api.wait(timeout=30)
        if registry.poll() is None:
            os.killpg(registry.pid, signal.SIGTERM)
            registry.wait(timeout=30)


class Hammer:
    """Evaluations in a loop on another thread: every status code and served version, in order."""

    def __init__(self, base: str, key: str, uscc: str):
        self.base, self.key, self.uscc = base, key, uscc
        self.codes: list[int] = []
        self.versions: list[str] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {self.key}"}, timeout=30) as c:
            while not self._stop.is_set():
                try:
                    r = c.post("/v1/evaluations", json={"uscc": self.uscc})
                except httpx.HTTPError as exc:  # a dropped or timed-out request is a failed one
                    self.codes.append(-1)
                    self.failures.append(repr(exc))
                    continue
                self.codes.append(r.status_code)
                if r.status_code == 200:
                    self.versions.append(r.json()["model"]["version"])

    def __enter__(self) -> "Hammer":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _ready(base: str) -> dict:
    return httpx.get(f"{base}/readyz", timeout=10).json()


def test_new_champion_swaps_in_without_a_failed_request_and_a_wrong_one_is_refused(stack, served) -> None:
    import duckdb

    with duckdb.connect(str(served.settings.warehouse_path), read_only=True) as con:
        uscc = con.execute("SELECT uscc FROM feature_snapshots ORDER BY as_of DESC, uscc LIMIT 1").fetchone()[0]
    client = MlflowClient(tracking_uri=stack["tracking"], registry_uri=stack["tracking"])
    current = client.get_model_version_by_alias(NAME, "champion")
    base = stack["base"]
    with Hammer(base, stack["key"], uscc) as hammer:
        _wait(lambda: len(hammer.codes) > 20, 60, "requests flowing")
        # a new version of the same model becomes champion: the service takes it up without restart
        new = client.create_model_version(
            NAME, current.source, run_id=current.run_id, model_id=current.source.removeprefix("models:/")
        )
        client.set_registered_model_alias(NAME, "champion", new.version)
        _wait(lambda: hammer.versions and hammer.versions[-1] == str(new.version), 60, "new champion served")
        _wait(lambda: _ready(base)["status"] == "ready", 60, "ready on the new champion")
        # a wrong version (the amount model registered under the evaluation's name) is refused
        amount = client.get_model_version_by_alias("pre_credit_amount", "champion")
        wrong = client.create_model_version(
            NAME, amount.source, run_id=amount.run_id, model_id=amount.source.removeprefix("models:/")
        )
        client.set_registered_model_alias(NAME, "champion", wrong.version)
        _wait(lambda: _ready(base)["status"] == "degraded", 60, "wrong champion refused")
        ready = _ready(base)
        assert any(f"{NAME} v{wrong.version}" in label for label in ready["registry"]["refused"])
        served_before = len(hammer.codes)
        _wait(lambda: len(hammer.codes) > served_before + 20, 60, "still serving")
    assert hammer.codes and set(hammer.codes) == {200}, (
        f"failed requests: {[c for c in hammer.codes if c != 200]} {hammer.failures[:3]}"
    )
    assert str(current.version) in hammer.versions and str(new.version) in hammer.versions
    assert str(wrong.version) not in hammer.versions
    # the swap is ordered: once the new version answered, the old one never did again
    first_new = hammer.versions.index(str(new.version))
    assert set(hammer.versions[first_new:]) == {str(new.version)}
    # put the good champion back for the next test
    client.set_registered_model_alias(NAME, "champion", new.version)
    _wait(lambda: _ready(base)["status"] == "ready", 60, "good champion back")


def test_registry_down_keeps_the_last_good_model_and_readyz_says_degraded(stack, served) -> None:
    import duckdb

    with duckdb.connect(str(served.settings.warehouse_path), read_only=True) as con:
        uscc = con.execute("SELECT uscc FROM feature_snapshots ORDER BY as_of DESC, uscc LIMIT 1").fetchone()[0]
    base = stack["base"]
    os.killpg(stack["registry"].pid, signal.SIGTERM)
    stack["registry"].wait(timeout=30)
    _wait(lambda: _ready(base)["status"] == "degraded", 60, "degraded after the registry stopped", stack["log"])
    ready = httpx.get(f"{base}/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json()["registry"]["reachable"] is False
    assert any("unreachable" in p for p in ready.json()["problems"])
    r = httpx.post(
        f"{base}/v1/evaluations", json={"uscc": uscc}, headers={"Authorization": f"Bearer {stack['key']}"}, timeout=30
    )
    assert r.status_code == 200 and r.json()["model"]["name"] == NAME
    metrics = httpx.get(f"{base}/metrics", timeout=10).text
    assert "scoring_registry_reachable 0.0" in metrics
