"""The administrative records of one chunk: licences, inspections and other actions, real estate, R&D."""

from __future__ import annotations

import numpy as np

from scoring.data import schema
from scoring.data.generate.chunk import Chunk, ids, sigmoid
from scoring.data.generate.parameters import HIGHTECH_INDUSTRIES, REAL_ESTATE_RATE


def licenses(c: Chunk) -> None:
    """``licenses`` (行政许可): more in the busy trades, revoked more often at riskier firms."""
    rng, n, m, never = c.rng, c.n, c.cfg.months, np.datetime64("NaT")
    busy = np.isin(c.industry, [schema.INDUSTRIES.index(x) for x in ("C", "F", "G", "H", "I")])
    li, lm = c.live_draws(np.full((n, m), 1.0) * np.where(busy, 0.012, 0.005)[:, None])
    issued = c.day(lm)
    revoked = rng.random(li.size) < sigmoid(-4.5 + c.risk[li])
    revoked_date = issued + rng.integers(60, 900, li.size)
    c.tables["licenses"] = {
        "license_id": ids("XK", c.index, li.size),
        "uscc": c.uscc[li],
        "license_type": np.array(schema.LICENSE_TYPES)[rng.integers(0, len(schema.LICENSE_TYPES), li.size)],
        "issued_date": issued,
        "valid_until": issued + rng.choice([1095, 1826], li.size),
        "revoked_date": np.where(revoked & (revoked_date < c.extract_date), revoked_date, never),
    }


def admin_actions(c: Chunk) -> None:
    """``admin_actions``: inspections, rewards, enforcement and confirmations (行政检查、奖励、强制、确认)."""
    rng, n, m, risk_t = c.rng, c.n, c.cfg.months, c.risk_t
    parts = []
    for kind, rate, results in (
        ("行政检查", 0.02 * np.ones((n, m)), None),
        ("行政奖励", 0.002 * np.exp(-risk_t), ("表彰奖励",)),
        ("行政强制", 0.001 * np.exp(1.2 * risk_t), ("查封扣押", "冻结存款")),
        ("行政确认", 0.004 * np.ones((n, m)), ("确认登记",)),
    ):
        ai, am = c.live_draws(rate)
        if results is None:  # inspections fail more often at riskier firms
            failed = rng.random(ai.size) < sigmoid(-2.6 + 1.2 * risk_t[ai, am])
            result = np.where(
                failed,
                np.where(rng.random(ai.size) < 0.5, "不合格", "责令整改"),
                np.where(rng.random(ai.size) < 0.8, "合格", "基本合格"),
            )
        else:
            result = np.array(results)[rng.integers(0, len(results), ai.size)]
        parts.append({"i": ai, "month": am, "type": np.full(ai.size, kind, dtype=object), "result": result})
    act = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    c.tables["admin_actions"] = {
        "action_id": ids("XZ", c.index, act["i"].size),
        "uscc": c.uscc[act["i"]],
        "action_type": act["type"],
        "domain": np.array(schema.PENALTY_DOMAINS)[rng.integers(0, len(schema.PENALTY_DOMAINS), act["i"].size)],
        "action_date": c.day(act["month"]),
        "result": act["result"].astype(object),
    }


def real_estate(c: Chunk) -> None:
    """``real_estate`` (不动产): registered after the enterprise, some mortgaged, a few seized at risky firms."""
    rng, n, never = c.rng, c.n, np.datetime64("NaT")
    owned = rng.poisson(REAL_ESTATE_RATE[c.size])
    ri = np.repeat(np.arange(n), owned)
    span = np.maximum((c.extract_date - c.reg_date[ri]).astype(int) - 1, 1)
    registered = c.reg_date[ri] + 1 + (rng.random(ri.size) * (span - 1)).astype(int)
    mortgage = registered + rng.integers(30, 1500, ri.size)
    seized = rng.random(ri.size) < sigmoid(-4.2 + 1.3 * c.risk[ri])
    seizure = registered + rng.integers(30, 2000, ri.size)
    c.tables["real_estate"] = {
        "property_id": ids("BDC", c.index, ri.size),
        "uscc": c.uscc[ri],
        "property_type": np.array(schema.PROPERTY_TYPES)[
            rng.choice(len(schema.PROPERTY_TYPES), ri.size, p=[0.25, 0.3, 0.2, 0.15, 0.1])
        ],
        "area_m2": np.round(rng.lognormal(6.0, 1.0, ri.size), 1),
        "registered_date": registered,
        "mortgage_date": np.where((rng.random(ri.size) < 0.4) & (mortgage < c.extract_date), mortgage, never),
        "seizure_date": np.where(seized & (seizure < c.extract_date), seizure, never),
    }


def research(c: Chunk) -> None:
    """``hightech_certificates`` (three years) and ``patents`` (科技研发)."""
    rng, n, m, ms = c.rng, c.n, c.cfg.months, c.month_start
    tech = np.isin(c.industry, [schema.INDUSTRIES.index(x) for x in HIGHTECH_INDUSTRIES]) & (c.size <= 2)
    certified = tech & (rng.random(n) < 0.35 * sigmoid(-0.5 - 1.0 * c.risk))
    ci = np.flatnonzero(certified)
    earliest = np.maximum(c.reg_date[ci], ms[0] - 1000)
    window = np.maximum((c.extract_date - earliest).astype(int) - 1, 1)
    cert_date = earliest + (rng.random(ci.size) * window).astype(int)
    c.tables["hightech_certificates"] = {
        "certificate_no": ids("GR", c.index, ci.size),
        "uscc": c.uscc[ci],
        "certified_date": cert_date,
        "expiry_date": cert_date + 1095,
    }
    pi, pm = c.live_draws(np.where(certified, 0.12, 0.004)[:, None] * np.ones((1, m)))
    c.tables["patents"] = {
        "patent_no": np.array([f"ZL{c.index:04d}{k:07d}.X" for k in range(pi.size)], dtype=object),
        "uscc": c.uscc[pi],
        "patent_type": np.array(schema.PATENT_TYPES)[rng.choice(3, pi.size, p=[0.3, 0.55, 0.15])],
        "granted_date": c.day(pm),
    }
