"""The monthly tables of one chunk (纳税, 水电气, 社保, 公积金) and the yearly tax ratings (纳税信用等级)."""

from __future__ import annotations

import numpy as np

from scoring.data import schema
from scoring.data.generate.chunk import Chunk


def _period_of(c: Chunk) -> np.ndarray:
    """The period a record dated in month k reports: k-1 (declared or billed the month after)."""
    return (np.datetime64(c.cfg.start, "M") + np.arange(-1, c.cfg.months)).astype("datetime64[D]")


def tax_monthly(c: Chunk) -> None:
    """``tax_monthly``: one declaration a month, filed late at riskier firms."""
    rng, ms = c.rng, c.month_start
    ti, tm = np.nonzero(c.tax_mask)
    late = c.tax["late"][ti, tm]
    filed = ms[tm] + np.where(late, rng.integers(15, 28, ti.size), rng.integers(0, 15, ti.size))
    due = c.tax["due"][ti, tm]
    c.tables["tax_monthly"] = {
        "uscc": c.uscc[ti],
        "period": _period_of(c)[tm],
        "filed_date": filed,
        "declared_sales": np.round(c.sales[ti, tm], 2),
        "tax_paid": np.round(due - np.minimum(due, c.tax["arrears"][ti, tm]), 2),
        "arrears": np.round(c.tax["arrears"][ti, tm], 2),
        "arrears_days": c.tax["arrears_days"][ti, tm].astype(np.int32),
        "late_filing": late,
    }


def utility_monthly(c: Chunk) -> None:
    """``utility_monthly``: water, electricity and gas bills, partly unpaid at riskier firms."""
    m, period_of = c.cfg.months, _period_of(c)
    parts = []
    for u in schema.UTILITIES:
        ui, um = np.nonzero(c.utility_mask[u] & (np.arange(m)[None, :] > c.reg_month[:, None] + 1))
        d = c.utility[u]
        billed, paid = d["billed"][ui, um], d["paid"][ui, um]
        parts.append(
            {
                "uscc": c.uscc[ui],
                "utility": np.full(ui.size, u, dtype=object),
                "period": period_of[um],
                "bill_date": c.day(um, 0, 6),
                "usage": np.round(d["usage"][ui, um], 1),
                "billed": np.round(billed, 2),
                "paid": np.round(paid, 2),
                "arrears": np.round(billed - paid, 2),
            }
        )
    c.tables["utility_monthly"] = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def social_insurance_monthly(c: Chunk) -> None:
    """``social_insurance_monthly``: headcount and arrears of the 社保 reports."""
    ms = c.month_start
    si, sm = np.nonzero(c.si_mask)
    c.tables["social_insurance_monthly"] = {
        "uscc": c.uscc[si],
        "period": ms[sm],
        "report_date": ms[sm] + 27,
        "headcount": c.headcount[si, sm].astype(np.int32),
        "arrears": np.round(c.si_arrears[si, sm], 2),
    }


def tax_ratings(c: Chunk) -> None:
    """``tax_ratings``: rated each April for the year before, from that year's tax behaviour."""
    rng, n, m, ms = c.rng, c.n, c.cfg.months, c.month_start
    first_year = int(str(ms[0])[:4])
    year_of = first_year + (int(str(ms[0])[5:7]) - 1 + np.arange(m)) // 12
    rows: dict[str, list] = {"uscc": [], "year": [], "rating": [], "rated_date": []}
    filed_mask = c.tax_mask
    for year in np.unique(year_of):
        cols = year_of == year
        rated = np.datetime64(f"{year + 1}-04-01") + rng.integers(0, 28, n)
        months_filed = filed_mask[:, cols].sum(axis=1)
        eligible = (months_filed > 0) & (rated < c.extract_date)
        if not eligible.any():
            continue
        late = (c.tax["late"][:, cols] & c.tax_mask[:, cols]).sum(axis=1)
        arrears = ((c.tax["arrears"][:, cols] > 0) & c.tax_mask[:, cols]).sum(axis=1)
        long_arrears = ((c.tax["arrears_days"][:, cols] > 90) & c.tax_mask[:, cols]).any(axis=1)
        rating = np.select(
            [long_arrears | (arrears >= 4), (arrears >= 2) | (late >= 4), (arrears >= 1) | (late >= 1)],
            ["D", "C", "B"],
            "A",
        )
        new = c.reg_date.astype("datetime64[Y]").astype(int) + 1970 >= year
        rating = np.where(new & (rating != "D"), "M", rating)
        idx = np.flatnonzero(eligible)
        rows["uscc"].append(c.uscc[idx])
        rows["year"].append(np.full(idx.size, year, dtype=np.int32))
        rows["rating"].append(rating[idx])
        rows["rated_date"].append(rated[idx])
    c.tables["tax_ratings"] = {
        k: (np.concatenate(v) if v else np.array([], dtype="datetime64[D]" if k == "rated_date" else object))
        for k, v in rows.items()
    }
    if not rows["year"]:
        c.tables["tax_ratings"]["year"] = np.array([], dtype=np.int32)


def housing_fund_monthly(c: Chunk) -> None:
    """``housing_fund_monthly``: payers, payments and arrears of the 住房公积金 reports."""
    ms = c.month_start
    hi, hm = np.nonzero(c.hf_mask)
    c.tables["housing_fund_monthly"] = {
        "uscc": c.uscc[hi],
        "period": ms[hm],
        "report_date": ms[hm] + 27,
        "payers": c.hf_payers[hi, hm].astype(np.int32),
        "paid": np.round(c.hf_paid[hi, hm] - c.hf_arrears[hi, hm], 2),
        "arrears": np.round(c.hf_arrears[hi, hm], 2),
    }
