"""Credit applications (授信申请) of one chunk: the loans the banks made, the ones they declined, and
what each declined one would have done had it been funded.

Every funded loan has its approved application. Declined applications come on top: a bank screens
an application on what it can see of the enterprise, its latent risk plus a persistent noise of its
own view (due diligence the platform does not see), and declines with odds rising with that view,
so riskier enterprises are declined more often and reapply. Each declined application's
counterfactual outcome (``synthetic_declined_outcomes``) is drawn the generator's way: the
enterprise's adverse events are the ones it had (they come from ``hazard_t`` alone); an event in a
month when the hypothetical loan is running takes the kind ``loan_default`` with the odds that
ADVERSE_WEIGHTS give once a loan is available (see :func:`_counterfactual_default`).

Everything here is drawn after every other table, from streams of its own, so the other tables of
a county are the same with or without the applications.
"""

from __future__ import annotations

import numpy as np

from scoring.data.generate.chunk import Chunk, ids, index_by
from scoring.data.generate.events import loan_rate
from scoring.data.generate.parameters import ADVERSE_KINDS, ADVERSE_WEIGHTS, BANKS

# the tables drawn here; the writer corrupts them from ``error_stream``, never the shared one
TABLES = ("loan_applications", "synthetic_declined_outcomes")
_DRAW_STREAM, _ERROR_STREAM = 15, 16
# a bank's screen: decline odds exp(DECLINE_INTERCEPT + DECLINE_SLOPE * (risk + noise)), the noise
# persistent per enterprise with standard deviation SCREEN_NOISE
DECLINE_INTERCEPT = -1.2
DECLINE_SLOPE = 1.0
SCREEN_NOISE = 0.6
_LOAN_DEFAULT = ADVERSE_KINDS.index("loan_default")
_SERIOUS, _TAX, _COMMITMENT = 1, 3, 4  # kinds whose availability depends on the enterprise's state


def draw_stream(c: Chunk) -> np.random.Generator:
    """The chunk's own stream for the applications, apart from ``c.rng``."""
    return np.random.default_rng([c.cfg.seed, c.index, _DRAW_STREAM])


def error_stream(c: Chunk) -> np.random.Generator:
    """The chunk's own stream for the errors injected into the applications."""
    return np.random.default_rng([c.cfg.seed, c.index, _ERROR_STREAM])


def loan_applications(c: Chunk) -> None:
    """``loan_applications`` (授信申请: approved and declined) and ``synthetic_declined_outcomes``."""
    rng = draw_stream(c)
    approved = _approved(c, rng)
    declined = _declined(c, rng)
    default_month = _counterfactual_default(c, rng, declined)
    # the counterfactual 90+ days past due date, known only before the extraction date
    dpd90 = c.month_start[np.maximum(default_month, 0)] + rng.integers(0, 28, default_month.size)
    known = (default_month >= 0) & (dpd90 < c.extract_date)
    start = declined["decision_date"]
    window_end = (start.astype("datetime64[M]") + 12).astype("datetime64[D]") + (
        start - start.astype("datetime64[M]").astype("datetime64[D]")
    )
    parts = [approved, declined]
    table = {k: np.concatenate([p[k] for p in parts]) for k in approved if k != "i"}
    table["application_id"] = ids("SQ", c.index, len(table["uscc"]))
    c.tables["loan_applications"] = table
    c.tables["synthetic_declined_outcomes"] = {
        "application_id": table["application_id"][len(approved["uscc"]) :].copy(),
        "uscc": c.uscc[declined["i"]],
        "would_default_12m": known & (dpd90 < window_end),
        "would_dpd90_date": np.where(known, dpd90, np.datetime64("NaT")),
    }


def _approved(c: Chunk, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The application behind each funded loan: applied some days before the bank decided and lent."""
    loans, i = c.tables["loans"], c.loan["i"]
    k = i.size
    start = loans["start_date"]
    decision = np.maximum(start - rng.integers(0, 6, k), c.reg_date[i])
    return {
        "i": i,
        "uscc": c.uscc[i],
        "bank_id": loans["bank_id"].copy(),
        "applied_date": np.maximum(decision - rng.integers(1, 15, k), c.reg_date[i]),
        "requested_amount": np.round(loans["amount"] * rng.uniform(1.0, 1.3, k), -4),
        "requested_term_months": loans["term_months"].copy(),
        "decision": np.full(k, "批准", dtype=object),
        "decision_date": decision,
        "loan_id": loans["loan_id"].copy(),
    }


def _declined(c: Chunk, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Declined applications, at most one an enterprise a month, at the funded rate times the decline odds."""
    view = c.risk_t + rng.normal(0.0, SCREEN_NOISE, c.n)[:, None]
    odds = np.exp(DECLINE_INTERCEPT + DECLINE_SLOPE * view)
    i, month = np.nonzero(np.minimum(rng.poisson(loan_rate(c) * odds), 1))
    k = i.size
    decision = c.month_start[month] + rng.integers(0, 28, k)
    return {
        "i": i,
        "month": month,
        "uscc": c.uscc[i],
        "bank_id": np.array(BANKS, dtype=object)[rng.integers(0, len(BANKS), k)],
        "applied_date": np.maximum(decision - rng.integers(1, 15, k), c.reg_date[i]),
        "requested_amount": np.round(np.maximum(5e4, c.sales[i, month] * rng.uniform(0.5, 3.0, k)), -4),
        "requested_term_months": rng.choice([6, 12, 12, 12, 24], k).astype(np.int32),
        "decision": np.full(k, "拒绝", dtype=object),
        "decision_date": decision,
        "loan_id": np.full(k, None, dtype=object),
    }


def _counterfactual_default(c: Chunk, rng: np.random.Generator, declined: dict[str, np.ndarray]) -> np.ndarray:
    """The month each declined application's loan would have reached 90 days past due, or -1.

    The loan would have started in the decision month ``a`` and run in the months ``a < t < a +
    term``, like a funded one. The enterprise's events are the ones it had. At an event while a
    funded loan of its was running, a loan default was possible anyway: the kind is the one drawn,
    and a default falls on the first loan running (the hypothetical one if it started first). At an
    event with no loan running, the hypothetical loan adds ``loan_default`` to the kinds available
    then: it defaults with probability ``w_default / (w_available + w_default)``, else the event
    keeps the kind it had, which is the same distribution as drawing the kind afresh. Either way
    everything before the default is as it was, so the real history is the counterfactual one.
    """
    history = _History(c)
    out = np.full(declined["i"].size, -1)
    w_default = ADVERSE_WEIGHTS[_LOAN_DEFAULT]
    for k, (i, a, term) in enumerate(
        zip(declined["i"].tolist(), declined["month"].tolist(), declined["requested_term_months"].tolist(), strict=True)
    ):
        for t, kind in history.events.get(i, ()):
            if t <= a:
                continue
            if t >= a + term:
                break
            running = history.running_loans(i, t)
            if running:
                if kind == _LOAN_DEFAULT and a < running[0]:
                    out[k] = t
                    break
                continue
            if rng.random() < w_default / ((ADVERSE_WEIGHTS * history.available(i, t)).sum() + w_default):
                out[k] = t
                break
    return out


class _History:
    """What each enterprise of the chunk had, month by month, as the adverse events were drawn."""

    def __init__(self, c: Chunk) -> None:
        ev, lo, co = c.events, c.loan, c.commit
        self.events = {
            i: [(int(ev["month"][e]), int(ev["kind"][e])) for e in rows] for i, rows in index_by(ev["i"]).items()
        }
        # (start month, term, default month or -1) of the funded loans, oldest first
        self.loans = {
            i: [(int(lo["month"][j]), int(lo["term"][j]), int(lo["default_month"][j])) for j in rows]
            for i, rows in index_by(lo["i"]).items()
        }
        # (commit month, resolve month, broken month or -1)
        self.commitments = {
            i: [(int(co["month"][j]), int(co["resolve_month"][j]), int(co["broken_month"][j])) for j in rows]
            for i, rows in index_by(co["i"]).items()
        }
        self.tax_mask = c.tax_mask

    def running_loans(self, i: int, t: int) -> list[int]:
        """Start months of the funded loans running in month ``t``, not defaulted before it, oldest first."""
        return [m for m, term, d in self.loans.get(i, ()) if m < t < m + term and not 0 <= d < t]

    def available(self, i: int, t: int) -> np.ndarray:
        """The adverse kinds enterprise ``i`` could have had in month ``t`` with no loan running."""
        available = np.ones(len(ADVERSE_KINDS), dtype=bool)
        available[_LOAN_DEFAULT] = False
        # the serious list lasts 36 months from the latest entry
        available[_SERIOUS] = not any(kind == _SERIOUS and s < t <= s + 36 for s, kind in self.events.get(i, ()))
        available[_TAX] = bool(self.tax_mask[i, t])
        available[_COMMITMENT] = any(m < t <= r and not 0 <= b < t for m, r, b in self.commitments.get(i, ()))
        return available
