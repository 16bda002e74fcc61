"""Benchmark: two homes' credit evaluation champions on the same test enterprises, paired.

Each home is trained on a copy of the same warehouse with a variant of the catalog or the spec
(`SCORING_HOME=<home> scoring train --model credit_evaluation`). This scores the test snapshot of
each home with its own champion and gives the AUC change with a paired bootstrap interval over the
test enterprises, beside the as-of oracle. From any folder:

    .venv/bin/python benchmarks/compare_homes.py --base /tmp/before --new /tmp/after
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import pandas as pd
from common import run
from sklearn.metrics import roc_auc_score

# one process per home: MLflow's tracking URI and model cache are process-wide
SCORE = """
import json, sys
from pathlib import Path
from scoring.data.ingest import connect
from scoring.features.catalog import load_catalog
from scoring.registry.versions import configure, load_version, resolve_alias
from scoring.settings import Settings
from scoring.training.rows import evaluation_frame
import datetime as dt
settings = Settings(home=Path(sys.argv[1]))
configure(settings)
model = load_version("credit_evaluation", resolve_alias("credit_evaluation", "champion"), alias="champion")
test_as_of = dt.date.fromisoformat(model.scorer.config.lineage["test_as_of"])
with connect(settings.warehouse_path) as con:
    frame = evaluation_frame(con, load_catalog(settings.catalog_path), test_as_of)
frame["logit"] = model.scorer.logit(model.scorer.matrix(frame))
frame[["uscc", "adverse", "p_asof", "logit"]].to_parquet(sys.argv[2])
print(json.dumps({"version": model.version, "test_as_of": str(test_as_of)}))
"""


def paired_auc(y: np.ndarray, base: np.ndarray, new: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """AUC(new) - AUC(base) on bootstrap resamples of the enterprises."""
    rng = np.random.default_rng(seed)
    out = np.empty(resamples)
    for k in range(resamples):
        i = rng.integers(0, len(y), len(y))
        out[k] = roc_auc_score(y[i], new[i]) - roc_auc_score(y[i], base[i])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--new", type=Path, required=True)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    frames = {}
    with tempfile.TemporaryDirectory() as tmp:
        for side in ("base", "new"):
            out = Path(tmp) / f"{side}.parquet"
            meta, _, _ = run(SCORE, str(getattr(args, side).resolve()), str(out))
            frames[side] = pd.read_parquet(out).set_index("uscc")
            print(f"{side}: {getattr(args, side)} champion v{meta['version']}, test as of {meta['test_as_of']}")
    base, new = frames["base"], frames["new"].reindex(frames["base"].index)
    if new["logit"].isna().any() or not (base["adverse"] == new["adverse"]).all():
        raise SystemExit("the two homes' test snapshots differ: train both on copies of one warehouse")
    y = base["adverse"].to_numpy().astype(int)
    diff = paired_auc(y, base["logit"].to_numpy(), new["logit"].to_numpy(), args.resamples, seed=0)
    oracle = roc_auc_score(y, base["p_asof"])
    a, b = roc_auc_score(y, base["logit"]), roc_auc_score(y, new["logit"])
    print(
        json.dumps(
            {
                "test_rows": len(y),
                "base_auc": round(a, 4),
                "new_auc": round(b, 4),
                "change": round(b - a, 4),
                "change_95": [round(float(np.percentile(diff, q)), 4) for q in (2.5, 97.5)],
                "asof_oracle_auc": round(oracle, 4),
                "base_over_asof_oracle": round(a / oracle, 4),
                "new_over_asof_oracle": round(b / oracle, 4),
            }
        )
    )


if __name__ == "__main__":
    main()
