"""Benchmark: the same catalog and champions on DuckDB and on Spark, side by side in one run.

Steps, each in a fresh Python (its process tree's peak memory sampled: a Spark master, two workers
and their executors are processes of their own):

1. one snapshot and ``--months`` monthly snapshots on DuckDB (a copy of the warehouse, cold);
2. the same on Spark (a standalone master and two workers of one core each on 127.0.0.1, started
   in the step; the time to start them is reported apart), from the lake of ``scoring export``;
3. batch scoring of every enterprise of the latest snapshot with every SHAP value, on both engines
   (run after the single snapshot of step 1 and 2, which it grades).

The champions are read from ``--home`` (its MLflow and catalog), the records from ``--warehouse``
and ``--lake``; a county's champion can grade a city (the same catalog).

    .venv/bin/python benchmarks/engines.py --home /tmp/county --warehouse /tmp/county/var/warehouse.duckdb \\
        --lake /tmp/county/var/lake --months 12 --write
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
from pathlib import Path

from common import publish, run

SECTION = "## Spark and DuckDB side by side: snapshots and batch scoring"

FEATURES = """
import json, sys, time, datetime as dt
from pathlib import Path
import pandas as pd
from scoring.features.catalog import load_catalog
catalog = load_catalog(Path(sys.argv[1]) / "features" / "catalog.yaml")
engine, source, out, n, memory = sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
latest = pd.Timestamp(json.loads((Path(sys.argv[7]) / "_lake.json").read_text())["extract_date"]).to_period("M").to_timestamp()
dates = [(latest - pd.DateOffset(months=k)).date() for k in range(n)]
if engine == "duckdb":
    from scoring.data.ingest import connect
    from scoring.features.build import store_snapshots
    con = connect(source, memory_limit=memory)
    con.execute("DROP TABLE IF EXISTS feature_snapshots"); con.execute("DROP TABLE IF EXISTS snapshot_builds")
    started = time.perf_counter()
    rows = store_snapshots(con, catalog, as_of_dates=dates)
    print(json.dumps({"rows": rows, "seconds": time.perf_counter() - started, "start": 0.0}))
else:
    from scoring.features.on_spark import spark_snapshots
    from scoring.features.spark import session, start_cluster
    began = time.perf_counter()
    with start_cluster(out / "cluster", workers=2, cores=1, memory=memory) as cluster:
        spark = session(cluster.master_url, executor_memory=memory, driver_memory="2g")
        start = time.perf_counter() - began
        started = time.perf_counter()
        rows = spark_snapshots(spark, catalog, lake=source, out=out, as_of_dates=dates)
        seconds = time.perf_counter() - started
        spark.stop()
    print(json.dumps({"rows": rows, "seconds": seconds, "start": start}))
"""

SCORE = """
import json, os, sys, time, datetime as dt
from pathlib import Path
os.environ["SCORING_HOME"] = sys.argv[1]
from scoring.settings import Settings
from scoring.features.catalog import load_catalog
from scoring.batch.run import champions, score_on_duckdb, score_on_spark
engine, warehouse, out, as_of, memory = sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), dt.date.fromisoformat(sys.argv[5]), sys.argv[6]
settings = Settings(warehouse=warehouse, var_dir=out)
catalog = load_catalog(settings.catalog_path)
if engine == "duckdb":
    started = time.perf_counter()
    rows = score_on_duckdb(settings, catalog, as_of=as_of, out=out).rows
    print(json.dumps({"rows": rows, "seconds": time.perf_counter() - started, "start": 0.0}))
else:
    from scoring.features.spark import session, start_cluster
    models = champions(settings)
    began = time.perf_counter()
    with start_cluster(out / "cluster", workers=2, cores=1, memory=memory) as cluster:
        spark = session(cluster.master_url, executor_memory=memory, driver_memory="2g")
        start = time.perf_counter() - began
        started = time.perf_counter()
        rows = score_on_spark(spark, models, catalog, snapshots=Path(sys.argv[7]), out=out, as_of=as_of)
        seconds = time.perf_counter() - started
        spark.stop()
    print(json.dumps({"rows": rows, "seconds": seconds, "start": start}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="a home with champions (its MLflow, its catalog)")
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--lake", type=Path, required=True, help="what `scoring export` wrote from the warehouse")
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--memory", default="4g", help="DuckDB's memory limit; each Spark worker's memory")
    parser.add_argument(
        "--steps",
        choices=("all", "snapshots", "months"),
        default="all",
        help="snapshots: only the 1 and --months snapshots (no batch scoring); months: only the --months snapshots",
    )
    parser.add_argument(
        "--engines", default="duckdb,spark", help="the engines whose snapshots to build (batch scoring runs on both)"
    )
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    engines = [e for e in ("duckdb", "spark") if e in args.engines.split(",")]
    rows_out = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        copy = work / "warehouse.duckdb"
        spark_out = work / "spark"

        def features(n: int) -> None:
            for engine in engines:
                if engine == "duckdb":
                    shutil.copy(args.warehouse, copy)
                source = copy if engine == "duckdb" else args.lake
                tree: dict[str, float] = {}
                memory = args.memory.upper() + "B" if engine == "duckdb" else args.memory
                out, _, _ = run(
                    FEATURES,
                    str(args.home),
                    engine,
                    str(source),
                    str(spark_out),
                    str(n),
                    memory,
                    str(args.lake),
                    tree=tree,
                )
                rows_out.append((f"{n} snapshot{'s' if n > 1 else ''}", engine, out, tree["gib"]))
                print(rows_out[-1], flush=True)

        if args.steps != "months":
            features(1)  # the latest snapshot, which the scoring below grades on either engine
        latest = json.loads((args.lake / "_lake.json").read_text())["extract_date"]
        as_of = latest[:8] + "01"
        for engine in ("duckdb", "spark") if args.steps == "all" else ():
            tree = {}
            out, _, _ = run(
                SCORE,
                str(args.home),
                engine,
                str(copy),
                str(work / f"scores-{engine}"),
                as_of,
                args.memory,
                str(spark_out / "feature_snapshots"),
                tree=tree,
            )
            rows_out.append(("batch scoring, every SHAP value", engine, out, tree["gib"]))
            print(rows_out[-1], flush=True)
        if args.months > 1:
            features(args.months)
    lines = [
        SECTION,
        "",
        f"Command: `.venv/bin/python benchmarks/engines.py --home {args.home} --warehouse {args.warehouse} "
        f"--lake {args.lake} --months {args.months} --memory {args.memory} --steps {args.steps} "
        f"--engines {','.join(engines)} --write`.",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}. DuckDB with its default threads "
        f"(one per core) and a {args.memory.upper()}B memory limit; Spark standalone, two workers of one core and "
        f"{args.memory} each, on the same machine. Peak memory is the step's whole process tree.",
        "",
        "| step | engine | rows | time | rows per second per core | Spark / DuckDB | cluster start | peak memory |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    by_step: dict[str, dict[str, float]] = {}
    for step, engine, out, _ in rows_out:
        by_step.setdefault(step, {})[engine] = out["seconds"]
    for step, engine, out, gib in rows_out:
        spark = engine == "spark"
        both = len(by_step[step]) == 2
        ratio = f"{by_step[step]['spark'] / by_step[step]['duckdb']:.1f}×" if spark and both else ""
        start = f"{out['start']:.0f} s" if spark else ""
        per_core = out["rows"] / out["seconds"] / 2
        lines.append(
            f"| {step} | {engine} | {out['rows']:,} | {out['seconds']:.1f} s | {per_core:,.0f} | {ratio} | {start} | "
            f"{gib:.2f} GiB |"
        )
    publish(SECTION, lines, write=args.write)


if __name__ == "__main__":
    main()
