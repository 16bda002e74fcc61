"""The credit records of one chunk: penalties, commitments, the two lists, loans and objections to them.

These are the tables the label reads (a 较重/严重 penalty, a list entry, a broken commitment, a
loan 90+ days past due), drawn from the events of :mod:`scoring.data.generate.events`.
"""

from __future__ import annotations

import numpy as np

from scoring.data import schema
from scoring.data.generate.chunk import Chunk, ids, sigmoid
from scoring.data.generate.parameters import BANKS, COURTS


def penalties(c: Chunk) -> None:
    """``penalties`` (行政处罚): everyday and severe ones, with publicity and credit repair dates."""
    rng = c.rng
    pen = {k: np.concatenate([p[k] for p in c.penalty_parts]) for k in c.penalty_parts[0]}
    n_pen = pen["i"].size
    decision = c.day(pen["month"])
    adverse = np.isin(pen["severity"], schema.ADVERSE_SEVERITIES)
    repaired = rng.random(n_pen) < np.where(adverse, 0.25, 0.45)
    repair = decision + np.where(adverse, rng.integers(365, 1100, n_pen), rng.integers(90, 540, n_pen))
    repair_known = repaired & (repair < c.extract_date)
    c.tables["penalties"] = {
        "penalty_id": ids("CF", c.index, n_pen),
        "uscc": c.uscc[pen["i"]],
        "domain": np.array(schema.PENALTY_DOMAINS)[
            rng.choice(len(schema.PENALTY_DOMAINS), n_pen, p=[0.3, 0.15, 0.15, 0.12, 0.1, 0.08, 0.05, 0.05])
        ],
        "severity": pen["severity"],
        "amount": np.round(pen["amount"], -1),
        "decision_date": decision,
        # publicity (公示) lasts 3 months for 轻微, a year for 一般, three years for 较重/严重
        "publicity_end_date": decision
        + np.select([pen["severity"] == "轻微", pen["severity"] == "一般"], [90, 365], 1095),
        "repair_date": np.where(repair_known, repair, np.datetime64("NaT")),
    }
    c.penalty_rows = {"i": pen["i"], "adverse": adverse, "decision": decision}


def commitments(c: Chunk) -> None:
    """``commitments`` (信用承诺): kept, broken (违诺) or still running at extraction."""
    rng, m, ms = c.rng, c.cfg.months, c.month_start
    co = c.commit
    n_c = co["i"].size
    commit_date = c.day(co["month"])
    broken = co["broken_month"] >= 0
    resolve_month = np.where(broken, co["broken_month"], co["resolve_month"])
    resolve_date = ms[np.minimum(resolve_month, m)] + rng.integers(0, 28, n_c)
    known = resolve_date < c.extract_date
    c.tables["commitments"] = {
        "commitment_id": ids("CN", c.index, n_c),
        "uscc": c.uscc[co["i"]],
        "commitment_type": np.array(schema.COMMITMENT_TYPES)[co["type"]],
        "commit_date": commit_date,
        "outcome": np.where(known, np.where(broken, "违诺", "履约"), "在途"),
        "outcome_date": np.where(known, resolve_date, np.datetime64("NaT")),
    }


def dishonesty_lists(c: Chunk) -> None:
    """``serious_dishonesty_list`` (严重失信主体名单) and ``executee_list`` (失信被执行人)."""
    rng = c.rng
    le = c.list_events
    serious, executee = le["serious"], ~le["serious"]
    entry = c.day(le["month"])
    n_s, n_e = int(serious.sum()), int(executee.sum())
    # the serious list: three years unless repaired (信用修复) earlier
    repaired_early = rng.random(n_s) < 0.3
    s_exit = entry[serious] + np.where(repaired_early, rng.integers(365, 700, n_s), 1095)
    s_known = s_exit < c.extract_date
    c.tables["serious_dishonesty_list"] = {
        "list_entry_id": ids("SX", c.index, n_s),
        "uscc": c.uscc[le["i"][serious]],
        "domain": np.array(schema.PENALTY_DOMAINS)[rng.integers(0, len(schema.PENALTY_DOMAINS), n_s)],
        "entry_date": entry[serious],
        "exit_date": np.where(s_known, s_exit, np.datetime64("NaT")),
        "exit_reason": np.where(s_known, np.where(repaired_early, "信用修复", "期满移出"), np.array(None)),
    }
    e_exit = entry[executee] + rng.integers(90, 730, n_e)
    c.tables["executee_list"] = {
        "case_no": np.array([f"(2020)皖{c.index:04d}执{k}号" for k in range(n_e)], dtype=object),
        "uscc": c.uscc[le["i"][executee]],
        "court": np.array(COURTS)[rng.integers(0, len(COURTS), n_e)],
        "obligation_amount": np.round(5e4 * (1 + rng.pareto(1.3, n_e)), -2),
        "entry_date": entry[executee],
        "exit_date": np.where(e_exit < c.extract_date, e_exit, np.datetime64("NaT")),
    }


def loans(c: Chunk) -> None:
    """``loans`` from the partner banks: defaulted (90+ days past due), settled, overdue or running."""
    rng, ms = c.rng, c.month_start
    lo = c.loan
    n_lo = lo["i"].size
    start = c.day(lo["month"])
    maturity = (start.astype("datetime64[M]") + lo["term"]).astype("datetime64[D]") + (
        start - start.astype("datetime64[M]").astype("datetime64[D]")
    )
    defaulted = lo["default_month"] >= 0
    dpd90 = ms[np.maximum(lo["default_month"], 0)] + rng.integers(0, 28, n_lo)
    dpd90_known = defaulted & (dpd90 < c.extract_date)
    minor = rng.random(n_lo) < sigmoid(-2.5 + c.risk[lo["i"]])
    matured = maturity < c.extract_date
    max_dpd = np.where(dpd90_known, rng.integers(90, 360, n_lo), np.where(minor, rng.integers(1, 60, n_lo), 0))
    settled = matured & ~defaulted
    c.tables["loans"] = {
        "loan_id": ids("LN", c.index, n_lo),
        "uscc": c.uscc[lo["i"]],
        "bank_id": np.array(BANKS)[lo["bank"]],
        "start_date": start,
        "term_months": lo["term"].astype(np.int32),
        "maturity_date": maturity,
        "amount": lo["amount"],
        "max_dpd": max_dpd.astype(np.int32),
        "dpd90_date": np.where(dpd90_known, dpd90, np.datetime64("NaT")),
        "settled_date": np.where(settled, maturity + rng.integers(-20, 1, n_lo), np.datetime64("NaT")),
        "status": np.where(dpd90_known, "违约", np.where(settled, "结清", np.where(minor & ~matured, "逾期", "正常"))),
    }


def objections(c: Chunk) -> None:
    """``objections`` (异议) to penalties and serious-list entries.

    Deletion only for records the enterprise was right about (never the adverse events, so the
    true probabilities hold).
    """
    rng, never = c.rng, np.datetime64("NaT")
    pen = c.tables["penalties"]
    disputed = rng.random(len(pen["penalty_id"])) < 0.04
    serious = c.tables["serious_dishonesty_list"]
    s_disputed = rng.random(len(serious["list_entry_id"])) < 0.08
    record_table = np.concatenate(
        [
            np.full(int(disputed.sum()), "penalties", dtype=object),
            np.full(int(s_disputed.sum()), "serious_dishonesty_list", dtype=object),
        ]
    )
    record_id = np.concatenate([pen["penalty_id"][disputed], serious["list_entry_id"][s_disputed]])
    owner = np.concatenate([pen["uscc"][disputed], serious["uscc"][s_disputed]])
    base = np.concatenate([pen["decision_date"][disputed], serious["entry_date"][s_disputed]])
    deletable = np.concatenate([~c.penalty_rows["adverse"][disputed], np.zeros(int(s_disputed.sum()), bool)])
    k = record_id.size
    raised = base + rng.integers(5, 120, k)
    resolved = raised + np.where(rng.random(k) < 0.9, rng.integers(3, 21, k), rng.integers(21, 45, k))
    u = rng.random(k)
    result = np.where(deletable & (u < 0.3), "删除", np.where(u < 0.85, "维持", "更正"))
    keep = raised < c.extract_date
    done = resolved < c.extract_date
    c.tables["objections"] = {
        "objection_id": ids("YY", c.index, int(keep.sum())),
        "uscc": owner[keep],
        "record_table": record_table[keep],
        "record_id": record_id[keep],
        "raised_date": raised[keep],
        "resolved_date": np.where(done, resolved, never)[keep],
        "result": np.where(done, result, np.array(None))[keep],
    }
