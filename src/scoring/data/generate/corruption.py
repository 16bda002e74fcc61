"""Errors injected into the generated record tables, the way real exchange files are corrupted."""

from __future__ import annotations

import numpy as np

from scoring.data import schema
from scoring.data.uscc import make_uscc


def corrupt(
    name: str,
    data: dict[str, np.ndarray],
    *,
    rng: np.random.Generator,
    rate: float,
    extract_date: np.datetime64,
    corrupted: set[str],
    injected: dict[str, dict[str, int]],
) -> None:
    """Corrupt record table ``name`` of one chunk in place; add what was done to ``injected``.

    ``corrupted`` collects the keys of the chunk's corrupted penalties and list entries, so that
    the objections about them, which then point at nothing, are counted as dangling references.
    """
    table = schema.TABLES[name]
    if name == "objections":  # an objection about a corrupted record points at nothing
        dangling = int(np.isin(data["record_id"], list(corrupted)).sum())
        if dangling:
            injected.setdefault(name, {}).setdefault("dangling_reference", 0)
            injected[name]["dangling_reference"] += dangling
    counts, hit = inject_errors(table, data, rng, rate, extract_date)
    for kind, k in counts.items():
        injected.setdefault(name, {}).setdefault(kind, 0)
        injected[name][kind] += k
    if name in ("penalties", "serious_dishonesty_list"):
        corrupted.update(data[table.key[0]][hit].tolist())


def inject_errors(
    table: schema.Table, data: dict[str, np.ndarray], rng: np.random.Generator, rate: float, extract_date: np.datetime64
) -> tuple[dict[str, int], np.ndarray]:
    """Corrupt a few rows the way real exchange files are corrupted: (how many of each kind, their rows).

    Ingestion must quarantine every one of them, so the manifest records the counts.
    """
    n = len(data["uscc"])
    hit = np.flatnonzero(rng.random(n) < rate)
    kinds = rng.integers(0, 4, hit.size)
    amount_cols = [c.name for c in table.columns if c.non_negative and c.dtype == "DOUBLE"]
    counts = {"bad_uscc": 0, "unknown_enterprise": 0, "negative_amount": 0, "impossible_date": 0}
    uscc = data["uscc"]
    for row, kind in zip(hit.tolist(), kinds.tolist(), strict=True):
        if kind == 0:
            pos = int(rng.integers(0, 18))
            uscc[row] = uscc[row][:pos] + "O" + uscc[row][pos + 1 :]  # 'O' is never allowed
            counts["bad_uscc"] += 1
        elif kind == 1:
            body = f"{int(rng.integers(0, 10**8)):08d}"
            uscc[row] = make_uscc(authority="9", entity_type="1", division="110105", org_body=body)
            counts["unknown_enterprise"] += 1
        elif kind == 2 and amount_cols:
            col = amount_cols[int(rng.integers(0, len(amount_cols)))]
            data[col][row] = -abs(data[col][row]) - 1.0
            counts["negative_amount"] += 1
        elif table.date_column:
            data[table.date_column][row] = extract_date + int(rng.integers(200, 2000))
            counts["impossible_date"] += 1
    return {k: v for k, v in counts.items() if v}, hit
