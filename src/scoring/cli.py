"""The `scoring` command: generate, ingest, features, train, serve, demo, keys."""

from __future__ import annotations

import datetime as dt
import json
import logging
import shlex
import threading
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from scoring.settings import Settings

app = typer.Typer(help="信用评价与信易贷预授信服务: credit evaluation and pre-credit scoring.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
consents_app = typer.Typer(
    help="Enterprises' authorizations of banks (授权): grant, list, revoke.", no_args_is_help=True
)
app.add_typer(consents_app, name="consents")
audit_app = typer.Typer(help="The audit log of decisions, refusals and outcomes.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
outcomes_app = typer.Typer(help="Loan outcomes banks reported through the API.", no_args_is_help=True)
app.add_typer(outcomes_app, name="outcomes")
console = Console()
log = logging.getLogger("scoring")

DEMO_ENTERPRISES = 20_000
DEMO_MONTHS = 48
DEMO_SEED = 7


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log at INFO level")] = False) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=Console(stderr=True), show_path=False)],
    )
    for noisy in ("mlflow", "alembic", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING if verbose else logging.ERROR)


def _day(text: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise _fail(f"{option}: {text!r} is not a date; use YYYY-MM-DD") from exc


def _write_or_check(out: Path, text: str, *, check: bool, command: str) -> None:
    """Write a generated document, or with ``check`` only say whether the file holds that text."""
    if check:
        if not out.exists() or out.read_text(encoding="utf-8") != text:
            raise _fail(f"{out} is stale: run `{command}`")
        console.print(f"{out} is current")
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    console.print(f"wrote {out}")


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=1)


# ---------------------------------------------------------------------------- generate
@app.command()
def generate(
    enterprises: Annotated[int, typer.Option(min=100, help="number of enterprises")] = DEMO_ENTERPRISES,
    months: Annotated[int, typer.Option(min=13, max=120, help="months of records")] = DEMO_MONTHS,
    seed: Annotated[int, typer.Option(help="random seed: same seed, same data")] = DEMO_SEED,
    out: Annotated[Path | None, typer.Option(help="output folder (default: var/raw)")] = None,
    start: Annotated[str, typer.Option(help="first month, YYYY-MM")] = "2022-01",
    error_rate: Annotated[
        float, typer.Option(min=0, max=0.1, help="share of rows corrupted like real exports")
    ] = 0.0002,
) -> None:
    """Generate a synthetic county or city as Parquet files (deterministic per seed)."""
    from scoring.data.generate import GeneratorConfig

    settings = Settings()
    target = out or settings.raw_path
    cfg = GeneratorConfig(enterprises=enterprises, months=months, seed=seed, start=start, error_rate=error_rate)
    manifest = _generate(cfg, target)
    rows = sum(v for k, v in manifest["rows"].items() if k != "synthetic_truth")
    console.print(
        f"generated {enterprises:,} enterprises x {months} months: {rows:,} records, "
        f"{manifest['adverse_events']:,} adverse events, into {target}"
    )


def _generate(cfg: object, target: Path) -> dict:
    from scoring.data.generate import GeneratorConfig, generate

    assert isinstance(cfg, GeneratorConfig)
    with Progress(
        TextColumn("generating"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("enterprises", total=cfg.enterprises)
        return generate(cfg, target, progress=lambda n: bar.advance(task, n))


# ---------------------------------------------------------------------------- ingest
@app.command()
def ingest(
    sources: Annotated[
        list[Path] | None, typer.Argument(help="folders or files of platform data (default: var/raw)")
    ] = None,
    extract_date: Annotated[str | None, typer.Option(help="when the files were exported, YYYY-MM-DD")] = None,
    memory_limit: Annotated[str | None, typer.Option(help="DuckDB memory limit (default: the setting, 6GB)")] = None,
) -> None:
    """Validate platform files (Parquet, or CSV in UTF-8/GBK with English or Chinese headers) and load
    them into the DuckDB warehouse: upsert on the natural key, bad rows quarantined with their reason."""
    from scoring.data.ingest import IngestError
    from scoring.data.ingest import ingest as run_ingest

    settings = Settings()
    paths = sources or [settings.raw_path]
    try:
        with console.status(f"loading {', '.join(map(str, paths))}"):
            report = run_ingest(
                paths,
                settings.warehouse_path,
                memory_limit=memory_limit or settings.duckdb_memory_limit,
                extract_date=_day(extract_date, "--extract-date") if extract_date else None,
            )
    except IngestError as exc:
        raise _fail(str(exc)) from exc
    table = Table(
        "table",
        "read",
        "inserted",
        "replaced",
        "unchanged",
        "dup.",
        "quarantined",
        "reasons / warnings",
        title=f"load {report.load_id}",
    )
    for r in report.tables:
        notes = [f"{k}: {v}" for k, v in {**r.reasons, **r.warnings}.items()]
        table.add_row(
            r.table,
            f"{r.rows_read:,}",
            f"{r.inserted:,}",
            f"{r.replaced:,}",
            f"{r.unchanged:,}",
            f"{r.duplicates_in_file:,}",
            f"{r.quarantined:,}",
            "\n".join(notes),
        )
    console.print(table)
    reports = settings.path(settings.var_dir) / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    (reports / f"load-{report.load_id}.md").write_text(report.to_markdown(), encoding="utf-8")
    for path, why in report.failures.items():
        console.print(f"[red]unreadable:[/red] {path}: {why}")
    console.print(
        f"loaded {sum(r.loaded for r in report.tables):,} rows into {settings.warehouse_path}, "
        f"{sum(r.unchanged for r in report.tables):,} unchanged, {sum(r.quarantined for r in report.tables):,} "
        f"quarantined; USCC error rate {report.uscc_error_rate:.4%}, duplicate rate {report.duplicate_rate:.4%} "
        f"(target ≤ 0.01%); report in {reports / f'load-{report.load_id}.md'}"
    )
    if report.failures:
        raise typer.Exit(code=1)


@app.command()
def contract(
    out: Annotated[Path, typer.Option(help="where to write it")] = Path("docs/data-contract.md"),
    check: Annotated[bool, typer.Option("--check", help="only say whether the file is current")] = False,
) -> None:
    """Render the data contract (every table, column, type, label, key) to Markdown."""
    from scoring.data.contract import render_contract

    _write_or_check(out, render_contract(), check=check, command="scoring contract")


@app.command()
def dictionary(
    out: Annotated[Path, typer.Option(help="where to write it")] = Path("docs/feature-dictionary.md"),
    check: Annotated[bool, typer.Option("--check", help="only say whether the file is current")] = False,
) -> None:
    """Render the feature catalog (every feature, its definition, direction and reason text) to Markdown."""
    from scoring.features.catalog import CatalogError, load_catalog
    from scoring.features.dictionary import render_dictionary

    try:
        text = render_dictionary(load_catalog(Settings().catalog_path))
    except CatalogError as exc:
        raise _fail(str(exc)) from exc
    _write_or_check(out, text, check=check, command="scoring dictionary")


@app.command()
def records(
    uscc: Annotated[str, typer.Argument(help="统一社会信用代码")],
    as_of: Annotated[str | None, typer.Option(help="as-of date YYYY-MM-DD (default: the extraction date)")] = None,
) -> None:
    """Which records count for an enterprise as of a date, which do not (repaired, deleted, disputed), and why."""
    from scoring.data.ingest import connect, extract_date_of
    from scoring.features.catalog import load_catalog
    from scoring.features.records import record_status

    settings = Settings()
    catalog = load_catalog(settings.catalog_path)
    with connect(settings.warehouse_path, read_only=True) as con:
        day = _day(as_of, "--as-of") if as_of else extract_date_of(con)
        frame = record_status(con, catalog, uscc=uscc.strip().upper(), as_of=day)
    if frame.empty:
        raise _fail(f"no records of {uscc} before {day}")
    table = Table("table", "record", "date", "description", "counts", "why", title=f"{uscc} as of {day}")
    for row in frame.itertuples(index=False):
        table.add_row(
            row.table,
            str(row.record_id),
            str(row.date)[:10],
            str(row.description),
            "yes" if row.counts else "[red]no[/red]",
            row.reason_zh,
        )
    console.print(table)
    excluded = int((~frame["counts"]).sum())
    console.print(f"{len(frame)} records, {excluded} not counted as of {day}")


# ---------------------------------------------------------------------------- features
@app.command()
def features(
    as_of: Annotated[
        str | None, typer.Option(help="as-of date YYYY-MM-DD (default: the data's extraction date)")
    ] = None,
    months: Annotated[
        int,
        typer.Option(
            min=1, help="also build the snapshots at the N-1 month starts before AS_OF (dates share SQL passes)"
        ),
    ] = 1,
) -> None:
    """Build the point-in-time feature snapshot at AS_OF from the catalog (records dated before it)."""
    import pandas as pd

    from scoring.data.ingest import IngestError, connect, extract_date_of
    from scoring.features.build import store_snapshots
    from scoring.features.catalog import CatalogError, load_catalog

    settings = Settings()
    try:
        catalog = load_catalog(settings.catalog_path)
        with connect(settings.warehouse_path, memory_limit=settings.duckdb_memory_limit) as con:
            day = _day(as_of, "--as-of") if as_of else extract_date_of(con)
            month_start = pd.Timestamp(day).to_period("M").to_timestamp()
            earlier = [(month_start - pd.DateOffset(months=k)).date() for k in range(months)]
            days = sorted({day, *(d for d in earlier if d < day)})[-months:]
            with console.status(f"building {len(catalog.features)} features as of {', '.join(map(str, days))}"):
                started = time.perf_counter()
                rows = store_snapshots(con, catalog, as_of_dates=days)
    except (CatalogError, IngestError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    when = f"as of {day}" if len(days) == 1 else f"at {len(days)} dates from {days[0]} to {days[-1]}"
    console.print(
        f"built {len(catalog.features)} features for {rows:,} enterprise-snapshots {when} "
        f"in {time.perf_counter() - started:.1f}s"
    )


# ---------------------------------------------------------------------------- train
@app.command()
def train(
    model: Annotated[
        str, typer.Option(help="credit_evaluation, pre_credit (the default and amount models) or all")
    ] = "all",
    spec: Annotated[
        Path | None, typer.Option(help="credit evaluation spec (default: models/credit_evaluation.yaml)")
    ] = None,
) -> None:
    """Train out of time, log to MLflow and register: the first version of a model becomes champion,
    later ones challenger (see `scoring promote`)."""
    from scoring.training.precredit import train_pre_credit
    from scoring.training.spec import SpecError
    from scoring.training.train import TrainingError, train_evaluation

    if model not in ("credit_evaluation", "pre_credit", "all"):
        raise _fail(f"--model: {model!r} is not one of credit_evaluation, pre_credit, all")
    settings = Settings()
    try:
        with console.status("training") as status:
            if model in ("credit_evaluation", "all"):
                _print_training(train_evaluation(settings, spec_path=spec, progress=lambda m: status.update(m)))
            if model in ("pre_credit", "all"):
                result = train_pre_credit(settings, progress=lambda m: status.update(m))
                _print_training(result.default)
                _print_amount(result.amount)
    except (TrainingError, SpecError, ValueError) as exc:
        raise _fail(str(exc)) from exc


def _print_training(result: object) -> None:
    from scoring.training.train import TrainResult

    assert isinstance(result, TrainResult)
    m = result.metrics
    table = Table("grade", "share", "bad rate", title=f"{result.model_name}: out-of-time test from {result.test_as_of}")
    for grade, row in result.grades.iterrows():
        table.add_row(str(grade), f"{row['share']:.1%}", f"{row['bad_rate']:.2%}")
    console.print(table)
    oracle = ""
    if "oracle_auc" in m:
        oracle = f", oracle AUC {m['oracle_auc']:.4f}, AUC/oracle {m['auc_over_oracle']:.3f}"
    console.print(
        f"trained {result.model_name} v{result.version}, {result.alias} (run {result.run_id[:8]}): "
        f"test AUC {m['auc']:.4f}, KS {m['ks']:.3f}, Brier {m['brier']:.4f}, "
        f"score PSI train/test {m['score_psi_train_test']:.3f}{oracle}"
    )


def _print_amount(result: object) -> None:
    from scoring.training.train import TrainResult

    assert isinstance(result, TrainResult)
    m = result.metrics
    target = f" (target {m['coverage_target']:.0%})" if "coverage_target" in m else ""
    console.print(
        f"trained {result.model_name} v{result.version}, {result.alias} (run {result.run_id[:8]}): "
        f"{int(m['n'])} performing test loans, RMSE of log amount {m['rmse_log']:.3f}, "
        f"actual ≥ estimate for {m['coverage']:.0%}{target}"
    )


def _print_gate(gate: object, moved: bool | None = None) -> None:
    from scoring.training.promote import GateResult

    assert isinstance(gate, GateResult)
    versus = f"v{gate.challenger} against champion v{gate.champion}" if gate.champion else f"v{gate.challenger}"
    console.print(f"{gate.model} {versus} on {gate.data}:")
    table = Table("figure", "value")
    for k, v in gate.figures.items():
        table.add_row(k, f"{v:.4f}")
    for k, ok in gate.checks.items():
        table.add_row(k, "[green]pass[/green]" if ok else "[red]fail[/red]")
    console.print(table)
    verdict = "passes the gate" if gate.passed else "fails the gate"
    if moved is not None:
        verdict += f": {'now champion' if moved else 'champion unchanged'}"
    console.print(f"{gate.model} v{gate.challenger} {verdict}")


@app.command()
def promote(
    model: Annotated[str, typer.Argument(help="credit_evaluation, pre_credit_default or pre_credit_amount")],
    force: Annotated[bool, typer.Option(help="promote even when the gate fails (asks for a reason)")] = False,
    reason: Annotated[str | None, typer.Option(help="why the gate is overridden (recorded)")] = None,
) -> None:
    """Move the champion alias to the challenger when it passes the gate: AUC not below the champion's
    on the same test data, bad rate rising from A to D, score PSI against the champion below 0.1."""
    from scoring.training.promote import PromotionError
    from scoring.training.promote import promote as run_promote
    from scoring.training.train import TrainingError

    settings = Settings()
    if force and not reason:
        reason = typer.prompt("reason for overriding the gate (recorded with the promotion)")
    try:
        with console.status(f"scoring {model}'s champion and challenger on the same data"):
            gate, moved = run_promote(settings, model, force=force, reason=reason)
    except (PromotionError, TrainingError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    _print_gate(gate, moved)
    if not moved:
        raise typer.Exit(1)


@app.command()
def retrain(
    promote_passing: Annotated[bool, typer.Option("--promote", help="promote the challengers that pass")] = False,
) -> None:
    """Train challengers of every model on the newest data (including the loan outcomes banks reported
    since the last training) and report each against its champion on the same test data."""
    from scoring.training.precredit import train_pre_credit
    from scoring.training.promote import PromotionError, evaluate_gate
    from scoring.training.promote import promote as run_promote
    from scoring.training.spec import SpecError
    from scoring.training.train import TrainingError, train_evaluation

    settings = Settings()
    try:
        with console.status("training challengers") as status:
            evaluation = train_evaluation(settings, progress=lambda m: status.update(m))
            pre_credit = train_pre_credit(settings, progress=lambda m: status.update(m))
        _print_training(evaluation)
        _print_training(pre_credit.default)
        _print_amount(pre_credit.amount)
        for result in (evaluation, pre_credit.default, pre_credit.amount):
            if result.alias != settings.challenger_alias:
                console.print(f"{result.model_name} v{result.version} is the first version: champion")
                continue
            with console.status(f"gate for {result.model_name}"):
                if promote_passing:
                    gate, moved = run_promote(settings, result.model_name)
                    _print_gate(gate, moved)
                else:
                    _print_gate(evaluate_gate(settings, result.model_name))
    except (TrainingError, SpecError, PromotionError, ValueError) as exc:
        raise _fail(str(exc)) from exc


@app.command("train-table")
def train_table(
    table: Annotated[Path, typer.Argument(help="a CSV (UTF-8 or GBK) or Parquet table, one row per case")],
    target: Annotated[str, typer.Option(help="the outcome column")],
    positive: Annotated[str | None, typer.Option(help="the outcome value that counts as bad (else inferred)")] = None,
    id_column: Annotated[str | None, typer.Option("--id", help="an identifier column, not used as a feature")] = None,
    name: Annotated[str | None, typer.Option(help="registered model name (default: table_<file name>)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="end with one JSON line: model_uri and the metrics")] = False,
) -> None:
    """Train the evaluation pipeline on a flat table and register it (MLFLOW_TRACKING_URI is honoured)."""
    from scoring.training.table import TableError
    from scoring.training.table import train_table as run

    settings = Settings()
    try:
        with console.status(f"training on {table}"):
            result = run(settings, table, target=target, positive=positive, id_column=id_column, name=name)
    except (TableError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    m = result.metrics
    console.print(
        f"registered {result.model_uri}: out-of-fold AUC {m['auc']:.4f}, KS {m['ks']:.3f}, Brier {m['brier']:.4f} "
        f"on {int(m['n']):,} rows ({m['bad_rate']:.1%} {target} = {result.positive!r}); "
        f"{len(result.features)} columns used"
    )
    for col, why in result.dropped.items():
        console.print(f"  not used: {col}: {why}")
    if as_json:
        typer.echo(result.as_json())


@app.command("predict-table")
def predict_table(
    table: Annotated[Path, typer.Argument(help="a CSV or Parquet table with the model's columns")],
    model: Annotated[str, typer.Option(help="model URI, e.g. models:/table_loans/1")],
    out: Annotated[Path, typer.Option(help="output .csv or .parquet")],
    id_column: Annotated[str | None, typer.Option("--id", help="identifier column copied to the output")] = None,
) -> None:
    """Score every row: id, probability, score, grade and the top reasons (MLFLOW_TRACKING_URI is honoured)."""
    from scoring.training.table import TableError
    from scoring.training.table import predict_table as run

    settings = Settings()
    try:
        with console.status(f"scoring {table}"):
            result = run(settings, table, model_uri=model, out=out, id_column=id_column)
    except (TableError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    counts = result["grade"].value_counts().sort_index()
    console.print(f"wrote {len(result):,} rows to {out}: " + ", ".join(f"{g} {n:,}" for g, n in counts.items()))


# ---------------------------------------------------------------------------- serve
@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 8000)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="server processes (one per core is usual)")] = 1,
) -> None:
    """Serve the API with uvicorn (the champion model and the latest feature snapshot)."""
    import uvicorn

    settings = Settings()
    uvicorn.run(
        "scoring.serve.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level="warning",
    )


# ---------------------------------------------------------------------------- keys
@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="bank, analyst, regulator or admin")],
    bank_id: Annotated[str | None, typer.Option(help="the bank's id (bank keys only)")] = None,
    label: Annotated[str | None, typer.Option(help="who holds the key")] = None,
    rate_limit: Annotated[
        int | None, typer.Option(help="requests per minute for this key (default: SCORING_RATE_LIMIT_PER_MINUTE)")
    ] = None,
) -> None:
    """Create an API key; the key is shown once, only its hash is stored."""
    from scoring.store import Role, create_key, engine_for

    try:
        secret, record = create_key(
            engine_for(Settings().decision_url),
            role=Role(role),
            bank_id=bank_id,
            label=label,
            rate_per_minute=rate_limit,
        )
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    console.print(f"created {record.role} key {record.key_id}: {secret}")


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (ids, roles, banks; never the keys)."""
    from scoring.store import engine_for, list_keys

    table = Table("key id", "role", "bank", "label", "created", "revoked")
    for k in list_keys(engine_for(Settings().decision_url)):
        table.add_row(
            k["key_id"],
            k["role"],
            k["bank_id"] or "",
            k["label"] or "",
            str(k["created_at"])[:19],
            str(k["revoked_at"] or "")[:19],
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="the key id shown by `scoring keys list`")]) -> None:
    """Revoke an API key: a running service refuses it within SCORING_KEY_CACHE_SECONDS (5 s)."""
    from scoring.store import engine_for, revoke_key

    if not revoke_key(engine_for(Settings().decision_url), key_id):
        raise _fail(f"no live key {key_id}")
    console.print(f"revoked {key_id}")


# ---------------------------------------------------------------------------- consents
@consents_app.command("grant")
def consents_grant(
    uscc: Annotated[str, typer.Option(help="the enterprise's 统一社会信用代码")],
    bank_id: Annotated[str, typer.Option(help="the bank it authorized")],
    purpose: Annotated[str, typer.Option(help="pre_credit or evaluation")] = "pre_credit",
    expires: Annotated[str | None, typer.Option(help="YYYY-MM-DD (default: one year from granted)")] = None,
    granted: Annotated[str | None, typer.Option(help="YYYY-MM-DD (default: today)")] = None,
    evidence: Annotated[str | None, typer.Option(help="the signed authorization's reference")] = None,
) -> None:
    """Record that an enterprise authorized a bank for a purpose (audited)."""
    import getpass

    from scoring.serve.schemas import UsccValueError, uscc_shape
    from scoring.store import Purpose, engine_for, grant_consent

    try:
        code = uscc_shape(uscc)
        granted_on = _day(granted, "--granted") if granted else dt.date.today()
        expires_on = _day(expires, "--expires") if expires else granted_on.replace(year=granted_on.year + 1)
        row = grant_consent(
            engine_for(Settings().decision_url),
            uscc=code,
            bank_id=bank_id,
            purpose=Purpose(purpose),
            granted_on=granted_on,
            expires_on=expires_on,
            evidence=evidence,
            created_by=f"cli:{getpass.getuser()}",
        )
    except UsccValueError as exc:
        raise _fail(f"--uscc: {exc}") from exc
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    console.print(
        f"consent {row['consent_id']}: {code} authorized {bank_id} for {purpose} from {granted_on} until {expires_on}"
    )


@consents_app.command("list")
def consents_list(
    uscc: Annotated[str | None, typer.Option(help="only this enterprise")] = None,
    bank_id: Annotated[str | None, typer.Option(help="only this bank")] = None,
) -> None:
    """List consents, newest first."""
    from scoring.store import engine_for, list_consents

    table = Table("consent id", "uscc", "bank", "purpose", "granted", "expires", "revoked", "evidence")
    for c in list_consents(engine_for(Settings().decision_url), uscc=uscc, bank_id=bank_id):
        table.add_row(
            c["consent_id"],
            c["uscc"],
            c["bank_id"],
            c["purpose"],
            str(c["granted_on"]),
            str(c["expires_on"]),
            str(c["revoked_at"] or "")[:19],
            c["evidence"] or "",
        )
    console.print(table)


@consents_app.command("revoke")
def consents_revoke(consent_id: Annotated[str, typer.Argument(help="the consent id")]) -> None:
    """Revoke a consent from now on (audited)."""
    import getpass

    from scoring.store import engine_for, revoke_consent

    if revoke_consent(engine_for(Settings().decision_url), consent_id, by=f"cli:{getpass.getuser()}") is None:
        raise _fail(f"no live consent {consent_id}")
    console.print(f"revoked consent {consent_id}")


# ---------------------------------------------------------------------------- audit
@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute the audit log's hash chain: a changed or deleted row is reported (exit 1)."""
    from scoring.store import engine_for, verify_chain

    report = verify_chain(engine_for(Settings().decision_url))
    if report.intact:
        console.print(f"audit log intact: {report.rows:,} rows, head at {report.head_seq:,}")
        return
    for problem in report.problems:
        console.print(f"[red]{problem}[/red]")
    raise _fail(f"audit log broken: {len(report.problems)} problem(s) in {report.rows:,} rows")


# ---------------------------------------------------------------------------- outcomes
@outcomes_app.command("export")
def outcomes_export(
    out: Annotated[
        Path, typer.Option(help="Parquet file to write in the loans format (its name must start with loans.)")
    ] = Path("var/outcomes/loans.reported.parquet"),
) -> None:
    """Write the latest reported outcome of every loan as a loans table, for `scoring ingest` and retraining."""
    from scoring.store import engine_for, reported_loans

    frame = reported_loans(engine_for(Settings().decision_url))
    if frame.empty:
        raise _fail("no outcomes reported yet")
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out, index=False)
    console.print(f"wrote {len(frame):,} loans from {frame['bank_id'].nunique()} bank(s) to {out}")


# ---------------------------------------------------------------------------- monitor
MONITOR_RED = 3  # exit code of a red flag: 1 is an error (as in every command), 2 a usage error (click)


@app.command()
def monitor(
    as_of: Annotated[str, typer.Option(help="the snapshot to check, YYYY-MM-DD (built when missing)")],
    reference_as_of: Annotated[
        str | None,
        typer.Option(help="compare with the snapshot at this date instead of the champion's training snapshots"),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="HTML report (default: var/monitor/monitor-AS_OF.html)")] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="a red feature PSI or missing-rate change also exits 3")
    ] = False,
) -> None:
    """Compare the feature snapshot and the champion's scores at AS_OF with the champion's training
    population: PSI per feature, missing rates, score PSI and mean shift overall and per industry and
    size, grade migration. Writes an HTML report, logs the run to MLflow (experiment `monitoring`) and
    exits 3 on a red score flag (0 otherwise), for a scheduler to alert on."""
    from scoring.data.ingest import IngestError
    from scoring.features.catalog import CatalogError
    from scoring.monitor.drift import Flag
    from scoring.monitor.run import MonitorError, run_monitor

    settings = Settings()
    day = _day(as_of, "--as-of")
    reference = _day(reference_as_of, "--reference-as-of") if reference_as_of else None
    try:
        with console.status(f"scoring the snapshot at {day} and the champion's reference"):
            result = run_monitor(settings, as_of=day, out=out, reference_as_of=reference, strict=strict)
    except (MonitorError, IngestError, CatalogError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    colour = {Flag.GREEN: "green", Flag.AMBER: "yellow", Flag.RED: "red"}

    def lit(flag: object) -> str:
        if flag is None or flag != flag:  # a segment too small to flag (None or NaN)
            return "[dim]too few[/dim]"
        f = Flag(str(flag))
        return f"[{colour[f]}]{f.value}[/{colour[f]}]"

    reference_text = ", ".join(map(str, result.reference_as_of))
    console.print(
        f"{result.model_name} v{result.model_version} at {day}: {result.n_current:,} enterprises against "
        f"{'training snapshots' if result.reference_is_training else 'the snapshot'} {reference_text} "
        f"({result.n_reference:,} enterprise-snapshots)"
    )
    segments = result.segments.dropna(subset=["psi"]).copy()
    segments["order"] = segments["flag"].map({"red": 0, "amber": 1, "green": 2}).fillna(3)
    segments = segments.sort_values(["order", "psi"], ascending=[True, False])
    table = Table("score", "n", "PSI", "mean shift (sd)", "flag", title="score stability")
    table.add_row(
        "all",
        f"{result.n_current:,}",
        f"{result.score_psi:.4f}",
        f"{result.score_shift:+.3f}",
        lit(result.score_flag.value),
    )
    for row in segments.head(8).itertuples():
        table.add_row(
            f"{row.segment}={row.value}", f"{row.n_current:,}", f"{row.psi:.4f}", f"{row.shift_sd:+.3f}", lit(row.flag)
        )
    console.print(table)
    features = Table("feature", "PSI", "flag", "missing change", title="features with the largest PSI")
    for row in result.features.head(5).itertuples():
        features.add_row(
            f"{row.feature} ({row.label_zh})",
            f"{row.psi:.3f}",
            lit(row.psi_flag),
            f"{100 * row.missing_change:+.1f} pp",
        )
    console.print(features)
    counts = result.counts()
    console.print(
        f"flags: {counts['n_red']} red, {counts['n_amber']} amber ({counts['n_red_segments']} red segments, "
        f"{counts['n_red_features']} red features, {counts['n_red_missing']} red missing rates)"
    )
    console.print(f"report {result.report_path}, MLflow run {result.run_id}")
    for note in result.notes:
        console.print(f"[dim]{note}[/dim]")
    if result.alert:
        console.print(f"[red]red flag:[/red] {'; '.join(result.reasons)}")
        raise typer.Exit(MONITOR_RED)
    console.print(f"no red score flag (score {result.score_status.value})")


# ---------------------------------------------------------------------------- demo
@app.command()
def demo(
    enterprises: Annotated[int, typer.Option(min=100, help="size of the synthetic county")] = DEMO_ENTERPRISES,
    months: Annotated[int, typer.Option(min=13, help="months of records")] = DEMO_MONTHS,
    seed: Annotated[int, typer.Option(help="random seed")] = DEMO_SEED,
    serve_api: Annotated[bool, typer.Option("--serve/--no-serve", help="start the API at the end")] = True,
) -> None:
    """Everything end to end: generate a county, ingest, build features, train, register, serve."""
    from scoring.data.generate import GeneratorConfig
    from scoring.data.ingest import WarehouseFormatError, connect, extract_date_of, ingest_directory
    from scoring.features.build import store_snapshot
    from scoring.features.catalog import load_catalog

    settings = Settings()
    started = time.perf_counter()
    cfg = GeneratorConfig(enterprises=enterprises, months=months, seed=seed)
    manifest_file = settings.raw_path / "manifest.json"
    from dataclasses import asdict

    from scoring import __version__

    manifest = json.loads(manifest_file.read_text()) if manifest_file.exists() else {}
    if manifest.get("generator") == asdict(cfg) and manifest.get("version") == __version__:
        console.print(f"[1/5] synthetic county already in {settings.raw_path} (seed {seed})")
    else:
        for stale in settings.raw_path.glob("*.parquet"):  # the demo's own folder: drop tables of older versions
            stale.unlink()
        _generate(cfg, settings.raw_path)
        console.print(f"[1/5] generated {enterprises:,} enterprises x {months} months into {settings.raw_path}")
    with console.status("[2/5] ingesting"):
        try:
            results = ingest_directory(settings.raw_path, settings.warehouse_path)
        except WarehouseFormatError:
            # the demo warehouse holds only generated data: rebuild it in the current format
            settings.warehouse_path.unlink()
            results = ingest_directory(settings.raw_path, settings.warehouse_path)
    console.print(
        f"[2/5] ingested {sum(r.rows_read for r in results):,} rows: {sum(r.inserted for r in results):,} new, "
        f"{sum(r.replaced for r in results):,} replaced, {sum(r.unchanged for r in results):,} unchanged, "
        f"{sum(r.quarantined for r in results):,} quarantined with reasons"
    )
    catalog = load_catalog(settings.catalog_path)
    with (
        connect(settings.warehouse_path, memory_limit=settings.duckdb_memory_limit) as con,
        console.status("[3/5] building features"),
    ):
        as_of = extract_date_of(con)
        n = store_snapshot(con, catalog, as_of=as_of)
    console.print(f"[3/5] built {len(catalog.features)} features for {n:,} enterprises as of {as_of}")
    _demo_train(settings)
    key = _demo_key(settings)
    console.print(f"demo ready in {time.perf_counter() - started:.0f}s")
    if serve_api:
        _serve_and_show(settings, key)


def _demo_train(settings: Settings) -> None:
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

    def settle(name: str, version: str, alias: str) -> None:
        if alias == settings.challenger_alias:  # a champion exists: the new version goes through the gate
            gate, moved = run_promote(settings, name)
            _print_gate(gate, moved)

    kept = current(settings.model_name, current_lineage(settings)["fingerprint"])
    if kept:
        console.print(f"[4/5] champion {settings.model_name} v{kept} was trained on this very data: kept")
    else:
        with console.status("[4/5] training the credit evaluation") as status:
            result = train_evaluation(settings, progress=lambda m: status.update(f"[4/5] {m}"))
        _print_training(result)
        settle(result.model_name, result.version, result.alias)
    fingerprint = lineage_now(settings)["fingerprint"]
    if current("pre_credit_default", fingerprint) and current("pre_credit_amount", fingerprint):
        console.print("[4/5] pre-credit champions were trained on this very data: kept")
        return
    with console.status("[4/5] training the pre-credit models") as status:
        pre = train_pre_credit(settings, progress=lambda m: status.update(f"[4/5] {m}"))
    _print_training(pre.default)
    _print_amount(pre.amount)
    for r in (pre.default, pre.amount):
        settle(r.model_name, r.version, r.alias)


def _demo_key(settings: Settings) -> str:
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


def _demo_uscc(settings: Settings) -> str:
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
    import socket

    import httpx
    import uvicorn

    from scoring.serve.app import create_app

    with socket.socket() as probe:
        if probe.connect_ex((settings.host, settings.port)) == 0:
            raise _fail(f"port {settings.port} on {settings.host} is in use: stop that server or set SCORING_PORT")
    uscc = _demo_uscc(settings)
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
        console.print(f"[5/5] served: POST /v1/evaluations -> {answer.status_code}")
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


if __name__ == "__main__":
    app()
