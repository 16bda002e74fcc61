"""Verifying the audit log: recompute the hash chain and check the decision index against it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from scoring.store.audit import _row_hash
from scoring.store.index import _index_row, _summary
from scoring.store.tables import GENESIS, audit_head, audit_log, decision_index


@dataclass
class ChainReport:
    rows: int
    head_seq: int
    problems: list[str]

    @property
    def intact(self) -> bool:
        return not self.problems


def _ordered(engine: sa.Engine, batch: int = 5000) -> Iterator[dict[str, Any]]:
    last = 0
    while True:
        with engine.connect() as con:
            rows = (
                con.execute(sa.select(audit_log).where(audit_log.c.seq > last).order_by(audit_log.c.seq).limit(batch))
                .mappings()
                .all()
            )
        if not rows:
            return
        yield from (dict(r) for r in rows)
        last = int(rows[-1]["seq"])


def verify_chain(engine: sa.Engine, *, max_problems: int = 50) -> ChainReport:
    """Recompute the chain: every row's hash, the links, the sequence and the head; and check that the
    decision index (what the console searches) says of each decision what its audit row says."""
    problems: list[str] = []
    prev, expected, n = GENESIS, 1, 0
    with engine.connect() as con:
        index = {r["event_id"]: dict(r) for r in con.execute(sa.select(decision_index)).mappings()}
    for row in _ordered(engine):
        n += 1
        seq = int(row["seq"])
        if seq != expected:
            problems.append(f"rows {expected}..{seq - 1} are missing (deleted)")
        if row["prev_hash"] != prev:
            problems.append(f"row {seq} ({row['event_id']}): does not link to the row before it")
        if _row_hash(row["prev_hash"], row) != row["hash"]:
            problems.append(f"row {seq} ({row['event_id']}): its content does not match its hash (changed)")
        summary = _summary(row["kind"], orjson.loads(row["payload"]))
        if summary is not None:
            entry = index.pop(row["event_id"], None)
            if entry is None:
                problems.append(f"row {seq} ({row['event_id']}): the decision index lacks it (search cannot find it)")
            elif entry != _index_row(row, summary):
                problems.append(f"row {seq} ({row['event_id']}): the decision index disagrees with it (changed)")
        prev, expected = row["hash"], seq + 1
        if len(problems) >= max_problems:
            break
    else:
        problems += [f"the decision index lists {e}, which the log does not hold" for e in list(index)[:max_problems]]
    with engine.connect() as con:
        head = con.execute(sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).one()
    if len(problems) < max_problems:
        if int(head.seq) != expected - 1:
            problems.append(f"the head says {head.seq} rows, the log ends at {expected - 1} (rows deleted at the end)")
        elif head.hash != prev:
            problems.append("the head's hash differs from the last row's")
    return ChainReport(rows=n, head_seq=int(head.seq), problems=problems)
