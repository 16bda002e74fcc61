"""`scoring features`: the point-in-time feature snapshots, built from the catalog."""

from __future__ import annotations

import datetime as dt
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from scoring.cli.output import console, parse_day
from scoring.settings import Settings

if TYPE_CHECKING:
    from scoring.features.catalog import Catalog

commands = typer.Typer()


class Engine(StrEnum):
    DUCKDB = "duckdb"
    SPARK = "spark"


@commands.command()
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
    engine: Annotated[
        Engine, typer.Option(help="duckdb: the warehouse, stored in it; spark: the lake, written as Parquet")
    ] = Engine.DUCKDB,
    lake: Annotated[Path | None, typer.Option(help="spark: the lake `scoring export` wrote (default var/lake)")] = None,
    out: Annotated[Path | None, typer.Option(help="spark: where the Parquet goes (default var/spark)")] = None,
    master: Annotated[
        str,
        typer.Option(help="spark: `standalone` (a master and two workers started on 127.0.0.1), spark://… or local[N]"),
    ] = "standalone",
    labels: Annotated[
        bool, typer.Option(help="spark: also write the labels of both models (outcome windows must be complete)")
    ] = False,
) -> None:
    """Build the point-in-time feature snapshot at AS_OF from the catalog (records dated before it)."""
    from scoring.features.catalog import load_catalog

    settings = Settings()
    catalog = load_catalog(settings.catalog_path)
    started = time.perf_counter()
    if engine is Engine.SPARK:
        lake = lake or settings.lake_path
        out = out or settings.spark_path
        days, rows = _on_spark(catalog, settings, lake, out, master, as_of=as_of, months=months, labels=labels)
    else:
        days, rows = _on_duckdb(catalog, settings, as_of=as_of, months=months)
    when = f"as of {days[-1]}" if len(days) == 1 else f"at {len(days)} dates from {days[0]} to {days[-1]}"
    where = f" into {out}" if engine is Engine.SPARK else ""
    console.print(
        f"built {len(catalog.features)} features for {rows:,} enterprise-snapshots {when}{where} "
        f"in {time.perf_counter() - started:.1f}s"
    )


def _dates(day: dt.date, months: int) -> list[dt.date]:
    """``day`` and the month starts before it, ``months`` dates in all."""
    import pandas as pd

    month_start = pd.Timestamp(day).to_period("M").to_timestamp()
    earlier = [(month_start - pd.DateOffset(months=k)).date() for k in range(months)]
    return sorted({day, *(d for d in earlier if d < day)})[-months:]


def _on_duckdb(catalog: Catalog, settings: Settings, *, as_of: str | None, months: int) -> tuple[list[dt.date], int]:
    from scoring.data.ingest import connect, extract_date_of
    from scoring.features.build import store_snapshots

    with connect(settings.warehouse_path, memory_limit=settings.duckdb_memory_limit) as con:
        days = _dates(parse_day(as_of, "--as-of") if as_of else extract_date_of(con), months)
        with console.status(f"building {len(catalog.features)} features as of {', '.join(map(str, days))}"):
            return days, store_snapshots(con, catalog, as_of_dates=days)


def _on_spark(
    catalog: Catalog,
    settings: Settings,
    lake: Path,
    out: Path,
    master: str,
    *,
    as_of: str | None,
    months: int,
    labels: bool,
) -> tuple[list[dt.date], int]:
    from scoring.data.lake import read_manifest
    from scoring.features.on_spark import spark_labels, spark_snapshots
    from scoring.features.spark import spark_on

    manifest = read_manifest(lake)
    days = _dates(parse_day(as_of, "--as-of") if as_of else dt.date.fromisoformat(manifest["extract_date"]), months)
    with spark_on(master, settings.spark_path / "cluster") as spark:
        with console.status(f"building {len(catalog.features)} features on Spark as of {', '.join(map(str, days))}"):
            rows = spark_snapshots(spark, catalog, lake=lake, out=out, as_of_dates=days)
        if labels:
            with console.status("building the labels of both models on Spark"):
                written = spark_labels(spark, lake=lake, out=out, as_of_dates=days)
            console.print(", ".join(f"{n:,} rows of {name}" for name, n in written.items()))
    return days, rows
