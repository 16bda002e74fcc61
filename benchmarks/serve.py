"""Serving benchmark: one explained pre-credit decision in process, then the real server over HTTP.

1. In process: the decision functions every endpoint calls (``pre_credit_result`` with TreeSHAP
   of all three models, the policy, reasons in Chinese and the stored records), per decision, on
   enterprises of the demo county; then the same plus the audit append to the SQLite decision store.
2. Over HTTP: ``scoring serve --workers 2`` (uvicorn) under wrk, 64 connections for 60 s, each request
   a ``POST /v1/pre-credit`` of a bank for one of 2,000 enterprises that authorized it (consent
   checked, audit row appended). Side by side in the same run: ``mlflow models serve`` of the same
   champion evaluation model, a one-row ``/invocations`` per request (prediction only, no SHAP, no
   audit), under the same wrk settings.

wrk (Debian package ``wrk``, from ``make system-deps``) is the load generator because it is C and
needs a fraction of a core at these rates: a Python client would take the CPU the servers are
measured on. Run it on the demo home (``scoring demo --no-serve`` in an empty folder):

    .venv/bin/python benchmarks/serve.py --home /tmp/bench-demo --write
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from common import write_section  # noqa: E402

BANK = "BENCH_BANK"
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SCORING_HOME": str(home),
        "SCORING_FEATURES_DIR": str(REPO / "features"),
        "SCORING_MODELS_DIR": str(REPO / "models"),
        "SCORING_MODEL_POLL_SECONDS": "0",
    }


def _settings(home: Path):
    from scoring.settings import Settings

    return Settings(home=home, features_dir=REPO / "features", models_dir=REPO / "models", model_poll_seconds=0)


def in_process(home: Path, n: int, seed: int) -> dict:
    """Per-decision milliseconds of the decision alone and with its audit append."""
    from scoring.domain.decide import evaluation_record, pre_credit_record, pre_credit_result
    from scoring.serve.flow import Asked, payload
    from scoring.serve.state import Service
    from scoring.store import Event, Role, append, create_key

    settings = _settings(home).model_copy(
        update={"decision_db_url": f"sqlite:///{tempfile.mkdtemp(prefix='bench-decisions-')}/decisions.db"}
    )
    state = Service.open(settings)
    ready = state.ready()
    models, catalog = ready.models, ready.catalog
    rng = np.random.default_rng(seed)
    usccs = [str(u) for u in rng.choice(np.asarray(ready.online.usccs), size=n, replace=True)]
    rows = [ready.online.values(u) for u in usccs]
    _, key = create_key(state.engine, role=Role.BANK, bank_id=BANK)

    def decide(values: dict) -> tuple:
        result = pre_credit_result(models, values)
        return result, evaluation_record(result.evaluation, catalog, values), pre_credit_record(result, catalog, values)

    for values in rows[:200]:  # warm-up: first calls pay for lazily built structures
        decide(values)
    alone, stored = [], []
    for uscc, values in zip(usccs, rows, strict=True):
        t0 = time.perf_counter()
        decide(values)
        alone.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        _, evaluation, record = decide(values)
        asked = Asked(key=key, uscc=uscc, values=values, consent=None, records=([], []), warnings=[])
        stored_payload = payload(ready, asked, evaluation=evaluation, pre_credit=record)
        append(state.engine, [Event(kind="pre_credit", payload=stored_payload, key=key, uscc=uscc)])
        stored.append((time.perf_counter() - t0) * 1000)
    state.stop()

    def summary(ms: list[float]) -> dict:
        q = np.percentile(ms, [50, 90, 99])
        return {"p50_ms": q[0], "p90_ms": q[1], "p99_ms": q[2], "mean_ms": statistics.fmean(ms)}

    # this machine is shared and its speed drifts within minutes: the spread of rounds shows it
    rounds = [float(np.percentile(alone[i : i + 1000], 50)) for i in range(0, len(alone), 1000)]
    return {
        "decisions": n,
        "decision": summary(alone),
        "with_audit": summary(stored),
        "round_p50_ms": [min(rounds), max(rounds)],
    }


def _wait_ready(url: str, seconds: float, proc: subprocess.Popen, log: Path) -> None:
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


def _wrk(url: str, path: str, bodies: list[str], *, auth: str | None, seconds: int, connections: int) -> dict:
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(
        WRK_LUA
        % {
            "bodies": ",".join(json.dumps(b) for b in bodies),
            "auth": f', ["Authorization"] = "Bearer {auth}"' if auth else "",
            "path": path,
        }
    )
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


def consent(engine, uscc: str, bank: str) -> None:
    """The enterprise's pre-credit authorization of the benchmark bank, from yesterday for 30 days."""
    from scoring.store import Purpose, grant_consent

    today = dt.date.today()
    grant_consent(
        engine,
        uscc=uscc,
        bank_id=bank,
        purpose=Purpose.PRE_CREDIT,
        granted_on=today - dt.timedelta(days=1),
        expires_on=today + dt.timedelta(days=30),
        evidence="benchmark",
        created_by="benchmark",
    )


def _start(command: list[str], *, env: dict[str, str], log: Path) -> subprocess.Popen:
    """A server in its own process group (so that _stop ends its workers too), its output to ``log``."""
    return subprocess.Popen(command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def over_http(
    home: Path, *, seconds: int, connections: int, light: int, workers: int, enterprises: int, seed: int
) -> dict:
    """wrk against our server (explained pre-credit decisions) and against `mlflow models serve`."""
    import duckdb
    import mlflow

    from scoring.registry.versions import configure, resolve_alias
    from scoring.store import Role, create_key, engine_for

    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: `make system-deps` installs it (Debian package wrk)")
    settings = _settings(home)
    engine = engine_for(settings.decision_url)
    secret, _ = create_key(engine, role=Role.BANK, bank_id=BANK, label="benchmark", rate_per_minute=10**9)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        frame = con.execute(
            "SELECT * FROM feature_snapshots WHERE as_of = (SELECT max(as_of) FROM feature_snapshots) "
            "ORDER BY hash(uscc || ?) LIMIT ?",
            [str(seed), enterprises],
        ).df()
    for uscc in frame["uscc"]:
        consent(engine, uscc, BANK)
    engine.dispose()
    logs = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    results: dict = {
        "workers": workers,
        "connections": connections,
        "light_connections": light,
        "seconds": seconds,
        "enterprises": enterprises,
    }

    # ours
    port = _free_port()
    log = logs / "scoring.log"
    proc = _start(
        [str(Path(sys.executable).parent / "scoring"), "serve", "--port", str(port), "--workers", str(workers)],
        env=_env(home),
        log=log,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(f"{base}/readyz", 180, proc, log)
        bodies = [json.dumps({"uscc": u}) for u in frame["uscc"]]
        probe = httpx.post(
            f"{base}/v1/pre-credit",
            content=bodies[0],
            headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
        )
        assert probe.status_code == 200, probe.text
        _wrk(base, "/v1/pre-credit", bodies, auth=secret, seconds=5, connections=connections)  # warm-up
        results["ours"] = _wrk(base, "/v1/pre-credit", bodies, auth=secret, seconds=seconds, connections=connections)
        # the latency of one decision when requests do not queue behind each other
        results["ours_light"] = _wrk(base, "/v1/pre-credit", bodies, auth=secret, seconds=20, connections=light)
    finally:
        _stop(proc)

    # mlflow models serve, the same champion evaluation model
    configure(settings)
    version = resolve_alias(settings.model_name, settings.model_alias)
    uri = f"models:/{settings.model_name}/{version}"
    info = mlflow.models.get_model_info(uri)
    columns = [str(c.name) for c in info.signature.inputs.inputs] if info.signature else None
    from scoring.registry.versions import load_version

    scorer = load_version(settings.model_name, version).scorer
    columns = columns or list(scorer.config.features)
    mlflow_bodies = []
    for row in frame.to_dict(orient="records"):
        x = scorer.vector(row)[0]
        data = [None if np.isnan(v) else float(v) for v in x]
        mlflow_bodies.append(json.dumps({"dataframe_split": {"columns": columns, "data": [data]}}))
    port = _free_port()
    log = logs / "mlflow.log"
    proc = _start(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "models",
            "serve",
            "-m",
            uri,
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        # it runs `uvicorn` from PATH: the one of this environment
        env={
            **_env(home),
            "MLFLOW_TRACKING_URI": settings.tracking_uri,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        },
        log=log,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(f"{base}/ping", 180, proc, log)
        probe = httpx.post(
            f"{base}/invocations", content=mlflow_bodies[0], headers={"Content-Type": "application/json"}
        )
        assert probe.status_code == 200, probe.text
        _wrk(base, "/invocations", mlflow_bodies, auth=None, seconds=5, connections=connections)
        results["mlflow"] = _wrk(
            base, "/invocations", mlflow_bodies, auth=None, seconds=seconds, connections=connections
        )
        results["mlflow_model"] = uri
    finally:
        _stop(proc)
    results["ratio"] = results["ours"]["per_s"] / results["mlflow"]["per_s"]
    return results


def report(inproc: dict, http: dict, command: str) -> str:
    d, a = inproc["decision"], inproc["with_audit"]
    o, m, lt = http["ours"], http["mlflow"], http["ours_light"]
    return f"""## Serving: explained decisions in process and over HTTP

Command (on the demo home, 20,000 enterprises, built by `scoring demo --no-serve`):

    {command}

In process, {inproc["decisions"]:,} pre-credit decisions, each with TreeSHAP of the three models, the limit
policy, reasons in Chinese and the records stored with it (`pre_credit_result`, `evaluation_record`,
`pre_credit_record`, as the endpoint calls them):

| | p50 | p90 | p99 | mean | target |
|---|---:|---:|---:|---:|---|
| decision with full SHAP and reasons | {d["p50_ms"]:.2f} ms | {d["p90_ms"]:.2f} ms | {d["p99_ms"]:.2f} ms | {d["mean_ms"]:.2f} ms | p50 ≤ 3 ms, p99 ≤ 10 ms |
| the same plus its audit append (SQLite, hash chain) | {a["p50_ms"]:.2f} ms | {a["p90_ms"]:.2f} ms | {a["p99_ms"]:.2f} ms | {a["mean_ms"]:.2f} ms | |

The p50 of the decision in rounds of 1,000 ranged from {inproc["round_p50_ms"][0]:.2f} to {inproc["round_p50_ms"][1]:.2f} ms in this run.

Over HTTP, wrk with 2 threads and {http["connections"]} connections for {http["seconds"]} s after a 5 s warm-up, both
servers with {http["workers"]} worker processes on this 2-core machine (wrk runs on the same cores):

| server | requests | per second | p50 | p90 | p99 | max | errors |
|---|---:|---:|---:|---:|---:|---:|---:|
| ours: `POST /v1/pre-credit` (consent, 3 models with SHAP, policy, reasons, audit row) | {o["requests"]:,} | {o["per_s"]:.0f} | {o["p50_ms"]:.1f} ms | {o["p90_ms"]:.1f} ms | {o["p99_ms"]:.1f} ms | {o["max_ms"]:.0f} ms | {o["errors"]} |
| `mlflow models serve` of {http["mlflow_model"]}: one-row `/invocations` (prediction only) | {m["requests"]:,} | {m["per_s"]:.0f} | {m["p50_ms"]:.1f} ms | {m["p90_ms"]:.1f} ms | {m["p99_ms"]:.1f} ms | {m["max_ms"]:.0f} ms | {m["errors"]} |
| ours again, {http["light_connections"]} connections for 20 s (no queueing) | {lt["requests"]:,} | {lt["per_s"]:.0f} | {lt["p50_ms"]:.1f} ms | {lt["p90_ms"]:.1f} ms | {lt["p99_ms"]:.1f} ms | {lt["max_ms"]:.0f} ms | {lt["errors"]} |

Throughput ratio ours / MLflow: **{http["ratio"]:.2f}** (targets: ≥ 500 decisions/s, p99 ≤ 100 ms, zero errors).
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="a demo home: warehouse, MLflow store, champions")
    parser.add_argument("--decisions", type=int, default=5000)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--light-connections", type=int, default=4, help="a second, light load on our server")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--enterprises", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--write", action="store_true", help="write the section of docs/benchmarks.md")
    args = parser.parse_args()
    home = args.home.resolve()
    inproc = in_process(home, args.decisions, args.seed)
    print(json.dumps(inproc, indent=1))
    if args.skip_http:
        return
    http = over_http(
        home,
        seconds=args.seconds,
        connections=args.connections,
        light=args.light_connections,
        workers=args.workers,
        enterprises=args.enterprises,
        seed=args.seed,
    )
    print(json.dumps(http, indent=1))
    command = f".venv/bin/python benchmarks/serve.py --home {args.home} --write"
    text = report(inproc, http, command)
    print(text)
    if args.write:
        write_section("## Serving: explained decisions in process and over HTTP", text)


if __name__ == "__main__":
    main()
