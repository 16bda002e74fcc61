"""Benchmark: point-in-time feature snapshots on the city warehouse, and DuckDB against pandas.

Needs the warehouse that benchmarks/data_city.py builds (default /tmp/city/warehouse.duckdb). Steps,
each in its own process so that its peak RSS is its own:

1. the whole catalog at the latest as-of date, stored in the warehouse (what `scoring features` does);
2. the whole catalog at the 12 latest month starts in one pass (what training does);
3. a representative subset of the catalog (benchmarks/pandas_features.py names it) on a slice of
   100,000 enterprises, by the SQL pipeline and by a direct pandas implementation, side by side;
   the two results must agree before any time is reported.

    .venv/bin/python benchmarks/features_city.py --warehouse /tmp/city/warehouse.duckdb --write
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

from common import run, write_section
from pandas_features import FEATURES

from scoring.features.build import ROWS_PER_PASS

SECTION = "## Features: point-in-time snapshots of a city"

SNAPSHOTS = """
import json, sys, time
from pathlib import Path
import pandas as pd
from scoring.data.ingest import connect, extract_date_of
from scoring.features.build import store_snapshots
from scoring.features.catalog import load_catalog
catalog = load_catalog(Path("features/catalog.yaml"))
con = connect(Path(sys.argv[1]), memory_limit=sys.argv[2])
con.execute("DROP TABLE IF EXISTS feature_snapshots")  # a cold build, not a replacement of earlier rows
con.execute("DROP TABLE IF EXISTS snapshot_builds")
latest = pd.Timestamp(extract_date_of(con)).to_period("M").to_timestamp()
dates = [(latest - pd.DateOffset(months=k)).date() for k in range(int(sys.argv[3]))]
started = time.perf_counter()
rows = store_snapshots(con, catalog, as_of_dates=dates)
print(json.dumps({"rows": rows, "seconds": time.perf_counter() - started, "features": len(catalog.features),
                  "first": str(min(dates)), "last": str(max(dates))}))
"""

# The slice: the first enterprises in hash order, with their records (the subset's tables only).
SLICE = """
import json, sys
from pathlib import Path
from scoring.data.ingest import connect
sys.path.insert(0, "benchmarks")
from pandas_features import COLUMNS
target = Path(sys.argv[2])
target.unlink(missing_ok=True)
con = connect(target)
con.execute(f"ATTACH '{sys.argv[1]}' AS city (READ_ONLY)")
con.execute(f"CREATE TABLE chosen AS SELECT uscc FROM city.enterprises ORDER BY hash(uscc) LIMIT {int(sys.argv[3])}")
rows = 0
for table in COLUMNS:
    con.execute(f"CREATE TABLE {table} AS SELECT * FROM city.{table} WHERE uscc IN (SELECT uscc FROM chosen)")
    rows += con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
print(json.dumps({"rows": rows}))
"""

DUCKDB_SUBSET = """
import json, sys, time
from pathlib import Path
import datetime as dt
from scoring.data.ingest import connect
from scoring.features.build import feature_sql
from scoring.features.catalog import Catalog, load_catalog
sys.path.insert(0, "benchmarks")
from pandas_features import FEATURES
catalog = load_catalog(Path("features/catalog.yaml"))
# the same definitions, fewer of them (model_construct: templates may name features left out)
subset = Catalog.model_construct(**{**dict(catalog), "features": [catalog.feature(n) for n in FEATURES]})
con = connect(Path(sys.argv[1]), read_only=True, memory_limit=sys.argv[2])
started = time.perf_counter()
frame = con.execute(feature_sql(subset, dt.date.fromisoformat(sys.argv[3]))).df()
seconds = time.perf_counter() - started
frame.drop(columns="as_of").set_index("uscc").to_parquet(sys.argv[4])
print(json.dumps({"rows": len(frame), "seconds": seconds}))
"""

PANDAS_SUBSET = """
import json, sys, time
from pathlib import Path
import pandas as pd
from scoring.data.ingest import connect
sys.path.insert(0, "benchmarks")
import pandas_features
con = connect(Path(sys.argv[1]), read_only=True)
started = time.perf_counter()
tables = {t: con.execute(f"SELECT {', '.join(c)} FROM {t}").df() for t, c in pandas_features.COLUMNS.items()}
loaded = time.perf_counter()
frame = pandas_features.features(tables, pd.Timestamp(sys.argv[3]))
done = time.perf_counter()
frame.to_parquet(sys.argv[4])
print(json.dumps({"rows": len(frame), "load_seconds": loaded - started, "seconds": done - loaded}))
"""

COMPARE = """
import json, sys
import numpy as np
import pandas as pd
a, b = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
b = b.reindex(index=a.index, columns=a.columns)
assert a.index.equals(b.index), "the two implementations describe different enterprises"
worst = {}
for c in a.columns:
    x, y = a[c].to_numpy(float), b[c].to_numpy(float)
    same = np.isclose(x, y, rtol=1e-9, atol=1e-9) | (np.isnan(x) & np.isnan(y))
    worst[c] = int((~same).sum())
print(json.dumps({"mismatches": worst}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--warehouse", type=Path, default=Path("/tmp/city/warehouse.duckdb"))
    parser.add_argument("--slice", type=int, default=100_000, help="enterprises in the side-by-side slice")
    parser.add_argument("--months", type=int, default=12, help="monthly snapshots built in one pass")
    parser.add_argument("--memory-limit", default="6GB")
    parser.add_argument("--write", action="store_true", help="replace the section in docs/benchmarks.md")
    args = parser.parse_args()
    if not args.warehouse.exists():
        raise SystemExit(f"{args.warehouse}: no warehouse; build it with benchmarks/data_city.py first")
    work = args.warehouse.parent
    wh, limit = str(args.warehouse), args.memory_limit

    one, one_s, one_rss = run(SNAPSHOTS, wh, limit, "1")
    many, many_s, many_rss = run(SNAPSHOTS, wh, limit, str(args.months))
    as_of = one["last"]
    slice_path = work / f"slice{args.slice}.duckdb"
    cut, _, _ = run(SLICE, wh, str(slice_path), str(args.slice))
    duck_out, pandas_out, city_out = (work / f"{n}.parquet" for n in ("duckdb", "pandas", "duckdb_city"))
    duck, _, duck_rss = run(DUCKDB_SUBSET, str(slice_path), limit, as_of, str(duck_out))
    pan, _, pan_rss = run(PANDAS_SUBSET, str(slice_path), limit, as_of, str(pandas_out))
    check, _, _ = run(COMPARE, str(duck_out), str(pandas_out))
    wrong = {k: v for k, v in check["mismatches"].items() if v}
    if wrong:
        raise SystemExit(f"pandas and DuckDB disagree (enterprises per feature): {wrong}")
    city, _, city_rss = run(DUCKDB_SUBSET, wh, limit, as_of, str(city_out))

    def per_row(seconds: float, rows: int) -> float:
        return seconds / rows * 1e6  # microseconds

    pandas_total = pan["load_seconds"] + pan["seconds"]
    command = (
        f".venv/bin/python benchmarks/features_city.py --warehouse {args.warehouse} --slice {args.slice} "
        f"--months {args.months} --memory-limit {limit}" + (" --write" if args.write else "")
    )
    text = f"""{SECTION}

Command: `{command}` (on the city that the data benchmark above builds).
Machine: {os.cpu_count()} cores, Python {platform.python_version()}, DuckDB memory limit {limit}.

| step | enterprise-snapshots | build time | per row | step wall time | peak RSS |
|---|---:|---:|---:|---:|---:|
| whole catalog ({one["features"]} features), as of {as_of}, stored | {one["rows"]:,} | {one["seconds"]:,.0f} s | {per_row(one["seconds"], one["rows"]):.1f} µs | {one_s:,.0f} s | {one_rss:.2f} GiB |
| whole catalog, {args.months} month starts {many["first"]} to {many["last"]}, {ROWS_PER_PASS:,} enterprise-snapshots per SQL pass, stored | {many["rows"]:,} | {many["seconds"]:,.0f} s | {per_row(many["seconds"], many["rows"]):.1f} µs | {many_s:,.0f} s | {many_rss:.2f} GiB |

Targets (issue 4): one snapshot ≤ 3 min, {args.months} monthly snapshots ≤ 15 min, peak RSS ≤ 8 GB.
Build time is the `store_snapshots` call; the step's wall time adds starting Python and opening the warehouse.

Side by side: {len(FEATURES)} features of the catalog (penalty counts, amounts and recency with repairs and
objections, list status, tax level, growth, volatility and punctuality, electricity use, utility payment
ratio, headcount level and change, a peer percentile: benchmarks/pandas_features.py) as of {as_of}, on a
slice of {args.slice:,} enterprises ({cut["rows"]:,} records). Both results agree on every value of every
enterprise (checked in the run: 0 mismatches).

| implementation | enterprises | compute time | per row | peak RSS |
|---|---:|---:|---:|---:|
| DuckDB SQL from the catalog (reads the tables itself) | {duck["rows"]:,} | {duck["seconds"]:.2f} s | {per_row(duck["seconds"], duck["rows"]):.1f} µs | {duck_rss:.2f} GiB |
| pandas, vectorised (tables already in memory; loading took {pan["load_seconds"]:.2f} s more) | {pan["rows"]:,} | {pan["seconds"]:.2f} s | {per_row(pan["seconds"], pan["rows"]):.1f} µs | {pan_rss:.2f} GiB |
| DuckDB SQL, same subset, the whole city | {city["rows"]:,} | {city["seconds"]:.2f} s | {per_row(city["seconds"], city["rows"]):.1f} µs | {city_rss:.2f} GiB |

Ratio per row, pandas / DuckDB on the same slice: **{pan["seconds"] / duck["seconds"]:.1f}×** counting pandas'
computation only, {pandas_total / duck["seconds"]:.1f}× counting its loading too. Against DuckDB on the whole city:
{per_row(pan["seconds"], pan["rows"]) / per_row(city["seconds"], city["rows"]):.1f}× per row. Target (issue 4): ≥ 10× per row.
"""
    print(text)
    if args.write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
