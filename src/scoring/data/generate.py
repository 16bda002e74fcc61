"""Synthetic platform data: a county or city of enterprises with a hidden creditworthiness.

Every enterprise gets a latent risk ``r`` (idiosyncratic part + industry + size effects). The
same ``r`` drives its everyday records (late filings, short arrears, light penalties, sales and
headcount trends) and the monthly hazard of an adverse credit event. Adverse events are drawn
month by month from that hazard alone and written as the records the label reads:
a 较重/严重 penalty, entry onto the 严重失信 or 失信被执行人 list, tax arrears past 90 days,
a broken commitment (违诺) or a loan 90+ days past due. Which kind an event takes depends only on
what the enterprise has at that moment (a loan, a pending commitment, tax records), never on
whether it happens, so the true probability ``1 - (1 - h)^k`` over ``k`` live months is exact
and its AUC is the best any model can reach (the oracle AUC).

Generation runs in chunks of enterprises with their own random streams, so memory stays
bounded and the output depends only on the seed and the size.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from scoring.data import schema
from scoring.data.uscc import CHARSET, make_uscc

log = logging.getLogger(__name__)

DIVISIONS = ("341323", "341302", "341321", "341322", "341324")  # 宿州市: 灵璧县 and neighbours
DIVISION_WEIGHTS = (0.6, 0.1, 0.1, 0.1, 0.1)
INDUSTRY_WEIGHTS = np.array([3, 1, 18, 1, 1, 10, 28, 4, 8, 3, 1, 4, 4, 3, 3, 1, 1, 2, 4], dtype=float)
INDUSTRY_EFFECT = np.array(
    [0.2, 0.3, 0.1, -0.4, 0.0, 0.35, 0.05, 0.25, 0.3, -0.2, -0.3, 0.3, -0.25, 0.0, 0.1, -0.3, -0.3, 0.15, 0.1]
)
SIZE_WEIGHTS = np.array([0.02, 0.10, 0.28, 0.60])  # 大型 中型 小型 微型
SIZE_EFFECT = np.array([-0.6, -0.3, 0.0, 0.3])
SIZE_SALES = np.array([5e7, 5e6, 6e5, 6e4])  # typical monthly declared sales (CNY)
SIZE_HEADCOUNT = np.array([1500.0, 250.0, 35.0, 4.0])
TAX_COVERAGE = np.array([0.99, 0.97, 0.9, 0.6])
UTILITY_COVERAGE = {
    "electricity": np.array([0.99, 0.95, 0.85, 0.55]),
    "water": np.array([0.97, 0.9, 0.75, 0.45]),
    "gas": np.array([0.7, 0.45, 0.25, 0.12]),
}
SI_COVERAGE = np.array([0.99, 0.98, 0.9, 0.55])
HF_COVERAGE = np.array([0.97, 0.8, 0.45, 0.12])
REAL_ESTATE_RATE = np.array([1.5, 0.8, 0.3, 0.05])  # properties per enterprise
HIGHTECH_INDUSTRIES = ("C", "I", "M")
COURTS = (
    "灵璧县人民法院",
    "宿州市埇桥区人民法院",
    "泗县人民法院",
    "萧县人民法院",
    "砀山县人民法院",
    "宿州市中级人民法院",
)
UTILITY_PRICE = {"water": 4.1, "electricity": 0.75, "gas": 3.3}
BANKS = ("B3413001", "B3413002", "B3413003", "B3413004", "B3413005", "B3413006")
NAME_PLACES = ("灵璧", "宿州", "泗县", "萧县", "砀山", "埇桥", "虞姬", "尹集", "渔沟", "娄庄", "韦集", "冯庙")
NAME_WORDS = (
    "恒信",
    "华安",
    "瑞丰",
    "金诚",
    "宏达",
    "鑫源",
    "永泰",
    "润德",
    "广利",
    "盛世",
    "天成",
    "佳和",
    "博远",
    "兴旺",
    "正大",
    "美景",
    "新源",
    "同创",
    "汇通",
    "联发",
    "万和",
    "中诚",
    "安康",
    "丰禾",
)
NAME_TRADES = {
    "A": "农业",
    "B": "矿业",
    "C": "制造",
    "D": "电力",
    "E": "水务",
    "F": "建筑",
    "G": "商贸",
    "H": "物流",
    "I": "餐饮",
    "J": "信息技术",
    "K": "金融服务",
    "L": "置业",
    "M": "租赁",
    "N": "科技",
    "O": "环境",
    "P": "教育",
    "Q": "健康",
    "R": "文化",
    "S": "服务",
}
ADVERSE_KINDS = ("severe_penalty", "serious_list", "executee_list", "tax_arrears", "broken_commitment", "loan_default")
# a firm in distress with a bank loan running defaults on it first, as often as all other kinds together
ADVERSE_WEIGHTS = np.array([0.30, 0.07, 0.16, 0.20, 0.12, 0.85])


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate. The output depends on these values only."""

    enterprises: int = 20_000
    months: int = 48
    start: str = "2022-01"
    seed: int = 7
    chunk_size: int = 50_000
    error_rate: float = 0.0002
    pilot_code_rate: float = 0.0002
    hazard_intercept: float = -5.6
    hazard_slope: float = 1.15
    # a bad spell for one industry: its latent risk rises by regime_shift for regime_months months,
    # starting regime_months before the end of the data unless regime_start (a month index) is set
    regime_industry: str = "F"
    regime_months: int = 6
    regime_shift: float = 0.8
    regime_start: int | None = None

    @property
    def regime_window(self) -> tuple[int, int]:
        start = self.months - self.regime_months if self.regime_start is None else self.regime_start
        return max(start, 0), min(start + self.regime_months, self.months)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class _Chunk:
    """One chunk of enterprises: their attributes and every record they produce."""

    def __init__(self, cfg: GeneratorConfig, index: int, offset: int, n: int, rng: np.random.Generator):
        self.cfg, self.index, self.offset, self.n, self.rng = cfg, index, offset, n, rng
        m = cfg.months
        self.month_start = (np.datetime64(cfg.start, "M") + np.arange(m + 1)).astype("datetime64[D]")
        self.extract_date = self.month_start[m]
        self.tables: dict[str, dict[str, np.ndarray]] = {}

    # ---------------------------------------------------------------- enterprises
    def enterprises(self) -> None:
        rng, n, m = self.rng, self.n, self.cfg.months
        self.industry = rng.choice(len(schema.INDUSTRIES), n, p=INDUSTRY_WEIGHTS / INDUSTRY_WEIGHTS.sum())
        self.size = rng.choice(4, n, p=SIZE_WEIGHTS)
        entity = np.where(self.size == 3, rng.choice(3, n, p=[0.65, 0.32, 0.03]), 0)
        entity = np.where((self.industry == 0) & (rng.random(n) < 0.3), 2, entity)
        self.z = rng.standard_normal(n)
        self.risk = self.z + INDUSTRY_EFFECT[self.industry] + SIZE_EFFECT[self.size]
        self.hazard = _sigmoid(self.cfg.hazard_intercept + self.cfg.hazard_slope * self.risk)
        lo, hi = self.cfg.regime_window
        months_idx = np.arange(m)
        in_regime = (months_idx >= lo) & (months_idx < hi)
        hit = self.industry == schema.INDUSTRIES.index(self.cfg.regime_industry)
        # risk month by month: the latent risk plus the industry's bad spell
        self.risk_t = self.risk[:, None] + self.cfg.regime_shift * (hit[:, None] & in_regime[None, :])
        self.hazard_t = _sigmoid(self.cfg.hazard_intercept + self.cfg.hazard_slope * self.risk_t)
        # registration: most before the data window, some during it (month index may be negative)
        new = rng.random(n) < 0.12
        age_months = np.clip(rng.lognormal(np.log(60), 0.8, n), 4, 360).astype(int)
        self.reg_month = np.where(new, rng.integers(0, max(m - 1, 1), n), -age_months)
        dereg = rng.random(n) < 0.05
        dereg_month = self.reg_month + 6 + rng.integers(0, max(m, 1), n)
        self.dereg_month = np.where(dereg & (dereg_month < m), dereg_month, m + 10_000)
        months = np.arange(m)
        self.alive = (months[None, :] > self.reg_month[:, None]) & (months[None, :] < self.dereg_month[:, None])
        base = np.datetime64(self.cfg.start, "M")
        reg_day = rng.integers(0, 28, n)
        reg_date = (base + self.reg_month).astype("datetime64[D]") + reg_day
        dereg_date = (base + np.minimum(self.dereg_month, m)).astype("datetime64[D]") + rng.integers(0, 28, n)
        capital = SIZE_SALES[self.size] * rng.lognormal(1.0, 0.9, n)
        self.entity = entity
        div = rng.choice(len(DIVISIONS), n, p=DIVISION_WEIGHTS)
        self.uscc = self._codes(entity, np.array(DIVISIONS)[div])
        self.reg_date = reg_date
        names = self._names()
        self.tables["enterprises"] = {
            "uscc": self.uscc,
            "name": names,
            "entity_type": np.array(schema.ENTITY_TYPES)[entity],
            "industry": np.array(schema.INDUSTRIES)[self.industry],
            "division": np.array(DIVISIONS)[div],
            "registered_capital": np.round(capital, -3),
            "size_class": np.array(schema.SIZE_CLASSES)[self.size],
            "status": np.where(self.dereg_month < m, np.where(rng.random(n) < 0.2, "吊销", "注销"), "存续"),
            "registered_date": reg_date,
            "deregistered_date": np.where(self.dereg_month < m, dereg_date, np.datetime64("NaT")),
        }

    def _codes(self, entity: np.ndarray, divisions: np.ndarray) -> np.ndarray:
        rng, n = self.rng, self.n
        serial = self.offset + np.arange(n)
        # a seeded bijection of the serial keeps codes unique across chunks yet scattered
        scrambled = (serial * 2_654_435_761 + self.cfg.seed * 97) % 100_000_000
        codes = []
        for k in range(n):
            body = f"{int(scrambled[k]):08d}"
            codes.append(make_uscc(authority="9", entity_type=str(entity[k] + 1), division=divisions[k], org_body=body))
        out = np.array(codes, dtype=object)
        # early pilot codes: legal but with a wrong check character (kept, warned about at ingest)
        pilot = np.flatnonzero(rng.random(n) < self.cfg.pilot_code_rate)
        for row in pilot.tolist():
            good = out[row][-1]
            wrong = CHARSET[(CHARSET.index(good) + 1 + int(rng.integers(0, 29))) % 31]
            out[row] = out[row][:17] + wrong
        self.pilot_codes = int(pilot.size)
        return out

    def _names(self) -> np.ndarray:
        rng, n = self.rng, self.n
        place = rng.integers(0, len(NAME_PLACES), n)
        word = rng.integers(0, len(NAME_WORDS), n)
        word2 = rng.integers(0, len(NAME_WORDS), n)
        trades = [NAME_TRADES[schema.INDUSTRIES[i]] for i in self.industry]
        suffix = np.where(self.size <= 1, "股份有限公司", "有限公司")
        return np.array(
            [
                f"{NAME_PLACES[place[k]]}{NAME_WORDS[word[k]]}{NAME_WORDS[word2[k]][0]}{trades[k]}{suffix[k]}"
                if self.entity[k] != 1
                else f"{NAME_PLACES[place[k]]}县{NAME_WORDS[word[k]]}{trades[k]}店"
                for k in range(n)
            ],
            dtype=object,
        )

    # ---------------------------------------------------------------- monthly behaviour
    def monthly(self) -> None:
        rng, n, m = self.rng, self.n, self.cfg.months
        r = self.risk_t
        month_of_year = (np.datetime64(self.cfg.start, "M").astype(int) + np.arange(m)) % 12  # 0 = January
        season = 1 + 0.12 * np.sin(2 * np.pi * (month_of_year - 3) / 12) - 0.22 * (month_of_year == 1)
        # the business trend: riskier firms shrink (a slow, noisy drift of the log level)
        drift = 0.004 - 0.007 * self.risk + rng.normal(0, 0.004, n)
        level = np.log(SIZE_SALES[self.size] * rng.lognormal(0, 0.8, n))
        walk = np.cumsum(rng.normal(0, 0.04, (n, m)), axis=1)
        log_sales = level[:, None] + drift[:, None] * np.arange(m)[None, :] + walk
        sales = np.exp(log_sales + rng.normal(0, 0.22, (n, m))) * season[None, :]
        self.sales = sales

        has_tax = (rng.random(n) < TAX_COVERAGE[self.size]) & (self.entity != 2)
        # months with a tax record: declared the month after each live month, so not the first live month
        self.tax_mask = self.alive & has_tax[:, None] & (np.arange(m)[None, :] > self.reg_month[:, None] + 1)
        tax_rate = np.where(self.size <= 1, 0.055, 0.028) * rng.lognormal(0, 0.15, n)
        tax_due = sales * tax_rate[:, None]
        late = rng.random((n, m)) < _sigmoid(-3.5 + 1.3 * r)
        short_arrears = rng.random((n, m)) < _sigmoid(-4.1 + 1.3 * r)
        arrears = np.where(short_arrears, tax_due * rng.uniform(0.3, 1.0, (n, m)), 0.0)
        arrears_days = np.where(short_arrears, rng.integers(5, 61, (n, m)), 0)
        self.tax = {"due": tax_due, "late": late, "arrears": arrears, "arrears_days": arrears_days}

        self.utility_mask = {}
        self.utility = {}
        for u, coverage in UTILITY_COVERAGE.items():
            has = rng.random(n) < coverage[self.size]
            self.utility_mask[u] = self.alive & has[:, None]
            intensity = rng.lognormal(0, 0.5, n)
            u_season = 1 + (0.18 if u == "electricity" else 0.1) * np.cos(2 * np.pi * (month_of_year - 7) / 6)
            if u == "gas":
                u_season = 1 + 0.4 * np.cos(2 * np.pi * month_of_year / 12)
            usage = (sales / season[None, :]) ** 0.8 * intensity[:, None] * 0.05 * u_season[None, :]
            usage = usage * rng.lognormal(0, 0.1, (n, m))
            billed = usage * UTILITY_PRICE[u]
            late_pay = rng.random((n, m)) < _sigmoid(-3.8 + 1.25 * r)
            paid = np.where(late_pay, billed * rng.uniform(0, 0.7, (n, m)), billed)
            self.utility[u] = {"usage": usage, "billed": billed, "paid": paid}

        has_si = rng.random(n) < SI_COVERAGE[self.size]
        self.si_mask = self.alive & has_si[:, None]
        head_level = np.log(SIZE_HEADCOUNT[self.size] * rng.lognormal(0, 0.5, n))
        head_drift = 0.6 * drift + rng.normal(0, 0.002, n)
        head = np.exp(
            head_level[:, None] + head_drift[:, None] * np.arange(m)[None, :] + 0.5 * walk + rng.normal(0, 0.05, (n, m))
        )
        self.headcount = np.maximum(1, np.round(head)).astype(int)
        si_arrears = rng.random((n, m)) < _sigmoid(-4.2 + 1.2 * r)
        self.si_arrears = np.where(si_arrears, self.headcount * rng.uniform(300, 1200, (n, m)), 0.0)

        has_hf = (rng.random(n) < HF_COVERAGE[self.size]) & self.si_mask.any(axis=1)
        self.hf_mask = self.si_mask & has_hf[:, None]
        share = rng.uniform(0.3, 0.95, n)
        self.hf_payers = np.maximum(1, np.round(self.headcount * share[:, None])).astype(int)
        hf_arrears = rng.random((n, m)) < _sigmoid(-4.4 + 1.1 * r)
        self.hf_paid = self.hf_payers * rng.uniform(400, 900, n)[:, None]
        self.hf_arrears = np.where(hf_arrears, self.hf_paid * rng.uniform(0.3, 1.0, (n, m)), 0.0)

    # ---------------------------------------------------------------- event records
    def records(self) -> None:
        rng, n, m = self.rng, self.n, self.cfg.months
        r = self.risk
        # light and general penalties: a Poisson rate rising with risk
        pi, pm = _poisson_draws(rng, np.exp(-4.7 + 1.0 * self.risk_t + 0.25 * (self.size <= 1)[:, None]) * self.alive)
        severity = np.where(rng.random(pi.size) < 0.6, "轻微", "一般")
        pen = {
            "i": pi,
            "month": pm,
            "severity": severity,
            "amount": np.where(severity == "轻微", 1, 8) * 1000 * (1 + rng.pareto(1.8, pi.size)),
        }
        self.penalty_parts = [pen]

        # commitments: pledges with a resolution month; broken ones are adverse events below
        lam_c = (0.03 * (1 + (self.size <= 2)))[:, None] * self.alive
        c_counts = rng.poisson(lam_c)
        ci, cm = np.nonzero(c_counts)
        self.commit = {
            "i": ci,
            "month": cm,
            "type": rng.choice(len(schema.COMMITMENT_TYPES), ci.size, p=[0.35, 0.3, 0.25, 0.1]),
            "resolve_month": cm + rng.integers(3, 13, ci.size),
            "broken_month": np.full(ci.size, -1),
        }

        # loans from the partner banks; riskier firms borrow a little less often
        lam_l = (0.03 * np.exp(-0.3 * r) * (1 + (self.size <= 2)))[:, None] * self.alive
        l_counts = np.minimum(rng.poisson(lam_l), 1)
        li, lm = np.nonzero(l_counts)
        term = rng.choice([6, 12, 12, 12, 24], li.size)
        self.loan = {
            "i": li,
            "month": lm,
            "term": term,
            "amount": np.round(np.maximum(5e4, self.sales[li, lm] * rng.uniform(0.5, 3.0, li.size)), -4),
            "bank": rng.integers(0, len(BANKS), li.size),
            "default_month": np.full(li.size, -1),
        }

        # adverse events: month by month from the hazard alone
        events = (rng.random((n, m)) < self.hazard_t) & self.alive
        ei, em = np.nonzero(events)
        loans_by_firm = _index_by(self.loan["i"])
        commits_by_firm = _index_by(self.commit["i"])
        on_serious_until = np.full(n, -1)
        kinds = []
        for i, mo in zip(ei.tolist(), em.tolist(), strict=True):
            available = np.ones(len(ADVERSE_KINDS), dtype=bool)
            available[1] = on_serious_until[i] < mo
            available[3] = bool(self.tax_mask[i, mo])
            pending = [
                c
                for c in commits_by_firm.get(i, ())
                if self.commit["month"][c] < mo <= self.commit["resolve_month"][c]
                and self.commit["broken_month"][c] < 0
            ]
            available[4] = bool(pending)
            active = [
                k
                for k in loans_by_firm.get(i, ())
                if self.loan["month"][k] < mo < self.loan["month"][k] + self.loan["term"][k]
                and self.loan["default_month"][k] < 0
            ]
            available[5] = bool(active)
            w = ADVERSE_WEIGHTS * available
            kind = int(rng.choice(len(ADVERSE_KINDS), p=w / w.sum()))
            kinds.append(kind)
            if kind == 1:
                on_serious_until[i] = mo + 36
            elif kind == 4:
                self.commit["broken_month"][pending[0]] = mo
            elif kind == 5:
                self.loan["default_month"][active[0]] = mo
        kinds_arr = np.array(kinds, dtype=int)
        self.events = {"i": ei, "month": em, "kind": kinds_arr}

        sev = kinds_arr == 0
        si_, sm_ = ei[sev], em[sev]
        severity = np.where(rng.random(si_.size) < 0.7, "较重", "严重")
        self.penalty_parts.append(
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
        self.tax["arrears_days"][ti, tm] = rng.integers(91, 120, ti.size)
        self.tax["arrears"][ti, tm] = self.tax["due"][ti, tm] * rng.uniform(1.0, 3.0, ti.size)
        for extra in (1, 2):
            more = (tm + extra < m) & (rng.random(ti.size) < 0.6 / extra)
            ti2, tm2 = ti[more], tm[more] + extra
            self.tax["arrears_days"][ti2, tm2] = np.maximum(self.tax["arrears_days"][ti2, tm2 - 1] + 30, 121)
            self.tax["arrears"][ti2, tm2] = self.tax["arrears"][ti2, tm2 - 1]
        lists = (kinds_arr == 1) | (kinds_arr == 2)
        self.list_events = {"i": ei[lists], "month": em[lists], "serious": kinds_arr[lists] == 1}

    # ---------------------------------------------------------------- tables
    def build_tables(self) -> None:
        rng, m, ms = self.rng, self.cfg.months, self.month_start
        period_of = (np.datetime64(self.cfg.start, "M") + np.arange(-1, m)).astype("datetime64[D]")

        def day(month: np.ndarray, lo: int = 0, hi: int = 28) -> np.ndarray:
            return ms[month] + rng.integers(lo, hi, month.size)

        # a record dated in month k reports period k-1 (declared or billed the month after)
        ti, tm = np.nonzero(self.tax_mask)
        late = self.tax["late"][ti, tm]
        filed = ms[tm] + np.where(late, rng.integers(15, 28, ti.size), rng.integers(0, 15, ti.size))
        due = self.tax["due"][ti, tm]
        self.tables["tax_monthly"] = {
            "uscc": self.uscc[ti],
            "period": period_of[tm],
            "filed_date": filed,
            "declared_sales": np.round(self.sales[ti, tm], 2),
            "tax_paid": np.round(due - np.minimum(due, self.tax["arrears"][ti, tm]), 2),
            "arrears": np.round(self.tax["arrears"][ti, tm], 2),
            "arrears_days": self.tax["arrears_days"][ti, tm].astype(np.int32),
            "late_filing": late,
        }
        parts = []
        for u in schema.UTILITIES:
            ui, um = np.nonzero(self.utility_mask[u] & (np.arange(m)[None, :] > self.reg_month[:, None] + 1))
            d = self.utility[u]
            billed, paid = d["billed"][ui, um], d["paid"][ui, um]
            parts.append(
                {
                    "uscc": self.uscc[ui],
                    "utility": np.full(ui.size, u, dtype=object),
                    "period": period_of[um],
                    "bill_date": day(um, 0, 6),
                    "usage": np.round(d["usage"][ui, um], 1),
                    "billed": np.round(billed, 2),
                    "paid": np.round(paid, 2),
                    "arrears": np.round(billed - paid, 2),
                }
            )
        self.tables["utility_monthly"] = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        si, sm = np.nonzero(self.si_mask)
        self.tables["social_insurance_monthly"] = {
            "uscc": self.uscc[si],
            "period": ms[sm],
            "report_date": ms[sm] + 27,
            "headcount": self.headcount[si, sm].astype(np.int32),
            "arrears": np.round(self.si_arrears[si, sm], 2),
        }

        pen = {k: np.concatenate([p[k] for p in self.penalty_parts]) for k in self.penalty_parts[0]}
        n_pen = pen["i"].size
        decision = day(pen["month"])
        adverse = np.isin(pen["severity"], schema.ADVERSE_SEVERITIES)
        repaired = rng.random(n_pen) < np.where(adverse, 0.25, 0.45)
        repair = decision + np.where(adverse, rng.integers(365, 1100, n_pen), rng.integers(90, 540, n_pen))
        repair_known = repaired & (repair < self.extract_date)
        self.tables["penalties"] = {
            "penalty_id": _ids("CF", self.index, n_pen),
            "uscc": self.uscc[pen["i"]],
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
        self.penalty_rows = {"i": pen["i"], "adverse": adverse, "decision": decision}

        c = self.commit
        n_c = c["i"].size
        commit_date = day(c["month"])
        broken = c["broken_month"] >= 0
        resolve_month = np.where(broken, c["broken_month"], c["resolve_month"])
        resolve_date = ms[np.minimum(resolve_month, m)] + rng.integers(0, 28, n_c)
        known = resolve_date < self.extract_date
        self.tables["commitments"] = {
            "commitment_id": _ids("CN", self.index, n_c),
            "uscc": self.uscc[c["i"]],
            "commitment_type": np.array(schema.COMMITMENT_TYPES)[c["type"]],
            "commit_date": commit_date,
            "outcome": np.where(known, np.where(broken, "违诺", "履约"), "在途"),
            "outcome_date": np.where(known, resolve_date, np.datetime64("NaT")),
        }

        le = self.list_events
        serious, executee = le["serious"], ~le["serious"]
        entry = day(le["month"])
        n_s, n_e = int(serious.sum()), int(executee.sum())
        # the serious list: three years unless repaired (信用修复) earlier
        repaired_early = rng.random(n_s) < 0.3
        s_exit = entry[serious] + np.where(repaired_early, rng.integers(365, 700, n_s), 1095)
        s_known = s_exit < self.extract_date
        self.tables["serious_dishonesty_list"] = {
            "list_entry_id": _ids("SX", self.index, n_s),
            "uscc": self.uscc[le["i"][serious]],
            "domain": np.array(schema.PENALTY_DOMAINS)[rng.integers(0, len(schema.PENALTY_DOMAINS), n_s)],
            "entry_date": entry[serious],
            "exit_date": np.where(s_known, s_exit, np.datetime64("NaT")),
            "exit_reason": np.where(s_known, np.where(repaired_early, "信用修复", "期满移出"), np.array(None)),
        }
        e_exit = entry[executee] + rng.integers(90, 730, n_e)
        self.tables["executee_list"] = {
            "case_no": np.array([f"(2020)皖{self.index:04d}执{k}号" for k in range(n_e)], dtype=object),
            "uscc": self.uscc[le["i"][executee]],
            "court": np.array(COURTS)[rng.integers(0, len(COURTS), n_e)],
            "obligation_amount": np.round(5e4 * (1 + rng.pareto(1.3, n_e)), -2),
            "entry_date": entry[executee],
            "exit_date": np.where(e_exit < self.extract_date, e_exit, np.datetime64("NaT")),
        }

        lo = self.loan
        n_lo = lo["i"].size
        start = day(lo["month"])
        maturity = (start.astype("datetime64[M]") + lo["term"]).astype("datetime64[D]") + (
            start - start.astype("datetime64[M]").astype("datetime64[D]")
        )
        defaulted = lo["default_month"] >= 0
        dpd90 = ms[np.maximum(lo["default_month"], 0)] + rng.integers(0, 28, n_lo)
        dpd90_known = defaulted & (dpd90 < self.extract_date)
        minor = rng.random(n_lo) < _sigmoid(-2.5 + self.risk[lo["i"]])
        matured = maturity < self.extract_date
        max_dpd = np.where(dpd90_known, rng.integers(90, 360, n_lo), np.where(minor, rng.integers(1, 60, n_lo), 0))
        settled = matured & ~defaulted
        self.tables["loans"] = {
            "loan_id": _ids("LN", self.index, n_lo),
            "uscc": self.uscc[lo["i"]],
            "bank_id": np.array(BANKS)[lo["bank"]],
            "start_date": start,
            "term_months": lo["term"].astype(np.int32),
            "maturity_date": maturity,
            "amount": lo["amount"],
            "max_dpd": max_dpd.astype(np.int32),
            "dpd90_date": np.where(dpd90_known, dpd90, np.datetime64("NaT")),
            "settled_date": np.where(settled, maturity + rng.integers(-20, 1, n_lo), np.datetime64("NaT")),
            "status": np.where(
                dpd90_known, "违约", np.where(settled, "结清", np.where(minor & ~matured, "逾期", "正常"))
            ),
        }
        self.other_tables()
        self.tables["synthetic_truth"] = {
            "uscc": self.uscc,
            "latent_risk": np.round(self.risk, 6),
            "monthly_hazard": self.hazard,
            "p_adverse_12m": 1 - (1 - self.hazard) ** 12,
        }

    def other_tables(self) -> None:
        """Licensing, other administrative actions, tax ratings, housing fund, real estate, R&D, objections."""
        rng, n, m, ms = self.rng, self.n, self.cfg.months, self.month_start
        never = np.datetime64("NaT")
        alive = self.alive
        risk_t = self.risk_t

        def day(month: np.ndarray) -> np.ndarray:
            return ms[month] + rng.integers(0, 28, month.size)

        def draws(rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return _poisson_draws(rng, rate * alive)

        # 行政许可
        busy = np.isin(self.industry, [schema.INDUSTRIES.index(x) for x in ("C", "F", "G", "H", "I")])
        li, lm = draws(np.full((n, m), 1.0) * np.where(busy, 0.012, 0.005)[:, None])
        issued = day(lm)
        revoked = rng.random(li.size) < _sigmoid(-4.5 + self.risk[li])
        revoked_date = issued + rng.integers(60, 900, li.size)
        self.tables["licenses"] = {
            "license_id": _ids("XK", self.index, li.size),
            "uscc": self.uscc[li],
            "license_type": np.array(schema.LICENSE_TYPES)[rng.integers(0, len(schema.LICENSE_TYPES), li.size)],
            "issued_date": issued,
            "valid_until": issued + rng.choice([1095, 1826], li.size),
            "revoked_date": np.where(revoked & (revoked_date < self.extract_date), revoked_date, never),
        }

        # 行政检查、奖励、强制、确认
        parts = []
        for kind, rate, results in (
            ("行政检查", 0.02 * np.ones((n, m)), None),
            ("行政奖励", 0.002 * np.exp(-risk_t), ("表彰奖励",)),
            ("行政强制", 0.001 * np.exp(1.2 * risk_t), ("查封扣押", "冻结存款")),
            ("行政确认", 0.004 * np.ones((n, m)), ("确认登记",)),
        ):
            ai, am = draws(rate)
            if results is None:  # inspections fail more often at riskier firms
                failed = rng.random(ai.size) < _sigmoid(-2.6 + 1.2 * risk_t[ai, am])
                result = np.where(
                    failed,
                    np.where(rng.random(ai.size) < 0.5, "不合格", "责令整改"),
                    np.where(rng.random(ai.size) < 0.8, "合格", "基本合格"),
                )
            else:
                result = np.array(results)[rng.integers(0, len(results), ai.size)]
            parts.append({"i": ai, "month": am, "type": np.full(ai.size, kind, dtype=object), "result": result})
        act = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        self.tables["admin_actions"] = {
            "action_id": _ids("XZ", self.index, act["i"].size),
            "uscc": self.uscc[act["i"]],
            "action_type": act["type"],
            "domain": np.array(schema.PENALTY_DOMAINS)[rng.integers(0, len(schema.PENALTY_DOMAINS), act["i"].size)],
            "action_date": day(act["month"]),
            "result": act["result"].astype(object),
        }

        # 纳税信用等级: rated each April for the year before, from that year's tax behaviour
        first_year = int(str(ms[0])[:4])
        year_of = first_year + (int(str(ms[0])[5:7]) - 1 + np.arange(m)) // 12
        rows: dict[str, list] = {"uscc": [], "year": [], "rating": [], "rated_date": []}
        filed_mask = self.tax_mask
        for year in np.unique(year_of):
            cols = year_of == year
            rated = np.datetime64(f"{year + 1}-04-01") + rng.integers(0, 28, n)
            months_filed = filed_mask[:, cols].sum(axis=1)
            eligible = (months_filed > 0) & (rated < self.extract_date)
            if not eligible.any():
                continue
            late = (self.tax["late"][:, cols] & self.tax_mask[:, cols]).sum(axis=1)
            arrears = ((self.tax["arrears"][:, cols] > 0) & self.tax_mask[:, cols]).sum(axis=1)
            long_arrears = ((self.tax["arrears_days"][:, cols] > 90) & self.tax_mask[:, cols]).any(axis=1)
            rating = np.select(
                [long_arrears | (arrears >= 4), (arrears >= 2) | (late >= 4), (arrears >= 1) | (late >= 1)],
                ["D", "C", "B"],
                "A",
            )
            new = self.reg_date.astype("datetime64[Y]").astype(int) + 1970 >= year
            rating = np.where(new & (rating != "D"), "M", rating)
            idx = np.flatnonzero(eligible)
            rows["uscc"].append(self.uscc[idx])
            rows["year"].append(np.full(idx.size, year, dtype=np.int32))
            rows["rating"].append(rating[idx])
            rows["rated_date"].append(rated[idx])
        self.tables["tax_ratings"] = {
            k: (np.concatenate(v) if v else np.array([], dtype="datetime64[D]" if k == "rated_date" else object))
            for k, v in rows.items()
        }
        if not rows["year"]:
            self.tables["tax_ratings"]["year"] = np.array([], dtype=np.int32)

        # 住房公积金
        hi, hm = np.nonzero(self.hf_mask)
        self.tables["housing_fund_monthly"] = {
            "uscc": self.uscc[hi],
            "period": ms[hm],
            "report_date": ms[hm] + 27,
            "payers": self.hf_payers[hi, hm].astype(np.int32),
            "paid": np.round(self.hf_paid[hi, hm] - self.hf_arrears[hi, hm], 2),
            "arrears": np.round(self.hf_arrears[hi, hm], 2),
        }

        # 不动产: registered after the enterprise, some mortgaged, a few seized at risky firms
        owned = rng.poisson(REAL_ESTATE_RATE[self.size])
        ri = np.repeat(np.arange(n), owned)
        span = np.maximum((self.extract_date - self.reg_date[ri]).astype(int) - 1, 1)
        registered = self.reg_date[ri] + 1 + (rng.random(ri.size) * (span - 1)).astype(int)
        mortgage = registered + rng.integers(30, 1500, ri.size)
        seized = rng.random(ri.size) < _sigmoid(-4.2 + 1.3 * self.risk[ri])
        seizure = registered + rng.integers(30, 2000, ri.size)
        self.tables["real_estate"] = {
            "property_id": _ids("BDC", self.index, ri.size),
            "uscc": self.uscc[ri],
            "property_type": np.array(schema.PROPERTY_TYPES)[
                rng.choice(len(schema.PROPERTY_TYPES), ri.size, p=[0.25, 0.3, 0.2, 0.15, 0.1])
            ],
            "area_m2": np.round(rng.lognormal(6.0, 1.0, ri.size), 1),
            "registered_date": registered,
            "mortgage_date": np.where((rng.random(ri.size) < 0.4) & (mortgage < self.extract_date), mortgage, never),
            "seizure_date": np.where(seized & (seizure < self.extract_date), seizure, never),
        }

        # 科技研发: high-tech certificates (three years) and patents
        tech = np.isin(self.industry, [schema.INDUSTRIES.index(x) for x in HIGHTECH_INDUSTRIES]) & (self.size <= 2)
        certified = tech & (rng.random(n) < 0.35 * _sigmoid(-0.5 - 1.0 * self.risk))
        ci = np.flatnonzero(certified)
        earliest = np.maximum(self.reg_date[ci], ms[0] - 1000)
        window = np.maximum((self.extract_date - earliest).astype(int) - 1, 1)
        cert_date = earliest + (rng.random(ci.size) * window).astype(int)
        self.tables["hightech_certificates"] = {
            "certificate_no": _ids("GR", self.index, ci.size),
            "uscc": self.uscc[ci],
            "certified_date": cert_date,
            "expiry_date": cert_date + 1095,
        }
        pi, pm = draws(np.where(certified, 0.12, 0.004)[:, None] * np.ones((1, m)))
        self.tables["patents"] = {
            "patent_no": np.array([f"ZL{self.index:04d}{k:07d}.X" for k in range(pi.size)], dtype=object),
            "uscc": self.uscc[pi],
            "patent_type": np.array(schema.PATENT_TYPES)[rng.choice(3, pi.size, p=[0.3, 0.55, 0.15])],
            "granted_date": day(pm),
        }

        # 异议: some penalties and list entries are disputed; deletion only for records the
        # enterprise was right about (never the adverse events, so the true probabilities hold)
        pen = self.tables["penalties"]
        disputed = rng.random(len(pen["penalty_id"])) < 0.04
        serious = self.tables["serious_dishonesty_list"]
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
        deletable = np.concatenate([~self.penalty_rows["adverse"][disputed], np.zeros(int(s_disputed.sum()), bool)])
        k = record_id.size
        raised = base + rng.integers(5, 120, k)
        resolved = raised + np.where(rng.random(k) < 0.9, rng.integers(3, 21, k), rng.integers(21, 45, k))
        u = rng.random(k)
        result = np.where(deletable & (u < 0.3), "删除", np.where(u < 0.85, "维持", "更正"))
        keep = raised < self.extract_date
        done = resolved < self.extract_date
        self.tables["objections"] = {
            "objection_id": _ids("YY", self.index, int(keep.sum())),
            "uscc": owner[keep],
            "record_table": record_table[keep],
            "record_id": record_id[keep],
            "raised_date": raised[keep],
            "resolved_date": np.where(done, resolved, never)[keep],
            "result": np.where(done, result, np.array(None))[keep],
        }


def _poisson_draws(rng: np.random.Generator, rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(enterprise, month) of every event of an enterprise x month Poisson rate, one pair per event."""
    counts = rng.poisson(rate)
    i, month = np.nonzero(counts)
    reps = counts[i, month]
    return np.repeat(i, reps), np.repeat(month, reps)


def _ids(prefix: str, chunk: int, n: int) -> np.ndarray:
    return np.array([f"{prefix}{chunk:04d}{k:07d}" for k in range(n)], dtype=object)


def _index_by(owner: np.ndarray) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for k, i in enumerate(owner.tolist()):
        out.setdefault(i, []).append(k)
    return out


# ---------------------------------------------------------------------------- output


def _inject_errors(
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


def _arrow(table: schema.Table, data: dict[str, np.ndarray]) -> pa.Table:
    types = {
        "VARCHAR": pa.string(),
        "DOUBLE": pa.float64(),
        "INTEGER": pa.int32(),
        "DATE": pa.date32(),
        "BOOLEAN": pa.bool_(),
    }
    arrays = []
    for col in table.columns:
        values = data[col.name]
        if col.dtype == "DATE":
            values = values.astype("datetime64[D]")
            arrays.append(pa.array(values, type=pa.date32(), mask=np.isnat(values)))
        else:
            arrays.append(pa.array(values, type=types[col.dtype]))
    return pa.Table.from_arrays(arrays, names=table.column_names)


def iter_chunks(cfg: GeneratorConfig) -> Iterator[_Chunk]:
    """Generate the enterprises chunk by chunk; each chunk has its own seeded random stream."""
    streams = np.random.SeedSequence(cfg.seed).spawn((cfg.enterprises + cfg.chunk_size - 1) // cfg.chunk_size)
    for index, stream in enumerate(streams):
        offset = index * cfg.chunk_size
        n = min(cfg.chunk_size, cfg.enterprises - offset)
        chunk = _Chunk(cfg, index, offset, n, np.random.default_rng(stream))
        chunk.enterprises()
        chunk.monthly()
        chunk.records()
        chunk.build_tables()
        yield chunk


def generate(cfg: GeneratorConfig, out: Path, progress: Callable[[int], None] | None = None) -> dict:
    """Write every table as Parquet under ``out`` plus ``manifest.json``; return the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    writers: dict[str, pq.ParquetWriter] = {}
    rows: dict[str, int] = {name: 0 for name in schema.TABLES}
    injected: dict[str, dict[str, int]] = {}
    pilot = 0
    events = 0
    extract_date = None
    error_rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 1]))
    try:
        for chunk in iter_chunks(cfg):
            extract_date = chunk.extract_date
            pilot += chunk.pilot_codes
            events += int(chunk.events["i"].size)
            corrupted: set[str] = set()
            for name, data in chunk.tables.items():
                table = schema.TABLES[name]
                if name in schema.RECORD_TABLES and cfg.error_rate > 0:
                    if name == "objections":  # an objection about a corrupted record points at nothing
                        dangling = int(np.isin(data["record_id"], list(corrupted)).sum())
                        if dangling:
                            injected.setdefault(name, {}).setdefault("dangling_reference", 0)
                            injected[name]["dangling_reference"] += dangling
                    counts, hit = _inject_errors(table, data, error_rng, cfg.error_rate, chunk.extract_date)
                    for kind, k in counts.items():
                        injected.setdefault(name, {}).setdefault(kind, 0)
                        injected[name][kind] += k
                    if name in ("penalties", "serious_dishonesty_list"):
                        corrupted.update(data[table.key[0]][hit].tolist())
                arrow = _arrow(table, data)
                if name not in writers:
                    writers[name] = pq.ParquetWriter(out / f"{name}.parquet", arrow.schema, compression="zstd")
                writers[name].write_table(arrow)
                rows[name] += arrow.num_rows
            if progress:
                progress(chunk.n)
        lo, hi = cfg.regime_window
        base = np.datetime64(cfg.start, "M")
        regimes = {
            "industry": np.array([cfg.regime_industry], dtype=object),
            "start_month": np.array([base + lo]).astype("datetime64[D]"),
            "end_month": np.array([base + hi]).astype("datetime64[D]"),
            "risk_shift": np.array([cfg.regime_shift]),
            "logit_shift": np.array([cfg.regime_shift * cfg.hazard_slope]),
        }
        pq.write_table(_arrow(schema.TABLES["synthetic_regimes"], regimes), out / "synthetic_regimes.parquet")
        rows["synthetic_regimes"] = 1
    finally:
        for w in writers.values():
            w.close()
    from scoring import __version__

    manifest = {
        "version": __version__,
        "generator": asdict(cfg),
        "data_start": str(np.datetime64(cfg.start, "M").astype("datetime64[D]")),
        "extract_date": str(extract_date),
        "rows": rows,
        "adverse_events": events,
        "pilot_codes": pilot,
        "injected_errors": injected,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2))
    log.info("generated %s enterprises into %s", cfg.enterprises, out)
    return manifest
