"""A warehouse locked by another writer when the service starts: a named reason, then served once released."""

from __future__ import annotations

import subprocess
import sys
import time

from fastapi.testclient import TestClient

from scoring.serve.app import create_app

HOLD = "import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('held', flush=True); sys.stdin.read()"


def test_a_locked_warehouse_is_named_and_read_once_released(served) -> None:
    warehouse = str(served.settings.warehouse_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, warehouse], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        settings = served.settings.model_copy(update={"model_poll_seconds": 0.2})
        with TestClient(create_app(settings)) as client:
            locked = client.get("/readyz").json()
            assert locked["status"] == "not_ready"
            problems = " ".join(locked["problems"])
            assert "locked by another writer" in problems and f"PID {holder.pid}" in problems
            assert locked["registry"]["refused"] == {}  # no model refused for want of a snapshot to check it on
            holder.communicate(input="", timeout=30)  # the writer is done: its lock goes with it
            deadline = time.monotonic() + 60
            while (answer := client.get("/readyz")).status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert answer.status_code == 200, answer.text
            assert answer.json()["features_as_of"] is not None and answer.json()["problems"] == []
    finally:
        if holder.poll() is None:
            holder.kill()
