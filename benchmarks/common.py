"""What every benchmark shares: run a step in a fresh Python, and write its section of docs/benchmarks.md."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"


def run(code: str, *args: str, env: dict[str, str] | None = None) -> tuple[dict, float, float]:
    """(the step's JSON output, wall seconds, peak RSS in GiB) of ``code`` run in a fresh Python.

    Each step has its own process, so that its peak RSS is its own; the step prints one JSON line last.
    """
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as sink:  # a file, not a pipe: a full pipe would block the child
        proc = subprocess.Popen(
            [sys.executable, "-c", code, *args], stdout=sink, text=True, cwd=REPO, env={**os.environ, **(env or {})}
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        sink.seek(0)
        out = sink.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"step failed: {out}")
    return json.loads(out.strip().splitlines()[-1]), wall, usage.ru_maxrss / 1024**2


def write_section(heading: str, text: str) -> None:
    """Replace the section under ``heading`` in docs/benchmarks.md (or append it)."""
    current = (
        DOC.read_text(encoding="utf-8")
        if DOC.exists()
        else "# Benchmarks\n\nMeasured, not asserted: each section says the command that produced it.\n"
    )
    if heading in current:
        before, _, rest = current.partition(heading)
        after = rest[rest.find("\n## ") :] if "\n## " in rest else ""
        current = before.rstrip() + "\n\n" + text.rstrip() + "\n" + after
    else:
        current = current.rstrip() + "\n\n" + text.rstrip() + "\n"
    DOC.write_text(current, encoding="utf-8")
