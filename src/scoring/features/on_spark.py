"""Snapshots and labels on Spark: the catalog's plan run on the Parquet lake, written as Parquet.

The records are the lake that ``scoring export`` writes (one folder per table, bucketed by USCC);
each table becomes a view of its own name, so the plan's SQL (plan.py) reads them as DuckDB reads
the warehouse. A snapshot is written to ``<out>/feature_snapshots/as_of=<date>/`` and the labels to
``<out>/labels/as_of=<date>/`` and ``<out>/loan_labels/``; writing some dates replaces those dates only.
``<out>/feature_snapshots/_builds.json`` says, per date, which catalog and which data it was built
from, as the warehouse's ``snapshot_builds`` does.
"""

from __future__ import annotations

import datetime as dt
import json
from functools import reduce
from pathlib import Path
from typing import Any

import pandas as pd

from scoring.data.lake import read_manifest
from scoring.features.build import ROWS_PER_PASS
from scoring.features.catalog import Catalog
from scoring.features.labels import LABEL_MONTHS, labels_statement, loan_labels_statement
from scoring.features.plan import feature_sql

SNAPSHOTS = "feature_snapshots"
LABELS = "labels"
LOAN_LABELS = "loan_labels"
BUILDS = "_builds.json"
# enterprise-snapshots per Spark job, as per SQL pass on DuckDB: a job joins every record to each of its dates
ROWS_PER_JOB = ROWS_PER_PASS


def register_lake(spark: Any, lake: Path) -> dict:
    """Make every table of the lake a view of its own name; return the lake's manifest."""
    manifest = read_manifest(lake)
    for table, info in manifest["tables"].items():
        frame = spark.read.parquet(str(lake / table))
        if info["bucketed"]:
            frame = frame.drop("bucket")  # the folder's partition column, not a column of the table
        frame.createOrReplaceTempView(table)
    return manifest


def _write(frame: Any, target: Path, partition: str | None) -> None:
    writer = frame.write.mode("overwrite")
    if partition:
        # overwrite only the partitions written: other dates' snapshots stay
        writer = writer.option("partitionOverwriteMode", "dynamic").partitionBy(partition)
    writer.parquet(str(target))


def _record_builds(target: Path, dates: list[dt.date], catalog: Catalog, manifest: dict) -> None:
    path = target / BUILDS
    builds = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    for d in dates:
        builds[str(d)] = {
            "catalog_digest": catalog.digest,
            "data_fingerprint": manifest["data_fingerprint"],
            "built_at": now,
        }
    path.write_text(json.dumps(builds, indent=2, sort_keys=True), encoding="utf-8")


def _count(spark: Any, target: Path, dates: list[dt.date]) -> int:
    from pyspark.sql import functions as F

    return int(spark.read.parquet(str(target)).where(F.col("as_of").isin(dates)).count())


def spark_snapshots(spark: Any, catalog: Catalog, *, lake: Path, out: Path, as_of_dates: list[dt.date]) -> int:
    """Build the snapshots at ``as_of_dates`` from the lake into ``out``; return the rows written.

    As many dates share one job as fit in ``ROWS_PER_JOB`` enterprise-snapshots (one at least)."""
    manifest = register_lake(spark, lake)
    dates = sorted(set(as_of_dates))
    per_date = max(int(manifest["tables"]["enterprises"]["rows"]), 1)
    size = max(ROWS_PER_JOB // per_date, 1)
    target = out / SNAPSHOTS
    rows = 0
    for chunk in [dates[i : i + size] for i in range(0, len(dates), size)]:
        frame = spark.sql(feature_sql(catalog, chunk, ordered=False, engine="spark"))
        _write(frame, target, "as_of")
        rows += _count(spark, target, chunk)
        _record_builds(target, chunk, catalog, manifest)
    return rows


def spark_labels(
    spark: Any, *, lake: Path, out: Path, as_of_dates: list[dt.date], months: int = LABEL_MONTHS
) -> dict[str, int]:
    """The credit evaluation's labels at each of ``as_of_dates`` and the 信易贷 loan labels of the loans
    started in the months of those dates whose outcome windows are complete, from the lake into
    ``out``; the rows written of each.

    A date whose outcome window reaches past the data's extraction date is an error (LabelWindowError),
    as on DuckDB."""
    manifest = register_lake(spark, lake)
    extract = dt.date.fromisoformat(manifest["extract_date"])
    dates = sorted(set(as_of_dates))
    frames = [spark.sql(labels_statement(as_of=d, months=months, extract=extract, engine="spark")) for d in dates]
    _write(reduce(lambda a, b: a.unionByName(b), frames), out / LABELS, "as_of")
    # the loans started in the months of the dates, up to the last start whose window is complete
    first = dates[0].replace(day=1)
    last = dates[-1].replace(day=1)
    after_last = dt.date(last.year + last.month // 12, last.month % 12 + 1, 1)
    complete = (pd.Timestamp(extract) - pd.DateOffset(months=months)).date() + dt.timedelta(days=1)
    before = min(after_last, complete)
    if before > first:
        loans = spark.sql(
            loan_labels_statement(start_from=first, start_before=before, months=months, extract=extract, engine="spark")
        )
        _write(loans, out / LOAN_LABELS, None)
    return {
        LABELS: _count(spark, out / LABELS, dates),
        LOAN_LABELS: spark.read.parquet(str(out / LOAN_LABELS)).count() if before > first else 0,
    }
