"""What every benchmark shares: run a step in a fresh Python, and write its section of docs/benchmarks.md."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"


def tree_rss(pid: int) -> int:
    """The resident memory, in bytes, of ``pid`` and every process below it (read from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    tree, grew = {pid}, True
    while grew:
        more = {p for p, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    total = 0
    for p in tree:
        try:
            total += int((Path("/proc") / str(p) / "statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            continue
    return total


def run(
    code: str, *args: str, env: dict[str, str] | None = None, tree: dict[str, float] | None = None
) -> tuple[dict, float, float]:
    """(the step's JSON output, wall seconds, peak RSS in GiB) of ``code`` run in a fresh Python.

    Each step has its own process, so that its peak RSS is its own; the step prints one JSON line last.
    With ``tree``, the peak of the step's whole process tree (a Spark master, workers and executors
    are processes of their own) is sampled every half second into ``tree["gib"]``.
    """
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as sink:  # a file, not a pipe: a full pipe would block the child
        proc = subprocess.Popen(
            [sys.executable, "-c", code, *args], stdout=sink, text=True, cwd=REPO, env={**os.environ, **(env or {})}
        )
        if tree is not None:
            tree["gib"] = 0.0

            def sample() -> None:
                while proc.poll() is None:
                    tree["gib"] = max(tree["gib"], tree_rss(proc.pid) / 1024**3)
                    time.sleep(0.5)

            threading.Thread(target=sample, daemon=True).start()
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


def publish(heading: str, lines: list[str], *, write: bool) -> None:
    """Print a section's lines, and with ``write`` put them in docs/benchmarks.md under ``heading``."""
    text = "\n".join(lines) + "\n"
    print(text)
    if write:
        write_section(heading, text)
