"""The register (工商登记) of one chunk: who the enterprises are, their latent risk, their hidden truth."""

from __future__ import annotations

import numpy as np

from scoring.data import schema
from scoring.data.generate.chunk import Chunk, sigmoid
from scoring.data.generate.parameters import (
    DIVISION_WEIGHTS,
    DIVISIONS,
    INDUSTRY_EFFECT,
    INDUSTRY_WEIGHTS,
    NAME_PLACES,
    NAME_TRADES,
    NAME_WORDS,
    SIZE_EFFECT,
    SIZE_SALES,
    SIZE_WEIGHTS,
)
from scoring.data.uscc import CHARSET, make_uscc


def draw_enterprises(c: Chunk) -> None:
    """Industry, size, latent risk and hazard, registration and deregistration: the ``enterprises`` table."""
    rng, n, m = c.rng, c.n, c.cfg.months
    c.industry = rng.choice(len(schema.INDUSTRIES), n, p=INDUSTRY_WEIGHTS / INDUSTRY_WEIGHTS.sum())
    c.size = rng.choice(4, n, p=SIZE_WEIGHTS)
    entity = np.where(c.size == 3, rng.choice(3, n, p=[0.65, 0.32, 0.03]), 0)
    entity = np.where((c.industry == 0) & (rng.random(n) < 0.3), 2, entity)
    c.z = rng.standard_normal(n)
    c.risk = c.z + INDUSTRY_EFFECT[c.industry] + SIZE_EFFECT[c.size]
    c.hazard = sigmoid(c.cfg.hazard_intercept + c.cfg.hazard_slope * c.risk)
    lo, hi = c.cfg.regime_window
    months_idx = np.arange(m)
    in_regime = (months_idx >= lo) & (months_idx < hi)
    hit = c.industry == schema.INDUSTRIES.index(c.cfg.regime_industry)
    # risk month by month: the latent risk plus the industry's bad spell
    c.risk_t = c.risk[:, None] + c.cfg.regime_shift * (hit[:, None] & in_regime[None, :])
    c.hazard_t = sigmoid(c.cfg.hazard_intercept + c.cfg.hazard_slope * c.risk_t)
    # registration: most before the data window, some during it (month index may be negative)
    new = rng.random(n) < 0.12
    age_months = np.clip(rng.lognormal(np.log(60), 0.8, n), 4, 360).astype(int)
    c.reg_month = np.where(new, rng.integers(0, max(m - 1, 1), n), -age_months)
    dereg = rng.random(n) < 0.05
    dereg_month = c.reg_month + 6 + rng.integers(0, max(m, 1), n)
    c.dereg_month = np.where(dereg & (dereg_month < m), dereg_month, m + 10_000)
    months = np.arange(m)
    c.alive = (months[None, :] > c.reg_month[:, None]) & (months[None, :] < c.dereg_month[:, None])
    base = np.datetime64(c.cfg.start, "M")
    reg_day = rng.integers(0, 28, n)
    reg_date = (base + c.reg_month).astype("datetime64[D]") + reg_day
    dereg_date = (base + np.minimum(c.dereg_month, m)).astype("datetime64[D]") + rng.integers(0, 28, n)
    capital = SIZE_SALES[c.size] * rng.lognormal(1.0, 0.9, n)
    c.entity = entity
    div = rng.choice(len(DIVISIONS), n, p=DIVISION_WEIGHTS)
    c.uscc = _codes(c, entity, np.array(DIVISIONS)[div])
    c.reg_date = reg_date
    names = _names(c)
    c.tables["enterprises"] = {
        "uscc": c.uscc,
        "name": names,
        "entity_type": np.array(schema.ENTITY_TYPES)[entity],
        "industry": np.array(schema.INDUSTRIES)[c.industry],
        "division": np.array(DIVISIONS)[div],
        "registered_capital": np.round(capital, -3),
        "size_class": np.array(schema.SIZE_CLASSES)[c.size],
        "status": np.where(c.dereg_month < m, np.where(rng.random(n) < 0.2, "吊销", "注销"), "存续"),
        "registered_date": reg_date,
        "deregistered_date": np.where(c.dereg_month < m, dereg_date, np.datetime64("NaT")),
    }


def _codes(c: Chunk, entity: np.ndarray, divisions: np.ndarray) -> np.ndarray:
    rng, n = c.rng, c.n
    serial = c.offset + np.arange(n)
    # a seeded bijection of the serial keeps codes unique across chunks yet scattered
    scrambled = (serial * 2_654_435_761 + c.cfg.seed * 97) % 100_000_000
    codes = []
    for k in range(n):
        body = f"{int(scrambled[k]):08d}"
        codes.append(make_uscc(authority="9", entity_type=str(entity[k] + 1), division=divisions[k], org_body=body))
    out = np.array(codes, dtype=object)
    # early pilot codes: legal but with a wrong check character (kept, warned about at ingest)
    pilot = np.flatnonzero(rng.random(n) < c.cfg.pilot_code_rate)
    for row in pilot.tolist():
        good = out[row][-1]
        wrong = CHARSET[(CHARSET.index(good) + 1 + int(rng.integers(0, 29))) % 31]
        out[row] = out[row][:17] + wrong
    c.pilot_codes = int(pilot.size)
    return out


def _names(c: Chunk) -> np.ndarray:
    rng, n = c.rng, c.n
    place = rng.integers(0, len(NAME_PLACES), n)
    word = rng.integers(0, len(NAME_WORDS), n)
    word2 = rng.integers(0, len(NAME_WORDS), n)
    trades = [NAME_TRADES[schema.INDUSTRIES[i]] for i in c.industry]
    suffix = np.where(c.size <= 1, "股份有限公司", "有限公司")
    return np.array(
        [
            f"{NAME_PLACES[place[k]]}{NAME_WORDS[word[k]]}{NAME_WORDS[word2[k]][0]}{trades[k]}{suffix[k]}"
            if c.entity[k] != 1
            else f"{NAME_PLACES[place[k]]}县{NAME_WORDS[word[k]]}{trades[k]}店"
            for k in range(n)
        ],
        dtype=object,
    )


def truth(c: Chunk) -> None:
    """The hidden truth the data was drawn from (``synthetic_truth``), for the oracle AUC."""
    c.tables["synthetic_truth"] = {
        "uscc": c.uscc,
        "latent_risk": np.round(c.risk, 6),
        "monthly_hazard": c.hazard,
        "p_adverse_12m": 1 - (1 - c.hazard) ** 12,
    }
