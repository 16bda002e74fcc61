"""Benchmark: generate and ingest a prefecture city (default 1,000,000 enterprises x 36 months).

Each step runs in its own process so that its peak RSS is its own. Usage:

    .venv/bin/python benchmarks/data_city.py --enterprises 1000000 --months 36 --out /tmp/city

Prints a Markdown section; with --write it also replaces that section in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

from common import run, write_section

SECTION = "## Data: generate and ingest a city"

GENERATE = """
import json, sys
from pathlib import Path
from scoring.data.generate import GeneratorConfig, generate
m = generate(GeneratorConfig(enterprises=int(sys.argv[1]), months=int(sys.argv[2]), seed=7), Path(sys.argv[3]))
print(json.dumps({"rows": sum(m["rows"].values())}))
"""

INGEST = """
import json, sys
from pathlib import Path
from scoring.data.ingest import ingest
r = ingest([Path(sys.argv[1])], Path(sys.argv[2]), memory_limit=sys.argv[3])
print(json.dumps({"rows": r.rows_read, "quarantined": sum(t.quarantined for t in r.tables),
                  "inserted": sum(t.inserted for t in r.tables), "unchanged": sum(t.unchanged for t in r.tables)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--enterprises", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--out", type=Path, default=Path("/tmp/city"))
    parser.add_argument("--memory-limit", default="6GB")
    parser.add_argument("--write", action="store_true", help="replace the section in docs/benchmarks.md")
    args = parser.parse_args()
    raw, warehouse = args.out / "raw", args.out / "warehouse.duckdb"
    for stale in (warehouse, Path(str(warehouse) + ".wal")):
        stale.unlink(missing_ok=True)
    gen, gen_s, gen_rss = run(GENERATE, str(args.enterprises), str(args.months), str(raw))
    first, ing_s, ing_rss = run(INGEST, str(raw), str(warehouse), args.memory_limit)
    again, again_s, again_rss = run(INGEST, str(raw), str(warehouse), args.memory_limit)
    size = sum(p.stat().st_size for p in raw.glob("*.parquet")) / 1024**3
    command = (
        f".venv/bin/python benchmarks/data_city.py --enterprises {args.enterprises} --months {args.months} "
        f"--out {args.out} --memory-limit {args.memory_limit}" + (" --write" if args.write else "")
    )
    text = f"""{SECTION}

Command: `{command}`
Machine: {os.cpu_count()} cores, Python {platform.python_version()}, DuckDB memory limit {args.memory_limit}.

| step | rows | wall time | rows/s | peak RSS |
|---|---:|---:|---:|---:|
| generate {args.enterprises:,} enterprises x {args.months} months ({size:.2f} GiB of Parquet) | {gen["rows"]:,} | {gen_s:,.0f} s | {gen["rows"] / gen_s:,.0f} | {gen_rss:.2f} GiB |
| ingest into an empty warehouse ({first["inserted"]:,} inserted, {first["quarantined"]:,} quarantined) | {first["rows"]:,} | {ing_s:,.0f} s | {first["rows"] / ing_s:,.0f} | {ing_rss:.2f} GiB |
| ingest the same files again ({again["unchanged"]:,} unchanged, nothing duplicated) | {again["rows"]:,} | {again_s:,.0f} s | {again["rows"] / again_s:,.0f} | {again_rss:.2f} GiB |

Targets (issue 3): generation ≤ 10 min, ingestion ≥ 1,000,000 rows/s, peak RSS ≤ 8 GB.
"""
    print(text)
    if args.write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
