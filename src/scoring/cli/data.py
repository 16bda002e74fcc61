"""The platform data: generate a synthetic county, ingest files, render the contract and the feature
dictionary, and show which records of an enterprise count."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from scoring.cli.output import console, fail, generate_with_progress, parse_day, write_or_check
from scoring.settings import Settings

commands = typer.Typer()

# the synthetic county of `scoring generate` and `scoring demo`
DEMO_ENTERPRISES = 20_000
DEMO_MONTHS = 48
DEMO_SEED = 7


@commands.command()
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
    manifest = generate_with_progress(cfg, target)
    rows = sum(v for k, v in manifest["rows"].items() if k != "synthetic_truth")
    console.print(
        f"generated {enterprises:,} enterprises x {months} months: {rows:,} records, "
        f"{manifest['adverse_events']:,} adverse events, into {target}"
    )


@commands.command()
def ingest(
    sources: Annotated[
        list[Path] | None, typer.Argument(help="folders or files of platform data (default: var/raw)")
    ] = None,
    extract_date: Annotated[str | None, typer.Option(help="when the files were exported, YYYY-MM-DD")] = None,
    memory_limit: Annotated[str | None, typer.Option(help="DuckDB memory limit (default: the setting, 6GB)")] = None,
) -> None:
    """Validate platform files (Parquet, or CSV in UTF-8/GBK with English or Chinese headers) and load
    them into the DuckDB warehouse: upsert on the natural key, bad rows quarantined with their reason."""
    from scoring.data.ingest import LoadAborted
    from scoring.data.ingest import ingest as run_ingest

    settings = Settings()
    paths = sources or [settings.raw_path]
    with console.status(f"loading {', '.join(map(str, paths))}"):
        try:
            report = run_ingest(
                paths,
                settings.warehouse_path,
                memory_limit=memory_limit or settings.duckdb_memory_limit,
                extract_date=parse_day(extract_date, "--extract-date") if extract_date else None,
            )
        except LoadAborted as exc:
            console.print(f"[red]{exc.title_zh}:[/red] {exc}")
            raise typer.Exit(code=3 if exc.out_of_disk else 2) from exc
    if report.interrupted:
        console.print(f"[yellow]note:[/yellow] {report.interrupted_text()}")
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
    reports = settings.path(settings.var_dir, setting="SCORING_VAR_DIR") / "reports"
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


@commands.command()
def export(
    out: Annotated[Path | None, typer.Option(help="the lake's folder (default: var/lake)")] = None,
    buckets: Annotated[int, typer.Option(min=1, help="files per table, by a hash of the USCC")] = 16,
) -> None:
    """Write the warehouse's validated tables as a Parquet lake for Spark: a folder per table,
    bucketed by USCC, and _lake.json saying what was written."""
    from scoring.data.ingest import connect
    from scoring.data.lake import export_lake

    settings = Settings()
    target = out or settings.lake_path
    with connect(settings.warehouse_path, read_only=True) as con:
        written = export_lake(con, target, buckets=buckets)
    rows = sum(e.rows for e in written)
    console.print(f"exported {len(written)} tables, {rows:,} rows, into {target} ({buckets} buckets by USCC)")


@commands.command()
def contract(
    out: Annotated[Path, typer.Option(help="where to write it")] = Path("docs/data-contract.md"),
    check: Annotated[bool, typer.Option("--check", help="only say whether the file is current")] = False,
) -> None:
    """Render the data contract (every table, column, type, label, key) to Markdown."""
    from scoring.data.contract import render_contract

    write_or_check(out, render_contract(), check=check, command="scoring contract")


@commands.command()
def dictionary(
    out: Annotated[Path, typer.Option(help="where to write it")] = Path("docs/feature-dictionary.md"),
    check: Annotated[bool, typer.Option("--check", help="only say whether the file is current")] = False,
) -> None:
    """Render the feature catalog (every feature, its definition, direction and reason text) to Markdown."""
    from scoring.features.catalog import load_catalog
    from scoring.features.dictionary import render_dictionary

    text = render_dictionary(load_catalog(Settings().catalog_path))
    write_or_check(out, text, check=check, command="scoring dictionary")


@commands.command()
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
        day = parse_day(as_of, "--as-of") if as_of else extract_date_of(con)
        frame = record_status(con, catalog, uscc=uscc.strip().upper(), as_of=day)
    if frame.empty:
        raise fail(f"no records of {uscc} before {day}")
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


objections_app = typer.Typer(help="Objections (异议) to records, and their deadline.", no_args_is_help=True)


@objections_app.command("overdue")
def objections_overdue(
    as_of: Annotated[str | None, typer.Option(help="as-of date YYYY-MM-DD (default: the extraction date)")] = None,
    days: Annotated[int, typer.Option(min=1, help="the deadline in days from the objection")] = 20,
) -> None:
    """Objections still open past their deadline (20 days from being raised), oldest first; exit 1 when any."""
    from scoring.data.ingest import connect, extract_date_of
    from scoring.features.records import overdue_objections

    settings = Settings()
    with connect(settings.warehouse_path, read_only=True) as con:
        day = parse_day(as_of, "--as-of") if as_of else extract_date_of(con)
        rows = overdue_objections(con, as_of=day, days=days)
    table = Table(
        "objection", "uscc", "record", "raised", "open (days)", "overdue (days)", title=f"overdue objections, {day}"
    )
    for r in rows:
        table.add_row(
            str(r["objection_id"]),
            str(r["uscc"]),
            f"{r['record_table']} {r['record_id']}",
            str(r["raised_date"]),
            str(r["days_open"]),
            f"[red]{r['days_overdue']}[/red]",
        )
    console.print(table)
    console.print(f"{len(rows)} objections open more than {days} days as of {day} (逾期未办结的异议)")
    if rows:
        raise typer.Exit(code=1)
