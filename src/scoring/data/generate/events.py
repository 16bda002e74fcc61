"""Event records of one chunk: everyday penalties, commitments, loans and the adverse credit events.

Adverse events are drawn month by month from the hazard alone; which kind an event takes depends
only on what the enterprise has at that moment (a loan, a pending commitment, tax records).
"""

from __future__ import annotations

import numpy as np

from scoring.data import schema
from scoring.data.generate.chunk import Chunk, index_by, poisson_draws
from scoring.data.generate.parameters import ADVERSE_KINDS, ADVERSE_WEIGHTS, BANKS


def draw_events(c: Chunk) -> None:
    """Everyday penalties, commitments and loans, then the adverse events and the records they leave."""
    _everyday_penalties(c)
    _commitments(c)
    _loans(c)
    _adverse_events(c)
    _adverse_records(c)


def _everyday_penalties(c: Chunk) -> None:
    """Light and general penalties: a Poisson rate rising with risk."""
    rng = c.rng
    pi, pm = poisson_draws(rng, np.exp(-4.7 + 1.0 * c.risk_t + 0.25 * (c.size <= 1)[:, None]) * c.alive)
    severity = np.where(rng.random(pi.size) < 0.6, "轻微", "一般")
    pen = {
        "i": pi,
        "month": pm,
        "severity": severity,
        "amount": np.where(severity == "轻微", 1, 8) * 1000 * (1 + rng.pareto(1.8, pi.size)),
    }
    c.penalty_parts = [pen]


def _commitments(c: Chunk) -> None:
    """Pledges with a resolution month; broken ones are adverse events (:func:`_adverse_events`)."""
    rng = c.rng
    lam_c = (0.03 * (1 + (c.size <= 2)))[:, None] * c.alive
    c_counts = rng.poisson(lam_c)
    ci, cm = np.nonzero(c_counts)
    c.commit = {
        "i": ci,
        "month": cm,
        "type": rng.choice(len(schema.COMMITMENT_TYPES), ci.size, p=[0.35, 0.3, 0.25, 0.1]),
        "resolve_month": cm + rng.integers(3, 13, ci.size),
        "broken_month": np.full(ci.size, -1),
    }


def loan_rate(c: Chunk) -> np.ndarray:
    """Enterprise x month rate of funded loans: riskier firms borrow a little less often."""
    return (0.03 * np.exp(-0.3 * c.risk) * (1 + (c.size <= 2)))[:, None] * c.alive


def _loans(c: Chunk) -> None:
    """Loans from the partner banks, at :func:`loan_rate` (at most one a month)."""
    rng = c.rng
    l_counts = np.minimum(rng.poisson(loan_rate(c)), 1)
    li, lm = np.nonzero(l_counts)
    term = rng.choice([6, 12, 12, 12, 24], li.size)
    c.loan = {
        "i": li,
        "month": lm,
        "term": term,
        "amount": np.round(np.maximum(5e4, c.sales[li, lm] * rng.uniform(0.5, 3.0, li.size)), -4),
        "bank": rng.integers(0, len(BANKS), li.size),
        "default_month": np.full(li.size, -1),
    }


def _adverse_events(c: Chunk) -> None:
    """Adverse events month by month from the hazard alone, each of a kind the enterprise can have then."""
    rng, n, m = c.rng, c.n, c.cfg.months
    events = (rng.random((n, m)) < c.hazard_t) & c.alive
    ei, em = np.nonzero(events)
    loans_by_firm = index_by(c.loan["i"])
    commits_by_firm = index_by(c.commit["i"])
    on_serious_until = np.full(n, -1)
    kinds = []
    for i, mo in zip(ei.tolist(), em.tolist(), strict=True):
        available = np.ones(len(ADVERSE_KINDS), dtype=bool)
        available[1] = on_serious_until[i] < mo
        available[3] = bool(c.tax_mask[i, mo])
        pending = [
            j
            for j in commits_by_firm.get(i, ())
            if c.commit["month"][j] < mo <= c.commit["resolve_month"][j] and c.commit["broken_month"][j] < 0
        ]
        available[4] = bool(pending)
        active = [
            k
            for k in loans_by_firm.get(i, ())
            if c.loan["month"][k] < mo < c.loan["month"][k] + c.loan["term"][k] and c.loan["default_month"][k] < 0
        ]
        available[5] = bool(active)
        w = ADVERSE_WEIGHTS * available
        kind = int(rng.choice(len(ADVERSE_KINDS), p=w / w.sum()))
        kinds.append(kind)
        if kind == 1:
            on_serious_until[i] = mo + 36
        elif kind == 4:
            c.commit["broken_month"][pending[0]] = mo
        elif kind == 5:
            c.loan["default_month"][active[0]] = mo
    c.events = {"i": ei, "month": em, "kind": np.array(kinds, dtype=int)}


def _adverse_records(c: Chunk) -> None:
    """What the adverse events leave: severe penalties, tax arrears past 90 days, list entries."""
    rng, m = c.rng, c.cfg.months
    ei, em, kinds_arr = c.events["i"], c.events["month"], c.events["kind"]
    sev = kinds_arr == 0
    si_, sm_ = ei[sev], em[sev]
    severity = np.where(rng.random(si_.size) < 0.7, "较重", "严重")
    c.penalty_parts.append(
        {
            "i": si_,
            "month": sm_,
            "severity": severity,
            "amount": np.where(severity == "较重", 5e4, 2e5) * (1 + rng.pareto(1.5, si_.size)),
        }
    )
    tax_ev = kinds_arr == 3
    ti, tm = ei[tax_ev], em[tax_ev]
    # the first month past 90 days; it stays unpaid one or two more months, then is cleared
    c.tax["arrears_days"][ti, tm] = rng.integers(91, 120, ti.size)
    c.tax["arrears"][ti, tm] = c.tax["due"][ti, tm] * rng.uniform(1.0, 3.0, ti.size)
    for extra in (1, 2):
        more = (tm + extra < m) & (rng.random(ti.size) < 0.6 / extra)
        ti2, tm2 = ti[more], tm[more] + extra
        c.tax["arrears_days"][ti2, tm2] = np.maximum(c.tax["arrears_days"][ti2, tm2 - 1] + 30, 121)
        c.tax["arrears"][ti2, tm2] = c.tax["arrears"][ti2, tm2 - 1]
    lists = (kinds_arr == 1) | (kinds_arr == 2)
    c.list_events = {"i": ei[lists], "month": em[lists], "serious": kinds_arr[lists] == 1}
