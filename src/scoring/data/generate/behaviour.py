"""Monthly behaviour of one chunk: sales, tax, utilities, social insurance and housing fund, all driven by risk."""

from __future__ import annotations

import numpy as np

from scoring.data.generate.chunk import Chunk, sigmoid
from scoring.data.generate.parameters import (
    HF_COVERAGE,
    SI_COVERAGE,
    SIZE_HEADCOUNT,
    SIZE_SALES,
    TAX_COVERAGE,
    UTILITY_COVERAGE,
    UTILITY_PRICE,
)


def draw_behaviour(c: Chunk) -> None:
    """Every enterprise x month amount: what the monthly tables are later cut from."""
    m = c.cfg.months
    month_of_year = (np.datetime64(c.cfg.start, "M").astype(int) + np.arange(m)) % 12  # 0 = January
    season = 1 + 0.12 * np.sin(2 * np.pi * (month_of_year - 3) / 12) - 0.22 * (month_of_year == 1)
    drift, walk = _sales(c, season)
    _tax(c)
    _utilities(c, month_of_year, season)
    _payroll(c, drift, walk)


def _sales(c: Chunk, season: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Monthly sales; returns the business trend (drift, random walk) headcount follows too."""
    rng, n, m = c.rng, c.n, c.cfg.months
    # the business trend: riskier firms shrink (a slow, noisy drift of the log level)
    drift = 0.004 - 0.007 * c.risk + rng.normal(0, 0.004, n)
    level = np.log(SIZE_SALES[c.size] * rng.lognormal(0, 0.8, n))
    walk = np.cumsum(rng.normal(0, 0.04, (n, m)), axis=1)
    log_sales = level[:, None] + drift[:, None] * np.arange(m)[None, :] + walk
    c.sales = np.exp(log_sales + rng.normal(0, 0.22, (n, m))) * season[None, :]
    return drift, walk


def _tax(c: Chunk) -> None:
    rng, n, m, r = c.rng, c.n, c.cfg.months, c.risk_t
    has_tax = (rng.random(n) < TAX_COVERAGE[c.size]) & (c.entity != 2)
    # months with a tax record: declared the month after each live month, so not the first live month
    c.tax_mask = c.alive & has_tax[:, None] & (np.arange(m)[None, :] > c.reg_month[:, None] + 1)
    tax_rate = np.where(c.size <= 1, 0.055, 0.028) * rng.lognormal(0, 0.15, n)
    tax_due = c.sales * tax_rate[:, None]
    late = rng.random((n, m)) < sigmoid(-3.5 + 1.3 * r)
    short_arrears = rng.random((n, m)) < sigmoid(-4.1 + 1.3 * r)
    arrears = np.where(short_arrears, tax_due * rng.uniform(0.3, 1.0, (n, m)), 0.0)
    arrears_days = np.where(short_arrears, rng.integers(5, 61, (n, m)), 0)
    c.tax = {"due": tax_due, "late": late, "arrears": arrears, "arrears_days": arrears_days}


def _utilities(c: Chunk, month_of_year: np.ndarray, season: np.ndarray) -> None:
    rng, n, m, r = c.rng, c.n, c.cfg.months, c.risk_t
    c.utility_mask = {}
    c.utility = {}
    for u, coverage in UTILITY_COVERAGE.items():
        has = rng.random(n) < coverage[c.size]
        c.utility_mask[u] = c.alive & has[:, None]
        intensity = rng.lognormal(0, 0.5, n)
        u_season = 1 + (0.18 if u == "electricity" else 0.1) * np.cos(2 * np.pi * (month_of_year - 7) / 6)
        if u == "gas":
            u_season = 1 + 0.4 * np.cos(2 * np.pi * month_of_year / 12)
        usage = (c.sales / season[None, :]) ** 0.8 * intensity[:, None] * 0.05 * u_season[None, :]
        usage = usage * rng.lognormal(0, 0.1, (n, m))
        billed = usage * UTILITY_PRICE[u]
        late_pay = rng.random((n, m)) < sigmoid(-3.8 + 1.25 * r)
        paid = np.where(late_pay, billed * rng.uniform(0, 0.7, (n, m)), billed)
        c.utility[u] = {"usage": usage, "billed": billed, "paid": paid}


def _payroll(c: Chunk, drift: np.ndarray, walk: np.ndarray) -> None:
    """Headcount, social insurance (社保) and housing fund (公积金), following the business trend."""
    rng, n, m, r = c.rng, c.n, c.cfg.months, c.risk_t
    has_si = rng.random(n) < SI_COVERAGE[c.size]
    c.si_mask = c.alive & has_si[:, None]
    head_level = np.log(SIZE_HEADCOUNT[c.size] * rng.lognormal(0, 0.5, n))
    head_drift = 0.6 * drift + rng.normal(0, 0.002, n)
    head = np.exp(
        head_level[:, None] + head_drift[:, None] * np.arange(m)[None, :] + 0.5 * walk + rng.normal(0, 0.05, (n, m))
    )
    c.headcount = np.maximum(1, np.round(head)).astype(int)
    si_arrears = rng.random((n, m)) < sigmoid(-4.2 + 1.2 * r)
    c.si_arrears = np.where(si_arrears, c.headcount * rng.uniform(300, 1200, (n, m)), 0.0)

    has_hf = (rng.random(n) < HF_COVERAGE[c.size]) & c.si_mask.any(axis=1)
    c.hf_mask = c.si_mask & has_hf[:, None]
    share = rng.uniform(0.3, 0.95, n)
    c.hf_payers = np.maximum(1, np.round(c.headcount * share[:, None])).astype(int)
    hf_arrears = rng.random((n, m)) < sigmoid(-4.4 + 1.1 * r)
    c.hf_paid = c.hf_payers * rng.uniform(400, 900, n)[:, None]
    c.hf_arrears = np.where(hf_arrears, c.hf_paid * rng.uniform(0.3, 1.0, (n, m)), 0.0)
