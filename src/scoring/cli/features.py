"""`scoring features`: the point-in-time feature snapshots, built from the catalog."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from scoring.cli.output import console, parse_day
from scoring.settings import Settings

commands = typer.Typer()


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
) -> None:
    """Build the point-in-time feature snapshot at AS_OF from the catalog (records dated before it)."""
    import pandas as pd

    from scoring.data.ingest import connect, extract_date_of
    from scoring.features.build import store_snapshots
    from scoring.features.catalog import load_catalog

    settings = Settings()
    catalog = load_catalog(settings.catalog_path)
    with connect(settings.warehouse_path, memory_limit=settings.duckdb_memory_limit) as con:
        day = parse_day(as_of, "--as-of") if as_of else extract_date_of(con)
        month_start = pd.Timestamp(day).to_period("M").to_timestamp()
        earlier = [(month_start - pd.DateOffset(months=k)).date() for k in range(months)]
        days = sorted({day, *(d for d in earlier if d < day)})[-months:]
        with console.status(f"building {len(catalog.features)} features as of {', '.join(map(str, days))}"):
            started = time.perf_counter()
            rows = store_snapshots(con, catalog, as_of_dates=days)
    when = f"as of {day}" if len(days) == 1 else f"at {len(days)} dates from {days[0]} to {days[-1]}"
    console.print(
        f"built {len(catalog.features)} features for {rows:,} enterprise-snapshots {when} "
        f"in {time.perf_counter() - started:.1f}s"
    )
