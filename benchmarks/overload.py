"""Overload side by side for several admission limits: ``scoring serve --workers 2`` with each
``SCORING_MAX_IN_FLIGHT``, under 512 connections of clients that wait the Retry-After after a 503 and
of clients that send again at once (the overload part of serve.py, one limit after another in one run).

    .venv/bin/python benchmarks/overload.py --home . --limits 48,40,32
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from serve import ours  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--limits", default="48,40,32")
    parser.add_argument("--connections", type=int, default=512)
    args = parser.parse_args()
    store = Path(tempfile.mkdtemp(prefix="bench-store-"))
    try:
        for limit in (int(x) for x in args.limits.split(",")):
            out = ours(
                args.home.resolve(),
                f"sqlite:///{store / f'decisions-{limit}.db'}",
                seconds=5,
                connections=64,
                light=0,
                overload=args.connections,
                workers=2,
                enterprises=2000,
                seed=7,
                env={"SCORING_MAX_IN_FLIGHT": str(limit)},
            )
            for name in ("overload_retry", "overload"):
                ov = out[name]
                print(
                    json.dumps(
                        {
                            "limit": limit,
                            "clients": name,
                            "answers": ov["requests"],
                            "refused": ov["status"],
                            "admitted": ov["admitted"],
                            "within_100ms": ov["admitted_within_100ms"] / (ov["admitted"] or 1),
                            "p50_ms": ov["p50_ms"],
                            "p99_ms": ov["p99_ms"],
                            "peak_rss_gib": ov["peak_rss_gib"],
                        }
                    ),
                    flush=True,
                )
    finally:
        shutil.rmtree(store, ignore_errors=True)


if __name__ == "__main__":
    main()
