"""`scoring monitor`: drift of the features and the champion's scores, with an exit code to alert on."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from scoring.cli.output import console, parse_day
from scoring.settings import Settings

if TYPE_CHECKING:
    import datetime as dt

    from scoring.monitor.run import MonitorResult

commands = typer.Typer()

MONITOR_RED = 3  # exit code of a red flag: 1 is an error (as in every command), 2 a usage error (click)


@commands.command()
def monitor(
    as_of: Annotated[str, typer.Option(help="the snapshot to check, YYYY-MM-DD (built when missing)")],
    reference_as_of: Annotated[
        str | None,
        typer.Option(help="compare with the snapshot at this date instead of the champion's training snapshots"),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="HTML report (default: var/monitor/monitor-AS_OF.html)")] = None,
    score_only: Annotated[
        bool,
        typer.Option(
            "--score-only", help="exit 3 on a red score flag only; a red feature PSI or missing rate is then reported"
        ),
    ] = False,
) -> None:
    """Compare the feature snapshot and the champion's scores at AS_OF with the champion's training
    population: PSI per feature, missing rates, score PSI and mean shift overall and per industry and
    size, grade migration. Writes an HTML report, logs the run to MLflow (experiment `monitoring`) and
    exits 3 on a red flag of the score, a segment's score or a feature (0 otherwise), for a scheduler
    to alert on."""
    from scoring.monitor.run import run_monitor

    settings = Settings()
    day = parse_day(as_of, "--as-of")
    reference = parse_day(reference_as_of, "--reference-as-of") if reference_as_of else None
    with console.status(f"scoring the snapshot at {day} and the champion's reference"):
        result = run_monitor(settings, as_of=day, out=out, reference_as_of=reference, score_only=score_only)
    _print_result(result, day)
    if result.alert:
        console.print(f"[red]red flag:[/red] {'; '.join(result.reasons)}")
        raise typer.Exit(MONITOR_RED)
    if result.score_only:
        console.print(f"no red score flag (score {result.score_status.value}, features not counted)")
    else:
        console.print(f"no red flag (score {result.score_status.value}, features {result.feature_status.value})")


def _lit(flag: object) -> str:
    """A flag in its colour; a segment too small to flag (None or NaN) says so."""
    from scoring.monitor.drift import Flag

    if flag is None or flag != flag:
        return "[dim]too few[/dim]"
    f = Flag(str(flag))
    colour = {Flag.GREEN: "green", Flag.AMBER: "yellow", Flag.RED: "red"}[f]
    return f"[{colour}]{f.value}[/{colour}]"


def _print_result(result: MonitorResult, day: dt.date) -> None:
    """The population compared, the score stability overall and in the most shifted segments, the
    features with the largest PSI, the flags counted, and where the report and the run are."""
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
        _lit(result.score_flag.value),
    )
    for row in segments.head(8).itertuples():
        table.add_row(
            f"{row.segment}={row.value}", f"{row.n_current:,}", f"{row.psi:.4f}", f"{row.shift_sd:+.3f}", _lit(row.flag)
        )
    console.print(table)
    features = Table("feature", "PSI", "flag", "missing change", title="features with the largest PSI")
    for row in result.features[result.features["compared"].astype(bool)].head(5).itertuples():
        features.add_row(
            f"{row.feature} ({row.label_zh})",
            f"{row.psi:.3f}",
            _lit(row.psi_flag),
            f"{100 * row.missing_change:+.1f} pp",
        )
    console.print(features)
    counts = result.counts()
    console.print(
        f"flags: {counts['n_red']} red, {counts['n_amber']} amber ({counts['n_red_segments']} red segments, "
        f"{counts['n_red_features']} red features, {counts['n_red_missing']} red missing rates; "
        f"{counts['n_not_compared']} features not compared)"
    )
    console.print(f"report {result.report_path}, MLflow run {result.run_id}")
    for note in result.notes:
        console.print(f"[dim]{note}[/dim]")
