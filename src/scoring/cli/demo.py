"""`scoring demo`: a synthetic county end to end, from generation to a served decision."""

from __future__ import annotations

import datetime as dt
import json
import shlex
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from scoring.cli.data import DEMO_ENTERPRISES, DEMO_MONTHS, DEMO_SEED
from scoring.cli.output import console, fail, generate_with_progress, print_amount, print_gate, print_training
from scoring.settings import Settings

if TYPE_CHECKING:
    from scoring.features.catalog import Catalog

commands = typer.Typer()


@commands.command()
def demo(
    enterprises: Annotated[int, typer.Option(min=100, help="size of the synthetic county")] = DEMO_ENTERPRISES,
    months: Annotated[int, typer.Option(min=13, help="months of records")] = DEMO_MONTHS,
    seed: Annotated[int, typer.Option(help="random seed")] = DEMO_SEED,
    serve_api: Annotated[bool, typer.Option("--serve/--no-serve", help="start the API at the end")] = True,
) -> None:
    """Everything end to end: generate a county, ingest, build features, train, register, serve."""
    from dataclasses import asdict

    from scoring import __version__
    from scoring.data.generate import GeneratorConfig
    from scoring.data.ingest import WarehouseFormatError, connect, extract_date_of, ingest_directory
    from scoring.features.build import store_snapshot
    from scoring.features.catalog import load_catalog

    settings = Settings()
    started = time.perf_counter()
    cfg = GeneratorConfig(enterprises=enterprises, months=months, seed=seed)
    manifest_file = settings.raw_path / "manifest.json"
    manifest = json.loads(manifest_file.read_text()) if manifest_file.exists() else {}
    if manifest.get("generator") == asdict(cfg) and manifest.get("version") == __version__:
        console.print(f"[1/6] synthetic county already in {settings.raw_path} (seed {seed})")
    else:
        for stale in settings.raw_path.glob("*.parquet"):  # the demo's own folder: drop tables of older versions
            stale.unlink()
        generate_with_progress(cfg, settings.raw_path)
        console.print(f"[1/6] generated {enterprises:,} enterprises x {months} months into {settings.raw_path}")
    with console.status("[2/6] ingesting"):
        try:
            results = ingest_directory(settings.raw_path, settings.warehouse_path)
        except WarehouseFormatError:
            # the demo warehouse holds only generated data: rebuild it in the current format
            settings.warehouse_path.unlink()
            results = ingest_directory(settings.raw_path, settings.warehouse_path)
    console.print(
        f"[2/6] ingested {sum(r.rows_read for r in results):,} rows: {sum(r.inserted for r in results):,} new, "
        f"{sum(r.replaced for r in results):,} replaced, {sum(r.unchanged for r in results):,} unchanged, "
        f"{sum(r.quarantined for r in results):,} quarantined with reasons"
    )
    catalog = load_catalog(settings.catalog_path)
    with (
        connect(settings.warehouse_path, memory_limit=settings.duckdb_memory_limit) as con,
        console.status("[3/6] building features"),
    ):
        as_of = extract_date_of(con)
        n = store_snapshot(con, catalog, as_of=as_of)
    console.print(f"[3/6] built {len(catalog.features)} features for {n:,} enterprises as of {as_of}")
    _train(settings)
    _grade(settings, catalog, as_of)
    key = _keys(settings)
    console.print(f"demo ready in {time.perf_counter() - started:.0f}s")
    if serve_api:
        _serve_and_show(settings, key)


def _grade(settings: Settings, catalog: Catalog, as_of: dt.date) -> None:
    """Every enterprise graded by the champions (`scoring score`): the supervision population, and the
    models' numbers that served decisions then take instead of computing them (serve/precomputed.py)."""
    from scoring.batch.run import champions, score_on_duckdb
    from scoring.batch.stored import build_versions, is_current
    from scoring.data.ingest import connect

    models = champions(settings)
    with connect(settings.warehouse_path, read_only=True) as con:
        if is_current(con, as_of, build_versions(models)):
            console.print(f"[5/6] every enterprise as of {as_of} was graded by these champions already: kept")
            return
    with console.status("[5/6] grading every enterprise with the champions"):
        scored = score_on_duckdb(settings, catalog, as_of=as_of, out=settings.path(Path("var")))
    console.print(f"[5/6] graded {scored.rows:,} enterprises as of {as_of} with every SHAP value")


def _train(settings: Settings) -> None:
    """Train every model unless its champion was trained on this very data; a new version goes through the gate."""
    from scoring.registry.versions import configure
    from scoring.training.precredit import lineage_now, train_pre_credit
    from scoring.training.promote import promote as run_promote
    from scoring.training.train import current_lineage, train_evaluation

    client = configure(settings)

    def current(name: str, fingerprint: str) -> str | None:
        """The champion's version when it was trained on this very data, catalog and spec."""
        try:
            version = client.get_model_version_by_alias(name, settings.model_alias)
        except Exception:  # no champion yet
            return None
        return str(version.version) if version.tags.get("lineage_fingerprint") == fingerprint else None

    def settle(name: str, alias: str) -> None:
        if alias == settings.challenger_alias:  # a champion exists: the new version goes through the gate
            gate, moved = run_promote(settings, name)
            print_gate(gate, moved)

    kept = current(settings.model_name, current_lineage(settings)["fingerprint"])
    if kept:
        console.print(f"[4/6] champion {settings.model_name} v{kept} was trained on this very data: kept")
    else:
        with console.status("[4/6] training the credit evaluation") as status:
            result = train_evaluation(settings, progress=lambda m: status.update(f"[4/6] {m}"))
        print_training(result)
        settle(result.model_name, result.alias)
    fingerprint = lineage_now(settings)["fingerprint"]
    if current("pre_credit_default", fingerprint) and current("pre_credit_amount", fingerprint):
        console.print("[4/6] pre-credit champions were trained on this very data: kept")
        return
    with console.status("[4/6] training the pre-credit models") as status:
        pre = train_pre_credit(settings, progress=lambda m: status.update(f"[4/6] {m}"))
    print_training(pre.default)
    print_amount(pre.amount)
    for r in (pre.default, pre.amount):
        settle(r.model_name, r.alias)


def _keys(settings: Settings) -> str:
    """The demo analyst's key (for the curl), and a regulator's for the console; each kept while it is live."""
    from scoring.store import Role, authenticate, create_key, engine_for

    engine = engine_for(settings.decision_url)
    found = []
    for path, role, label in (
        (settings.demo_key_path, Role.ANALYST, "demo analyst"),
        (settings.path(settings.var_dir) / "demo_regulator_key", Role.REGULATOR, "演示监管人员"),
    ):
        if path.exists() and authenticate(engine, path.read_text().strip()):
            found.append(path.read_text().strip())
            continue
        secret, _ = create_key(engine, role=role, label=label)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secret)
        path.chmod(0o600)
        found.append(secret)
    return found[0]


def _example_uscc(settings: Settings) -> str:
    """A real enterprise with something to explain: the first with two penalties this year and tax records."""
    import duckdb

    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        row = con.execute(
            "SELECT uscc FROM feature_snapshots WHERE as_of = (SELECT max(as_of) FROM feature_snapshots) "
            "AND penalty_count_12m >= 2 AND tax_months_filed_12m >= 6 ORDER BY uscc LIMIT 1"
        ).fetchone()
        if row is None:
            row = con.execute("SELECT uscc FROM feature_snapshots ORDER BY uscc LIMIT 1").fetchone()
    finally:
        con.close()
    assert row is not None
    return str(row[0])


def _serve_and_show(settings: Settings, key: str) -> None:
    """Serve the API and, once it is ready, show one decision and the curl that asks for it."""
    import socket

    import httpx
    import uvicorn

    from scoring.serve.app import create_app

    with socket.socket() as probe:
        if probe.connect_ex((settings.host, settings.port)) == 0:
            raise fail(f"port {settings.port} on {settings.host} is in use: stop that server or set SCORING_PORT")
    uscc = _example_uscc(settings)
    base = f"http://{settings.host}:{settings.port}"
    body = json.dumps({"uscc": uscc})
    curl = (
        f"curl -s -X POST {base}/v1/evaluations -H {shlex.quote('Authorization: Bearer ' + key)} "
        f"-H 'Content-Type: application/json' -d {shlex.quote(body)}"
    )

    def show() -> None:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        answer = httpx.post(
            f"{base}/v1/evaluations", json={"uscc": uscc}, headers={"Authorization": f"Bearer {key}"}, timeout=10
        )
        console.print(f"[6/6] served: POST /v1/evaluations -> {answer.status_code}")
        console.print_json(answer.text)
        console.print("\nTry it yourself (the API docs are at " + base + "/docs):\n")
        console.print(curl, soft_wrap=True, highlight=False)
        console.print(
            f"\nThe regulator console: {base}/console (sign in with the key in "
            f"{settings.path(settings.var_dir) / 'demo_regulator_key'})"
        )
        console.print("\nPress Ctrl+C to stop the server.")

    threading.Thread(target=show, daemon=True).start()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host=settings.host, port=settings.port, log_level="warning")
    )
    server.run()
