"""Benchmark: the DuckDB snapshot build of two source trees side by side (before and after a change).

Each repetition builds, in a fresh Python per tree and in alternating order, the whole catalog at
one as-of date and at ``--months`` month starts into a copy of the warehouse (a cold build: the
stored snapshots dropped first). Reports the median build time, the ratio after/before and peak RSS.

    git archive <commit> src | tar -x -C /tmp/before
    .venv/bin/python benchmarks/plan_duckdb.py --warehouse /tmp/county/var/warehouse.duckdb \\
        --before /tmp/before/src --reps 5 --write
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from pathlib import Path

from common import REPO, publish, run

SECTION = "## Features: the DuckDB build before and after the engine-neutral plan"

BUILD = """
import json, sys, time
from pathlib import Path
import pandas as pd
from scoring.data.ingest import connect, extract_date_of
from scoring.features.build import store_snapshots
from scoring.features.catalog import load_catalog
catalog = load_catalog(Path("features/catalog.yaml"))
con = connect(Path(sys.argv[1]))
con.execute("DROP TABLE IF EXISTS feature_snapshots")
con.execute("DROP TABLE IF EXISTS snapshot_builds")
latest = pd.Timestamp(extract_date_of(con)).to_period("M").to_timestamp()
dates = [(latest - pd.DateOffset(months=k)).date() for k in range(int(sys.argv[2]))]
started = time.perf_counter()
rows = store_snapshots(con, catalog, as_of_dates=dates)
import scoring
print(json.dumps({"rows": rows, "seconds": time.perf_counter() - started, "package": scoring.__file__}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--before", type=Path, required=True, help="the src/ folder of the earlier tree")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--write", action="store_true", help="write the section of docs/benchmarks.md")
    args = parser.parse_args()
    trees = {"before": args.before.resolve(), "after": REPO / "src"}
    results: dict[tuple[str, int], list[tuple[float, float, int]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.reps):
            for name in list(trees) if rep % 2 == 0 else list(trees)[::-1]:
                for months in (1, args.months):
                    copy = Path(tmp) / "warehouse.duckdb"
                    shutil.copy(args.warehouse, copy)
                    out, _, rss = run(BUILD, str(copy), str(months), env={"PYTHONPATH": str(trees[name])})
                    assert out["package"].startswith(str(trees[name])), out["package"]
                    results.setdefault((name, months), []).append((out["seconds"], rss, out["rows"]))
                    print(name, months, f"{out['seconds']:.2f}s", f"{rss:.2f} GiB", flush=True)
    lines = [
        SECTION,
        "",
        f"Command: `.venv/bin/python benchmarks/plan_duckdb.py --warehouse {args.warehouse} --before "
        f"{args.before} --reps {args.reps} --months {args.months} --write` (`before`: the tree before the "
        "plan, from `git archive <commit> src`). Each build in a fresh Python, the two trees alternating.",
        "",
        "| snapshots | enterprise-snapshots | before: median build | after: median build | after / before | peak RSS before | peak RSS after |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for months in (1, args.months):
        b, a = results[("before", months)], results[("after", months)]
        assert {r[2] for r in b} == {r[2] for r in a}, "the two trees built different row counts"
        mb, ma = statistics.median(r[0] for r in b), statistics.median(r[0] for r in a)
        lines.append(
            f"| {months} | {b[0][2]:,} | {mb:.2f} s | {ma:.2f} s | {ma / mb:.2f} | "
            f"{max(r[1] for r in b):.2f} GiB | {max(r[1] for r in a):.2f} GiB |"
        )
    publish(SECTION, lines, write=args.write)


if __name__ == "__main__":
    main()
