"""What the serving benchmarks share: servers started and stopped as process groups, wrk as the load,
and what is read off the servers while they are loaded (requests per worker, CPU, peak memory).

wrk (Debian package ``wrk``, from ``make system-deps``) is the load generator because it is C and
needs a fraction of a core at these rates: a Python client would take the CPU the servers are
measured on.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
from common import tree_rss

WRK_LUA = """
local bodies = {%(bodies)s}
local headers = {["Content-Type"] = "application/json"%(auth)s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("POST", "%(path)s", headers, bodies[(i %% #bodies) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nRESULT {"requests": %%d, "duration_s": %%.3f, "connect": %%d, "read": %%d, "write": %%d, "status": %%d, '
    .. '"timeout": %%d, "p50_ms": %%.3f, "p90_ms": %%.3f, "p99_ms": %%.3f, "max_ms": %%.3f}\\n',
    summary.requests, summary.duration / 1e6, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
"""


# A client that honours Retry-After, as a bank's should: after a 503 one of the thread's connections waits that
# long before its next request. wrk's response() and delay() are per thread, not per connection, so each 503
# is a ticket the next connection of the thread about to send takes: as many waits as refusals, each of the
# refused request's length; wrk's latency clock starts when a request is sent, so the waits are not in it.
WRK_RETRY_AFTER_LUA = """
local waits = 0
response = function(status, headers, body)
  if status == 503 then
    waits = waits + 1
  end
end
delay = function()
  if waits > 0 then
    waits = waits - 1
    return %(retry_ms)d
  end
  return 0
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, seconds: float, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"server not ready within {seconds} s: {log.read_text()[-3000:]}")


def wrk(
    url: str,
    path: str,
    bodies: list[str],
    *,
    auth: str | None,
    seconds: int,
    connections: int,
    retry_after_ms: int | None = None,
) -> dict:
    """wrk's figures for ``seconds`` of POSTs of ``bodies`` in turn; with ``retry_after_ms``, a 503 is
    followed by that long a wait before a connection's next request (the server's Retry-After)."""
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    text = WRK_LUA % {
        "bodies": ",".join(json.dumps(b) for b in bodies),
        "auth": f', ["Authorization"] = "Bearer {auth}"' if auth else "",
        "path": path,
    }
    if retry_after_ms is not None:
        text += WRK_RETRY_AFTER_LUA % {"retry_ms": retry_after_ms}
    script.write_text(text)
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    result["per_s"] = result["requests"] / result["duration_s"]
    result["errors"] = sum(result[k] for k in ("connect", "read", "write", "status", "timeout"))
    return result


def per_worker(base: str, route: str, polls: int = 40) -> dict[str, dict[str, float]]:
    """Per server process (by pid), its count of ``route`` answered 200 and its latency histogram's count
    at or under 100 ms and in all, read from /metrics: each answer comes from the worker that took the
    request, so ``polls`` requests see every worker of a few."""
    ok = re.compile(rf'scoring_requests_total\{{method="POST",route="{re.escape(route)}",status="200"\}} (\S+)')
    fast = re.compile(rf'scoring_request_seconds_bucket\{{le="0.1",route="{re.escape(route)}"\}} (\S+)')
    every = re.compile(rf'scoring_request_seconds_count\{{route="{re.escape(route)}"\}} (\S+)')
    seen: dict[str, dict[str, float]] = {}
    for _ in range(polls):
        text = httpx.get(f"{base}/metrics", timeout=10).text
        pid = re.search(r'scoring_worker\{pid="(\d+)"\}', text)
        if pid is None:
            continue

        def value(pattern: re.Pattern, text: str = text) -> float:
            m = pattern.search(text)
            return float(m.group(1)) if m else 0.0

        seen[pid.group(1)] = {"ok": value(ok), "fast": value(fast), "all": value(every)}
    return seen


def drained(base: str, seconds: float = 30) -> None:
    """Wait until every worker has finished the requests of the last load (its ``scoring_in_flight`` is
    0): when wrk stops, the requests it leaves behind are still decided and stored, and the next load
    would find them in the works and be refused at the door for them."""
    deadline = time.monotonic() + seconds
    busy = re.compile(r"^scoring_in_flight (\S+)$", re.M)
    while time.monotonic() < deadline:
        counts = [busy.search(httpx.get(f"{base}/metrics", timeout=10).text) for _ in range(8)]
        if all(m is None or float(m.group(1)) == 0 for m in counts):
            return
        time.sleep(0.1)
    raise SystemExit(f"the server still had requests in the works {seconds} s after the load ended")


def between(before: dict, after: dict) -> dict[str, dict[str, float]]:
    return {pid: {k: v - before.get(pid, {}).get(k, 0.0) for k, v in now.items()} for pid, now in after.items()}


def cpu_seconds(pgid: int) -> float:
    """User and system CPU seconds so far of every process of a process group (a server and its workers)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:  # the process group, the 5th field of stat
                total += int(fields[11]) + int(fields[12])  # utime and stime, the 14th and 15th
        except (OSError, IndexError, ValueError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


class PeakMemory:
    """The peak resident memory of a process and everything below it, sampled every 0.2 s."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, tree_rss(self.pid))

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def start(command: list[str], *, env: dict[str, str], log: Path) -> subprocess.Popen:
    """A server in its own process group (so that _stop ends its workers too), its output to ``log``."""
    return subprocess.Popen(command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
