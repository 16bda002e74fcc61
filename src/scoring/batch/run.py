"""`scoring score`: the champions grade every enterprise of a snapshot, on DuckDB or on Spark.

The rows are :func:`scoring.domain.batch.grade_frame`'s, the same on both engines. DuckDB reads the
warehouse's snapshot (built first when missing or stale) and writes the rows to the warehouse's
``scores`` table, replacing that date's, and to ``<var>/scores/as_of=<date>/``. Spark reads the
snapshot that ``scoring features --engine spark`` wrote, broadcasts each booster as its model string
with its scorer config, and grades Arrow batches in the tasks (``mapInArrow``): each task builds the
boosters once and runs the one TreeSHAP pass (``pred_contrib``) of the served path.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from scoring.batch.stored import build_versions, record_build
from scoring.batch.workers import grade_chunk, payload_of, rebuilt, start_worker
from scoring.domain.batch import SCORES_TABLE, grade_frame
from scoring.domain.models import ModelSet
from scoring.features.catalog import Catalog
from scoring.registry.champions import Registry
from scoring.registry.versions import configure
from scoring.settings import Settings

CHUNK = 50_000  # rows graded at a time: the SHAP matrices of a chunk stay small, and the cores stay busy


@dataclass(frozen=True)
class Scored:
    as_of: dt.date
    rows: int
    path: Path
    versions: dict[str, str]


def champions(settings: Settings) -> ModelSet:
    """The champions as the service loads them (by explicit version, checked)."""
    configure(settings)
    registry = Registry(policy_path=settings.model_spec_path("pre_credit_policy"), alias=settings.model_alias)
    return registry.load_set(registry.champions())


def _graded(models: ModelSet, catalog: Catalog, frame: pd.DataFrame, *, workers: int) -> pd.DataFrame:
    """Every row of ``frame`` graded, in chunks, by ``workers`` processes of one core each.

    Processes, not LightGBM's threads: TreeSHAP is three quarters of a row's time and the reasons,
    the limit policy and the frames the rest, all Python. With two threads for ``pred_contrib`` the
    Python quarter stays on one core; two processes keep both cores busy on both (the Spark path's
    tasks do the same). Each process rebuilds the boosters from their model strings once.
    """
    chunks = [frame.iloc[i : i + CHUNK] for i in range(0, max(len(frame), 1), CHUNK)]
    if workers <= 1 or len(chunks) == 1:
        return pd.concat([grade_frame(models, catalog, c) for c in chunks], ignore_index=True)
    context = multiprocessing.get_context("spawn")  # no fork of a process holding DuckDB's threads
    with ProcessPoolExecutor(
        min(workers, len(chunks)), mp_context=context, initializer=start_worker, initargs=(payload_of(models), catalog)
    ) as pool:
        return pd.concat(list(pool.map(grade_chunk, chunks)), ignore_index=True)


def _store(con: duckdb.DuckDBPyConnection, graded: pd.DataFrame, as_of: dt.date, versions: dict[str, str]) -> None:
    """The rows into ``scores``, replacing the date's; the table is made anew when its columns changed
    (another champion, another catalog): the rows of other dates were graded by other models.
    ``score_builds`` says which model graded which build of the snapshot (see stored.py)."""
    con.register("graded", graded)
    try:
        present = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if SCORES_TABLE in present:
            columns = [r[0] for r in con.execute(f"DESCRIBE {SCORES_TABLE}").fetchall()]
            if columns != list(graded.columns):
                con.execute(f"DROP TABLE {SCORES_TABLE}")
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {SCORES_TABLE} AS SELECT * FROM graded LIMIT 0"  # nosec B608 # SCORES_TABLE
        )
        con.execute(f"DELETE FROM {SCORES_TABLE} WHERE as_of = ?", [as_of])  # nosec B608 # SCORES_TABLE
        con.execute(f"INSERT INTO {SCORES_TABLE} SELECT * FROM graded")  # nosec B608 # SCORES_TABLE
        record_build(con, as_of=as_of, versions=versions)
    finally:
        con.unregister("graded")


def score_on_duckdb(
    settings: Settings, catalog: Catalog, *, as_of: dt.date, out: Path, workers: int | None = None
) -> Scored:
    """Grade the warehouse's snapshot at ``as_of``; the rows to the warehouse and to ``out``.

    ``workers`` grading processes (default: one per core); the rows are the same for any number.
    """
    from scoring.data.ingest import connect
    from scoring.features.build import load_snapshot

    models = champions(settings)
    with connect(settings.warehouse_path, memory_limit=settings.duckdb_memory_limit) as con:
        frame = load_snapshot(con, catalog, as_of=as_of)
        graded = _graded(models, catalog, frame, workers=workers or os.cpu_count() or 1)
        _store(con, graded, as_of, build_versions(models))
    target = out / SCORES_TABLE / f"as_of={as_of}"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    pq.write_table(pa.Table.from_pandas(graded.drop(columns="as_of"), preserve_index=False), target / "part-0.parquet")
    return Scored(as_of=as_of, rows=len(graded), path=target, versions=models.versions())


# ---------------------------------------------------------------- Spark


def score_on_spark(
    spark: Any, models: ModelSet, catalog: Catalog, *, snapshots: Path, out: Path, as_of: dt.date
) -> int:
    """Grade the Spark-written snapshot at ``as_of`` in the tasks; the rows to ``out``/scores."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    frame = spark.read.parquet(str(snapshots)).where(F.col("as_of") == F.lit(as_of))
    sample = frame.limit(1).toPandas()
    if sample.empty:
        raise ValueError(f"no snapshot at {as_of} in {snapshots}: run `scoring features --engine spark` first")
    schema = pa.Schema.from_pandas(grade_frame(models, catalog, sample), preserve_index=False)
    payload = spark.sparkContext.broadcast(payload_of(models))

    def grade(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        local = rebuilt(payload.value)  # once per task: the boosters from their model strings
        for batch in batches:
            if batch.num_rows:
                graded = grade_frame(local, catalog, batch.to_pandas())
                yield pa.RecordBatch.from_pandas(graded, schema=schema, preserve_index=False)

    graded = frame.mapInArrow(grade, from_arrow_schema(schema))
    target = out / SCORES_TABLE
    graded.write.mode("overwrite").option("partitionOverwriteMode", "dynamic").partitionBy("as_of").parquet(str(target))
    return int(spark.read.parquet(str(target)).where(F.col("as_of") == F.lit(as_of)).count())
