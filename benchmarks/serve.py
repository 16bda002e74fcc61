"""Serving benchmark: explained pre-credit decisions in process, then the real server over HTTP.

1. In process: the decision functions every endpoint calls (TreeSHAP of all three models, the
   policy, reasons in Chinese and the stored records), per decision, on enterprises of the demo
   county: alone, alone plus its audit append, and decided 32 at a time as the server's decider
   does under load (``decide_pre_credit``).
2. Over HTTP, ``--runs`` times: ``scoring serve --workers 2`` (uvicorn) under wrk, 64 connections,
   each request a ``POST /v1/pre-credit`` of a bank for one of 2,000 enterprises that authorized it
   (consent checked, audit row committed before the answer); then 4 connections (the latency
   without queueing) and 512 (overload: refused at once or answered). The same 64-connection load on
   a PostgreSQL decision store (a real server of the OS packages, fsync on). Side by side in the same
   run: ``mlflow models serve`` and MLServer's LightGBM runtime serving the same champion evaluation
   model (``serve_peers.py``), a one-row prediction per request (no SHAP, no policy, no audit).

Our servers decide on a SQLite store of the benchmark's own, new for each invocation (its runs share it).
Per run, read off our servers: the requests each worker answered (its /metrics), the CPU of the
server's processes per request, and the peak memory under overload. Run it on the demo home
(``scoring demo --no-serve``; ``make serving-env`` for MLServer):

    .venv/bin/python benchmarks/serve.py --home . --write
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from common import write_section  # noqa: E402
from load import (  # noqa: E402
    PeakMemory,
    between,
    cpu_seconds,
    drained,
    free_port,
    per_worker,
    start,
    stop,
    wait_ready,
    wrk,
)
from serve_peers import mlflow_serve, mlserver  # noqa: E402

BANK = "BENCH_BANK"


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
    """Per-decision milliseconds of the decision alone, with its audit append, and decided 32 at a time."""
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
    together_stored = _together(state, usccs, size=32) if state.precomputed is not None else None
    state.precomputed = None  # now every model output computed, as for a champion not graded yet
    together = _together(state, usccs, size=32)
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
        "together_ms": together,
        "together_stored_ms": together_stored,
        "round_p50_ms": [min(rounds), max(rounds)],
    }


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


def _together(state, usccs: list[str], *, size: int) -> float:
    """Milliseconds per decision of requests decided ``size`` at a time, as the server's decider does
    under load (one consent query, one TreeSHAP pass per model, the answers built), without the commit."""
    from scoring.serve.flow import PreCreditAsk, decide_pre_credit
    from scoring.store import Role, create_key

    _, key = create_key(state.engine, role=Role.BANK, bank_id=BANK + "_TOGETHER")
    for uscc in sorted(set(usccs)):
        consent(state.engine, uscc, BANK + "_TOGETHER")
    asks = [PreCreditAsk(key=key, uscc=u) for u in usccs]
    decide_pre_credit(state, asks[:size])  # warm-up
    started = time.perf_counter()
    for i in range(0, len(asks), size):
        decide_pre_credit(state, asks[i : i + size])
    return (time.perf_counter() - started) * 1000 / len(asks)


def prepare(home: Path, store_url: str | None, *, enterprises: int, seed: int) -> tuple[str, list[str]]:
    """(a bank key's secret, the request bodies): the benchmark bank authorized by ``enterprises`` of the
    snapshot, in the decision store at ``store_url`` (the home's own when None)."""
    import duckdb

    from scoring.store import Role, create_key, engine_for

    settings = _settings(home)
    engine = engine_for(store_url or settings.decision_url)
    secret, _ = create_key(engine, role=Role.BANK, bank_id=BANK, label="benchmark", rate_per_minute=10**9)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        usccs = [
            r[0]
            for r in con.execute(
                "SELECT uscc FROM feature_snapshots WHERE as_of = (SELECT max(as_of) FROM feature_snapshots) "
                "ORDER BY hash(uscc || ?) LIMIT ?",
                [str(seed), enterprises],
            ).fetchall()
        ]
    for uscc in usccs:
        consent(engine, uscc, BANK)
    engine.dispose()
    return secret, [json.dumps({"uscc": u}) for u in usccs]


def ours(
    home: Path,
    store_url: str | None,
    *,
    seconds: int,
    connections: int,
    light: int,
    overload: int,
    workers: int,
    enterprises: int,
    seed: int,
    env: dict[str, str] | None = None,
) -> dict:
    """wrk against our server: ``connections`` (with the requests per worker and the CPU per request),
    then ``light`` and ``overload`` connections (each skipped when 0)."""
    secret, bodies = prepare(home, store_url, enterprises=enterprises, seed=seed)
    env = _env(home) | ({"SCORING_DECISION_DB_URL": store_url} if store_url else {}) | (env or {})
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="bench-serve-")) / "scoring.log"
    command = [str(Path(sys.executable).parent / "scoring"), "serve", "--port", str(port), "--workers", str(workers)]
    proc = start(command, env=env, log=log)
    route, out = "/v1/pre-credit", {}
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(f"{base}/readyz", 180, proc, log)
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        probe = httpx.post(f"{base}{route}", content=bodies[0], headers=headers)
        assert probe.status_code == 200, probe.text
        out["stored_outputs"] = httpx.get(f"{base}/readyz").json()["stored_outputs"] > 0
        # warm-up; then the light load first, so that it does not run while the store still copies the
        # log of a heavy one into its file (the checkpoints after 30 s at 64 connections)
        wrk(base, route, bodies, auth=secret, seconds=5, connections=light or connections)
        if light:  # the latency of one decision when requests do not queue behind each other
            drained(base)
            before = per_worker(base, route)
            out["light"] = wrk(base, route, bodies, auth=secret, seconds=20, connections=light)
            out["light_per_worker"] = between(before, per_worker(base, route))
        drained(base)
        before, cpu = per_worker(base, route), cpu_seconds(proc.pid)
        out["load"] = wrk(base, route, bodies, auth=secret, seconds=seconds, connections=connections)
        out["load"]["cpu_ms"] = (cpu_seconds(proc.pid) - cpu) * 1000 / max(out["load"]["requests"], 1)
        out["per_worker"] = between(before, per_worker(base, route))
        if overload:  # far beyond capacity: admitted requests answered in time, the rest refused at once
            from scoring.serve.middleware import RETRY_AFTER_SECONDS

            # clients that come back after Retry-After, as a bank's should; then clients that send again at once
            for name, wait in (("overload_retry", RETRY_AFTER_SECONDS * 1000), ("overload", None)):
                out[name] = _overload(base, route, bodies, secret, proc, connections=overload, retry_after_ms=wait)
    finally:
        stop(proc)
    return out


def _overload(
    base: str, route: str, bodies: list[str], secret: str, proc, *, connections: int, retry_after_ms: int | None
) -> dict:
    """wrk's figures under ``connections`` for 20 s, with the admitted requests and those answered within
    100 ms (the servers' latency histograms) and the peak memory of the server's processes."""
    drained(base)
    before = per_worker(base, route)
    with PeakMemory(proc.pid) as memory:
        out = wrk(base, route, bodies, auth=secret, seconds=20, connections=connections, retry_after_ms=retry_after_ms)
    admitted = between(before, per_worker(base, route))
    out["admitted"] = sum(w["all"] for w in admitted.values())
    out["admitted_within_100ms"] = sum(w["fast"] for w in admitted.values())
    out["peak_rss_gib"] = memory.peak / 2**30
    return out


def one_run(home: Path, args: argparse.Namespace) -> dict:
    """Ours on SQLite (64, 4 and 512 connections), on PostgreSQL (64) and the two peers, one after another."""
    load = {"seconds": args.seconds, "connections": args.connections, "workers": args.workers}
    same = {**load, "enterprises": args.enterprises, "seed": args.seed}
    url = args.store_url
    run = {"sqlite": ours(home, url, light=args.light_connections, overload=args.overload_connections, **same)}
    if args.ours_only:
        return run
    # the same load with every model output computed per request: a champion `scoring score` has not graded yet
    run["computed"] = ours(home, url, light=0, overload=0, env={"SCORING_STORED_OUTPUTS": "false"}, **same)
    from scoring.store.local_postgres import local_postgres

    with local_postgres(durable=True) as url:
        run["postgres"] = ours(home, url, light=0, overload=0, **same)
    import duckdb

    settings = _settings(home)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        frame = con.execute(
            "SELECT * FROM feature_snapshots WHERE as_of = (SELECT max(as_of) FROM feature_snapshots) "
            "ORDER BY hash(uscc || ?) LIMIT ?",
            [str(args.seed), args.enterprises],
        ).df()
    run["mlflow"], run["mlflow_model"] = mlflow_serve(settings, _env(home), frame, **load)
    run["mlserver"] = mlserver(settings, frame, **load)
    return run


def _spread(values: list[float], fmt: str) -> str:
    """The median, and the range when there are several runs."""
    median = statistics.median(values)
    if len(values) == 1:
        return format(median, fmt)
    return f"{format(median, fmt)} ({format(min(values), fmt)}–{format(max(values), fmt)})"


def _row(label: str, results: list[dict], cpu: bool) -> str:
    per_s = _spread([r["per_s"] for r in results], ",.0f")
    p50 = _spread([r["p50_ms"] for r in results], ".1f")
    p99 = _spread([r["p99_ms"] for r in results], ".1f")
    worst = max(r["max_ms"] for r in results)
    errors = sum(r["errors"] for r in results)
    used = _spread([r["cpu_ms"] for r in results], ".2f") if cpu else ""
    return f"| {label} | {per_s} | {p50} ms | {p99} ms | {worst:,.0f} ms | {errors} | {used} |"


def report(inproc: dict, runs: list[dict], args: argparse.Namespace, command: str) -> str:
    d, a = inproc["decision"], inproc["with_audit"]
    sqlite = [r["sqlite"] for r in runs]
    lines = [
        "## Serving: explained decisions in process and over HTTP",
        "",
        "Command (on the demo home, 20,000 enterprises, built by `scoring demo --no-serve`):",
        "",
        f"    {command}",
        "",
        f"In process, {inproc['decisions']:,} pre-credit decisions, each with TreeSHAP of the three models, the "
        "limit policy, reasons in Chinese and the records stored with it:",
        "",
        "| | p50 | p90 | p99 | mean |",
        "|---|---:|---:|---:|---:|",
        f"| one decision alone | {d['p50_ms']:.2f} ms | {d['p90_ms']:.2f} ms | {d['p99_ms']:.2f} ms | "
        f"{d['mean_ms']:.2f} ms |",
        f"| the same plus its audit append (SQLite, hash chain, synchronous=FULL) | {a['p50_ms']:.2f} ms | "
        f"{a['p90_ms']:.2f} ms | {a['p99_ms']:.2f} ms | {a['mean_ms']:.2f} ms |",
        f"| decided 32 at a time (`decide_pre_credit`, as the server's decider under load), per decision | | | | "
        f"{inproc['together_ms']:.2f} ms |",
        *(
            [
                "| the same, the three models' outputs taken from the rows `scoring score` stored (serve/precomputed.py) "
                f"| | | | {inproc['together_stored_ms']:.2f} ms |"
            ]
            if inproc.get("together_stored_ms")
            else []
        ),
        "",
        f"The p50 of the decision alone in rounds of 1,000 ranged from {inproc['round_p50_ms'][0]:.2f} to "
        f"{inproc['round_p50_ms'][1]:.2f} ms.",
        "",
        f"Over HTTP, {len(runs)} runs one after another; in each, wrk with 2 threads for {args.seconds} s after a "
        f"5 s warm-up, every server with {args.workers} worker processes on this 2-core machine (wrk on the same "
        "cores). Each figure is the median of the runs, the range in brackets; errors are summed over the runs "
        "(wrk counts any answer but 2xx and 3xx as one); CPU is that of the server's processes per request.",
        "",
        "| server | per second | p50 | p99 | max | errors | CPU per request |",
        "|---|---:|---:|---:|---:|---:|---:|",
        _row(
            f"ours, SQLite store: `POST /v1/pre-credit` (consent, 3 models with SHAP, policy, reasons, audit row), "
            f"the models' outputs {'as `scoring score` stored them' if sqlite[0].get('stored_outputs') else 'computed'}, "
            f"{args.connections} connections",
            [r["load"] for r in sqlite],
            cpu=True,
        ),
    ]
    if "light" in sqlite[0]:
        lines.append(
            _row(
                f"ours, SQLite, {args.light_connections} connections for 20 s", [r["light"] for r in sqlite], cpu=False
            )
        )
    if "computed" in runs[0]:
        lines.append(
            _row(
                f"ours, SQLite, the three models' outputs computed per request (`SCORING_STORED_OUTPUTS=false`), "
                f"{args.connections} connections",
                [r["computed"]["load"] for r in runs],
                cpu=True,
            )
        )
    if "postgres" in runs[0]:
        lines += [
            _row(
                f"ours, PostgreSQL store (a real server, fsync on), {args.connections} connections",
                [r["postgres"]["load"] for r in runs],
                cpu=True,
            ),
            _row(
                f"`mlflow models serve` of {runs[0]['mlflow_model']}: one-row `/invocations` (prediction only)",
                [r["mlflow"] for r in runs],
                cpu=False,
            ),
            _row(
                "MLServer 1.7.1, LightGBM runtime, the same booster: one-row V2 `infer`",
                [r["mlserver"] for r in runs],
                cpu=False,
            ),
            "",
            "Throughput ratio, ours (SQLite) to each, the median of the runs' ratios: "
            f"**{statistics.median(r['sqlite']['load']['per_s'] / r['mlflow']['per_s'] for r in runs):.2f}** to "
            f"`mlflow models serve`, **{statistics.median(r['sqlite']['load']['per_s'] / r['mlserver']['per_s'] for r in runs):.2f}** "
            "to MLServer.",
        ]

    def shares(key: str) -> str:
        out = []
        for r in sqlite:
            served = sum(w["ok"] for w in r[key].values()) or 1
            out.append(" / ".join(f"{w['ok'] / served:.0%}" for w in r[key].values()))
        return "; ".join(out)

    lines += [
        "",
        f"Decisions per worker process (each worker's /metrics) in the {args.connections}-connection runs: "
        f"{shares('per_worker')}"
        + (
            f"; in the {args.light_connections}-connection runs: {shares('light_per_worker')}"
            if "light" in sqlite[0]
            else ""
        )
        + ". The light load runs first on each server, after a 5 s warm-up, then the 64 connections, then the "
        "overloads.",
    ]
    for name, how in (
        ("overload_retry", "clients that wait the `Retry-After` after a 503, as a bank's should"),
        ("overload", "clients that send again at once after a 503 (wrk's own way)"),
    ):
        if name not in sqlite[0]:
            continue
        lines += ["", f"Overload, {args.overload_connections} connections for 20 s, {how}, per run:", ""]
        for r in sqlite:
            ov = r[name]
            within = ov["admitted_within_100ms"] / (ov["admitted"] or 1)
            lines.append(
                f"- {ov['requests']:,} answers: {ov['status']:,} refused at once with 503 (`overloaded`, `Retry-After`), "
                f"{ov['admitted']:,.0f} admitted and {within:.1%} of those answered within 100 ms (the servers' "
                f"latency histograms); {ov['errors'] - ov['status']} connection errors or timeouts; p50 and p99 of all "
                f"answers {ov['p50_ms']:.1f} and {ov['p99_ms']:.0f} ms; peak memory of the server's processes "
                f"{ov['peak_rss_gib']:.2f} GiB."
            )
    lines += [
        "",
        f"Targets (issue 17): ≥ 800 decisions/s at {args.connections} connections with p99 ≤ 100 ms and zero "
        f"errors; p50 ≤ 5 ms at {args.light_connections} connections; neither worker above 60 % of the requests.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="a demo home: warehouse, MLflow store, champions")
    parser.add_argument("--decisions", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--light-connections", type=int, default=4, help="a second, light load on our server")
    parser.add_argument("--overload-connections", type=int, default=512, help="a third load, far beyond capacity")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--enterprises", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--ours-only", action="store_true", help="no PostgreSQL and no peers (code before and after)")
    parser.add_argument("--http-only", action="store_true", help="no in-process part (code before it existed)")
    parser.add_argument("--write", action="store_true", help="write the section of docs/benchmarks.md")
    args = parser.parse_args()
    home = args.home.resolve()
    # a decision store of the benchmark's own, new for every invocation (its runs share it): the demo's
    # would grow by a few GB a run, and how fast a store is depends on how large it has grown
    store = Path(tempfile.mkdtemp(prefix="bench-store-"))
    args.store_url = f"sqlite:///{store / 'decisions.db'}"
    try:
        _measure(home, args)
    finally:
        shutil.rmtree(store, ignore_errors=True)


def _measure(home: Path, args: argparse.Namespace) -> None:
    if args.http_only:
        runs = [one_run(home, args) for _ in range(args.runs)]
        print("HTTP " + json.dumps(runs), flush=True)
        return
    inproc = in_process(home, args.decisions, args.seed)
    print(json.dumps(inproc, indent=1), flush=True)
    runs = []
    for k in range(args.runs):
        runs.append(one_run(home, args))
        print(json.dumps({"run": k + 1, **runs[-1]}, indent=1), flush=True)
    flags = f" --runs {args.runs} --seconds {args.seconds}" + (" --ours-only" if args.ours_only else "")
    text = report(inproc, runs, args, f".venv/bin/python benchmarks/serve.py --home {args.home}{flags} --write")
    print(text)
    if args.write:
        write_section("## Serving: explained decisions in process and over HTTP", text)


if __name__ == "__main__":
    main()
