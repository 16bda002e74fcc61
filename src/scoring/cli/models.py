"""The models: train and register them, promote a challenger through the gate, retrain on new
outcomes, and train or apply the evaluation pipeline on a bank's flat table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from scoring.cli.output import console, fail, print_amount, print_gate, print_training
from scoring.settings import Settings

commands = typer.Typer()


@commands.command()
def train(
    model: Annotated[
        str, typer.Option(help="credit_evaluation, pre_credit (the default and amount models) or all")
    ] = "all",
    spec: Annotated[
        Path | None, typer.Option(help="credit evaluation spec (default: models/credit_evaluation.yaml)")
    ] = None,
    snapshots: Annotated[
        Path | None,
        typer.Option(
            help="the credit evaluation's training snapshots and labels from this folder, as "
            "`scoring features --engine spark --labels` wrote them (the test snapshot stays the warehouse's)"
        ),
    ] = None,
) -> None:
    """Train out of time, log to MLflow and register: the first version of a model becomes champion,
    later ones challenger (see `scoring promote`)."""
    from scoring.training.precredit import train_pre_credit
    from scoring.training.train import train_evaluation

    if model not in ("credit_evaluation", "pre_credit", "all"):
        raise fail(f"--model: {model!r} is not one of credit_evaluation, pre_credit, all")
    if snapshots is not None and model != "credit_evaluation":
        raise fail(
            "--snapshots: only with --model credit_evaluation (the pre-credit models read loans from the warehouse)"
        )
    settings = Settings()
    with console.status("training") as status:
        if model in ("credit_evaluation", "all"):
            result = train_evaluation(
                settings, spec_path=spec, snapshots=snapshots, progress=lambda m: status.update(m)
            )
            print_training(result)
        if model in ("pre_credit", "all"):
            pre_credit = train_pre_credit(settings, progress=lambda m: status.update(m))
            print_training(pre_credit.default)
            print_amount(pre_credit.amount)


@commands.command()
def promote(
    model: Annotated[str, typer.Argument(help="credit_evaluation, pre_credit_default or pre_credit_amount")],
    force: Annotated[bool, typer.Option(help="promote even when the gate fails (asks for a reason)")] = False,
    reason: Annotated[str | None, typer.Option(help="why the gate is overridden (recorded)")] = None,
) -> None:
    """Move the champion alias to the challenger when it passes the gate: AUC not below the champion's
    on the same test data, bad rate rising from A to D, score PSI against the champion below 0.1."""
    from scoring.training.promote import promote as run_promote

    settings = Settings()
    if force and not reason:
        reason = typer.prompt("reason for overriding the gate (recorded with the promotion)")
    with console.status(f"scoring {model}'s champion and challenger on the same data"):
        gate, moved = run_promote(settings, model, force=force, reason=reason)
    print_gate(gate, moved)
    if not moved:
        raise typer.Exit(1)


@commands.command()
def retrain(
    promote_passing: Annotated[bool, typer.Option("--promote", help="promote the challengers that pass")] = False,
) -> None:
    """Train challengers of every model on the newest data (including the loan outcomes banks reported
    since the last training) and report each against its champion on the same test data."""
    from scoring.training.precredit import train_pre_credit
    from scoring.training.promote import evaluate_gate
    from scoring.training.promote import promote as run_promote
    from scoring.training.train import train_evaluation

    settings = Settings()
    with console.status("training challengers") as status:
        evaluation = train_evaluation(settings, progress=lambda m: status.update(m))
        pre_credit = train_pre_credit(settings, progress=lambda m: status.update(m))
    print_training(evaluation)
    print_training(pre_credit.default)
    print_amount(pre_credit.amount)
    for result in (evaluation, pre_credit.default, pre_credit.amount):
        if result.alias != settings.challenger_alias:
            console.print(f"{result.model_name} v{result.version} is the first version: champion")
            continue
        with console.status(f"gate for {result.model_name}"):
            if promote_passing:
                gate, moved = run_promote(settings, result.model_name)
                print_gate(gate, moved)
            else:
                print_gate(evaluate_gate(settings, result.model_name))


@commands.command("train-table")
def train_table(
    table: Annotated[Path, typer.Argument(help="a CSV (UTF-8 or GBK) or Parquet table, one row per case")],
    target: Annotated[str, typer.Option(help="the outcome column")],
    positive: Annotated[str | None, typer.Option(help="the outcome value that counts as bad (else inferred)")] = None,
    id_column: Annotated[str | None, typer.Option("--id", help="an identifier column, not used as a feature")] = None,
    name: Annotated[str | None, typer.Option(help="registered model name (default: table_<file name>)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="end with one JSON line: model_uri and the metrics")] = False,
) -> None:
    """Train the evaluation pipeline on a flat table and register it (MLFLOW_TRACKING_URI is honoured)."""
    from scoring.training.table import train_table as run

    settings = Settings()
    with console.status(f"training on {table}"):
        result = run(settings, table, target=target, positive=positive, id_column=id_column, name=name)
    m = result.metrics
    console.print(
        f"registered {result.model_uri}: out-of-fold AUC {m['auc']:.4f}, KS {m['ks']:.3f}, Brier {m['brier']:.4f} "
        f"on {int(m['n']):,} rows ({m['bad_rate']:.1%} {target} = {result.positive!r}); "
        f"{len(result.features)} columns used; booster weight {m['booster_weight']:.1f} in the blend with the scorecard"
    )
    bands = ", ".join(
        f"{g} ≥{row['min_score']:.0f} ({row['share']:.0%}, bad {row['bad_rate']:.1%})"
        for g, row in result.grades.iterrows()
    )
    console.print(
        f"grades by the table's own out-of-fold scores: {bands}; bad rate ordered: {bool(m['grades_ordered'])}"
    )
    for col, why in result.dropped.items():
        console.print(f"  not used: {col}: {why}")
    if as_json:
        typer.echo(result.as_json())


@commands.command("predict-table")
def predict_table(
    table: Annotated[Path, typer.Argument(help="a CSV or Parquet table with the model's columns")],
    model: Annotated[str, typer.Option(help="model URI, e.g. models:/table_loans/1")],
    out: Annotated[Path, typer.Option(help="output .csv or .parquet")],
    id_column: Annotated[str | None, typer.Option("--id", help="identifier column copied to the output")] = None,
) -> None:
    """Score every row: id, probability, score, grade and the top reasons (MLFLOW_TRACKING_URI is honoured)."""
    from scoring.training.table import predict_table as run

    settings = Settings()
    with console.status(f"scoring {table}"):
        result = run(settings, table, model_uri=model, out=out, id_column=id_column)
    counts = result["grade"].value_counts().sort_index()
    console.print(f"wrote {len(result):,} rows to {out}: " + ", ".join(f"{g} {n:,}" for g, n in counts.items()))
