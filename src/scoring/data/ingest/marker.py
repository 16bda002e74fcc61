"""A load in progress, marked beside the warehouse: a load killed before it could say so is reported by the next.

The marker is written once the warehouse's write lock is held, so a marker found then belongs to a
load whose process is gone (killed, or the machine stopped). Its transaction never committed, so
nothing of it is in the warehouse; the next load says so and goes on.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from scoring.data.ingest.errors import LoadAborted

log = logging.getLogger(__name__)


def marker_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".loading")


@contextmanager
def interrupted_load_marker(warehouse: Path, load_id: str) -> Iterator[dict[str, Any] | None]:
    """Mark ``load_id`` as running for the block; yield the interrupted load found instead, if any."""
    path = marker_path(warehouse)
    found: dict[str, Any] | None = None
    if path.exists():
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            found = {"load_id": "unknown", "started": "unknown"}
        log.warning(
            "load %s (started %s) was interrupted before it finished; nothing of it was kept",
            found.get("load_id"),
            found.get("started"),
        )
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    try:
        path.write_text(json.dumps({"load_id": load_id, "pid": os.getpid(), "started": started}), encoding="utf-8")
    except OSError as exc:
        raise LoadAborted.of(load_id, exc) from exc
    try:
        yield found
    finally:
        path.unlink(missing_ok=True)
