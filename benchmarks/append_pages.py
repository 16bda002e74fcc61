"""What one audit commit writes to SQLite's log on a store that already holds many decisions, with
random decision ids (UUID version 4) and with time-ordered ones (version 7), side by side in one run.

The pages a commit adds to the write-ahead log are counted (from the log's size, checkpoints only
between measurements), so the figure does not depend on the machine's noise; the commit's time is
reported beside it. Each decision carries a payload of 24,000 characters, the size of a pre-credit
decision's record (25 KB with three models' SHAP values and the inputs), and one of 2,000 enterprises.

    .venv/bin/python benchmarks/append_pages.py --decisions 100000
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from scoring.store import Event, Role, append, create_key, engine_for, time_ordered_id

FRAME = 4096 + 24  # a log frame: a page and its header


def measure(ids: str, decisions: int, batch: int, commits: int, seed: int) -> dict:
    """Grow a new store to ``decisions``, then ``commits`` commits of ``batch`` decisions each."""
    folder = Path(tempfile.mkdtemp(prefix="bench-append-"))
    try:
        path = folder / "decisions.db"
        engine = engine_for(f"sqlite:///{path}", background_checkpoints=True)
        _, key = create_key(engine, role=Role.BANK, bank_id="B1", label="benchmark")
        rng = random.Random(seed)
        usccs = [f"91110000{i:010d}" for i in range(2000)]
        record = {
            "name": "企业",
            "evaluation": {"grade": "B", "score": 700, "model": {"name": "m", "version": 1}},
            "pre_credit": {"pre_credit_limit": 100_000.0, "decision_zh": "预授信"},
            "pad": "y" * 24_000,
        }

        def events(n: int) -> list[Event]:
            made = (time_ordered_id() if ids == "v7" else str(uuid.uuid4()) for _ in range(n))
            return [Event("pre_credit", record, key=key, uscc=rng.choice(usccs), event_id=e) for e in made]

        def checkpoint() -> None:
            with engine.connect() as con:
                con.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

        for i in range(decisions // 500):
            append(engine, events(500))
            if i % 20 == 19:
                checkpoint()
        checkpoint()
        log, pages, ms = Path(f"{path}-wal"), [], []
        for i in range(commits):
            before = log.stat().st_size if log.exists() else 0
            t0 = time.perf_counter()
            append(engine, events(batch))
            ms.append((time.perf_counter() - t0) * 1000)
            pages.append((log.stat().st_size - before) / FRAME)
            if i % 50 == 49:
                checkpoint()
        engine.dispose()
        return {"ids": ids, "pages": statistics.median(pages), "ms": statistics.median(ms)}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--commits", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(f"store of {args.decisions:,} decisions, commits of {args.batch} (medians of {args.commits}):")
    for ids in ("v4", "v7"):
        r = measure(ids, args.decisions, args.batch, args.commits, args.seed)
        print(
            f"  ids {ids}: {r['pages']:.0f} log pages a commit ({r['pages'] / args.batch:.1f} a decision), {r['ms']:.2f} ms"
        )


if __name__ == "__main__":
    main()
