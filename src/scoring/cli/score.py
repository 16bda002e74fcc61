"""`scoring score`: the champions grade every enterprise of a snapshot (batch), on DuckDB or Spark."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from scoring.cli.features import Engine
from scoring.cli.output import console, parse_day
from scoring.settings import Settings

commands = typer.Typer()


@commands.command()
def score(
    as_of: Annotated[str, typer.Option(help="the snapshot's as-of date YYYY-MM-DD")],
    engine: Annotated[
        Engine, typer.Option(help="duckdb: the warehouse's snapshot; spark: the one `features --engine spark` wrote")
    ] = Engine.DUCKDB,
    out: Annotated[
        Path | None, typer.Option(help="where the Parquet goes (default var/spark, or var on DuckDB)")
    ] = None,
    master: Annotated[
        str, typer.Option(help="spark: `standalone` (a master and two workers on 127.0.0.1), spark://… or local[N]")
    ] = "standalone",
) -> None:
    """Grade every enterprise of the snapshot at AS_OF with the champions: probability, score, grade,
    limit and decision, the top reasons in Chinese and every SHAP value, written as Parquet (on
    DuckDB also to the warehouse's `scores` table)."""
    from scoring.batch.run import champions, score_on_duckdb, score_on_spark
    from scoring.features.catalog import load_catalog

    settings = Settings()
    catalog = load_catalog(settings.catalog_path)
    day = parse_day(as_of, "--as-of")
    started = time.perf_counter()
    if engine is Engine.SPARK:
        from scoring.features.on_spark import SNAPSHOTS
        from scoring.features.spark import spark_on

        target = out or settings.spark_path
        models = champions(settings)
        with (
            spark_on(master, settings.spark_path / "cluster") as spark,
            console.status(f"grading the snapshot at {day} on Spark"),
        ):
            rows = score_on_spark(spark, models, catalog, snapshots=target / SNAPSHOTS, out=target, as_of=day)
        versions = models.versions()
    else:
        target = out or settings.path(Path("var"))
        with console.status(f"grading the snapshot at {day}"):
            scored = score_on_duckdb(settings, catalog, as_of=day, out=target)
        rows, versions = scored.rows, scored.versions
    console.print(
        f"graded {rows:,} enterprises as of {day} with {', '.join(f'{n} v{v}' for n, v in versions.items())} "
        f"into {target / 'scores'} in {time.perf_counter() - started:.1f}s"
    )
