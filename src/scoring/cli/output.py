"""What the commands print, shared: the console, the error line, dates, generated documents, the
generator's progress bar, and the reports of training runs and promotion gates."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:  # the modules behind these types import pandas and MLflow: only inside the commands
    from scoring.data.generate import GeneratorConfig
    from scoring.training.promote import GateResult
    from scoring.training.train import TrainResult

console = Console()


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` and return the exit (code 1) for the caller to raise."""
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=1)


def parse_day(text: str, option: str) -> dt.date:
    """``text`` as a date, or an error naming ``option``."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise fail(f"{option}: {text!r} is not a date; use YYYY-MM-DD") from exc


def write_or_check(out: Path, text: str, *, check: bool, command: str) -> None:
    """Write a generated document, or with ``check`` only say whether the file holds that text."""
    if check:
        if not out.exists() or out.read_text(encoding="utf-8") != text:
            raise fail(f"{out} is stale: run `{command}`")
        console.print(f"{out} is current")
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    console.print(f"wrote {out}")


def generate_with_progress(cfg: GeneratorConfig, target: Path) -> dict[str, Any]:
    """Generate the synthetic county into ``target`` under a progress bar of enterprises; the manifest."""
    from scoring.data.generate import generate

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


def print_training(result: TrainResult) -> None:
    """The grade table and the out-of-time figures of a scorer's training run."""
    m = result.metrics
    table = Table("grade", "share", "bad rate", title=f"{result.model_name}: out-of-time test from {result.test_as_of}")
    for grade, row in result.grades.iterrows():
        table.add_row(str(grade), f"{row['share']:.1%}", f"{row['bad_rate']:.2%}")
    console.print(table)
    oracle = ""
    if "oracle_auc" in m:
        oracle = f", oracle AUC {m['oracle_auc']:.4f}, AUC/oracle {m['auc_over_oracle']:.3f}"
    if "asof_oracle_auc" in m:
        oracle += f", as-of oracle AUC {m['asof_oracle_auc']:.4f}, AUC/as-of oracle {m['auc_over_asof_oracle']:.3f}"
    console.print(
        f"trained {result.model_name} v{result.version}, {result.alias} (run {result.run_id[:8]}): "
        f"test AUC {m['auc']:.4f}, KS {m['ks']:.3f}, Brier {m['brier']:.4f}, "
        f"score PSI train/test {m['score_psi_train_test']:.3f}{oracle}"
    )


def print_amount(result: TrainResult) -> None:
    """The out-of-time figures of the amount model's training run."""
    m = result.metrics
    target = f" (target {m['coverage_target']:.0%})" if "coverage_target" in m else ""
    console.print(
        f"trained {result.model_name} v{result.version}, {result.alias} (run {result.run_id[:8]}): "
        f"{int(m['n'])} performing test loans, RMSE of log amount {m['rmse_log']:.3f}, "
        f"actual ≥ estimate for {m['coverage']:.0%}{target}"
    )


def print_gate(gate: GateResult, moved: bool | None = None) -> None:
    """The gate's figures and checks, and its verdict (with whether the champion moved, when known)."""
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
