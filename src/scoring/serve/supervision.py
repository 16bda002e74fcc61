"""分级分类监管 and 风险预警: the champion's grade for every enterprise, what it means for inspections, and alerts.

The console's supervision and alert pages read this. The grades are the served champion's, on
the snapshot the service serves (and, for score drops, on the stored snapshot before it), so a
supervisor sees the same grade that an evaluation of the enterprise through the API would give.
The policy (models/supervision_policy.yaml) says each grade's share of random inspections
(双随机抽查) and the thresholds of the alerts.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from scoring.batch.stored import current_grades
from scoring.domain.models import LoadedModel
from scoring.domain.policy import SupervisionPolicy
from scoring.domain.scorer import Scorer
from scoring.features.build import SNAPSHOT_TABLE

GRADES = ("A", "B", "C", "D")
log = logging.getLogger(__name__)


def snapshot_dates(con: duckdb.DuckDBPyConnection) -> list[dt.date]:
    return [r[0] for r in con.execute(f"SELECT DISTINCT as_of FROM {SNAPSHOT_TABLE} ORDER BY as_of").fetchall()]  # nosec B608 # a constant table name, no value


def grade_snapshot(
    con: duckdb.DuckDBPyConnection, scorer: Scorer, *, as_of: dt.date | None, uscc: str | None = None
) -> pd.DataFrame:
    """The model's evaluation of every enterprise (or one) in the stored snapshot at ``as_of`` (None: every date).

    Reads the snapshot rows (each built from records dated before its as-of date) and the registry
    of enterprises. Columns: as_of, uscc, name, industry, division, probability, score, model_grade, grade.
    """
    cols = ", ".join(f's."{f}"' for f in scorer.config.features)
    where: list[str] = ["TRUE"]
    params: dict[str, Any] = {}
    if as_of is not None:
        where.append("s.as_of = $as_of")
        params["as_of"] = as_of
    if uscc is not None:
        where.append("s.uscc = $uscc")
        params["uscc"] = uscc
    frame = con.execute(
        f"SELECT s.as_of, s.uscc, e.name, e.industry, e.division, {cols} FROM {SNAPSHOT_TABLE} s "  # nosec B608 # the champion's feature names and a constant table; values bound
        f"JOIN enterprises e ON e.uscc = s.uscc WHERE {' AND '.join(where)} ORDER BY s.as_of, s.uscc",
        params,
    ).df()
    decided = scorer.decide(scorer.matrix(frame)) if len(frame) else pd.DataFrame(columns=list(_DECIDED))
    out = frame[["as_of", "uscc", "name", "industry", "division"]].reset_index(drop=True)
    out["as_of"] = [d.date() if hasattr(d, "date") else d for d in out["as_of"]]
    for c in _DECIDED:
        out[c] = decided[c].to_numpy() if len(frame) else pd.Series(dtype=object)
    out["score"] = out["score"].astype(int) if len(out) else out["score"]
    return out


_DECIDED = ("probability", "score", "model_grade", "grade")


def grade_history(con: duckdb.DuckDBPyConnection, scorer: Scorer, *, uscc: str) -> pd.DataFrame:
    """One enterprise's evaluation at every stored snapshot date, by the same model (oldest first)."""
    return grade_snapshot(con, scorer, as_of=None, uscc=uscc)[["as_of", "probability", "score", "model_grade", "grade"]]


def counted_penalties(
    con: duckdb.DuckDBPyConnection, *, as_of: dt.date, months: int, not_counted: set[str]
) -> pd.DataFrame:
    """Administrative penalties (行政处罚) decided in the ``months`` before ``as_of`` that still count.

    Reads penalties dated before ``as_of``; those repaired (信用修复) before ``as_of`` and the ids
    in ``not_counted`` (deleted after an objection, as the record rules say) are left out.
    """
    start = (pd.Timestamp(as_of) - pd.DateOffset(months=months)).date()
    frame = con.execute(
        "SELECT penalty_id, uscc, domain, severity, decision_date FROM penalties "
        "WHERE decision_date >= $start AND decision_date < $as_of "
        "AND (repair_date IS NULL OR repair_date >= $as_of)",
        {"start": start, "as_of": as_of},
    ).df()
    return frame[~frame["penalty_id"].isin(not_counted)].reset_index(drop=True)


@dataclass(frozen=True)
class Alert:
    """One enterprise flagged to a supervising department (风险预警)."""

    uscc: str
    name: str
    kind: str  # repeat_in_domain, several_domains, score_drop
    kind_zh: str
    detail_zh: str
    domains: list[str]
    departments: list[str]
    grade: str
    score: int


@dataclass
class Population:
    """Every enterprise's current grade (and the previous one), with the supervision views."""

    model: str
    as_of: dt.date
    previous_as_of: dt.date | None
    frame: pd.DataFrame  # uscc, name, industry, division, score, grade, previous_score, previous_grade
    penalties: pd.DataFrame
    policy: SupervisionPolicy
    built_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    _alerts: list[Alert] | None = field(default=None, repr=False)
    _tables: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    def distribution(self, by: str) -> pd.DataFrame:
        """Enterprises per grade for each value of ``by`` (industry or division), with the total (computed once)."""
        if by not in self._tables:
            table = pd.crosstab(self.frame[by], self.frame["grade"]).reindex(columns=list(GRADES), fill_value=0)
            table["total"] = table.sum(axis=1)
            self._tables[by] = table.sort_index()
        return self._tables[by]

    def inspections(self) -> list[dict[str, Any]]:
        """Per grade: enterprises, the policy's share of random inspections, the planned number and the measure."""
        counts = self.frame["grade"].value_counts()
        out = []
        for g in GRADES:
            rule = self.policy.inspection.get(g)
            n = int(counts.get(g, 0))
            out.append(
                {
                    "grade": g,
                    "enterprises": n,
                    "share": rule.share if rule else None,
                    "planned": int(np.ceil(n * rule.share)) if rule else None,
                    "measure_zh": rule.measure_zh if rule else "",
                }
            )
        return out

    def alerts(self) -> list[Alert]:
        """Repeated violations in one domain, violations in several domains, and sharp score drops (computed once)."""
        if self._alerts is None:
            self._alerts = self._find_alerts()
        return self._alerts

    def _find_alerts(self) -> list[Alert]:
        rules, policy = self.policy.alerts, self.policy
        known = self.frame.set_index("uscc")
        window = f"近{rules.window_months}个月"
        out: list[Alert] = []

        def who(uscc: str) -> tuple[str, str, int]:
            row = known.loc[uscc]
            return str(row["name"]), str(row["grade"]), int(row["score"])

        # enterprises out of the evaluation population (deregistered, 注销) are no longer supervised here
        penalties = self.penalties[self.penalties["uscc"].isin(known.index)]
        per_domain = penalties.groupby(["uscc", "domain"]).size().rename("n").reset_index()
        for r in per_domain[per_domain["n"] >= rules.repeat_in_domain].itertuples():
            name, grade, score = who(str(r.uscc))
            out.append(
                Alert(
                    uscc=str(r.uscc),
                    name=name,
                    kind="repeat_in_domain",
                    kind_zh="同一领域反复违法",
                    detail_zh=f"{window}在{r.domain}领域受到行政处罚{r.n}次",
                    domains=[str(r.domain)],
                    departments=[policy.department(str(r.domain))],
                    grade=grade,
                    score=score,
                )
            )
        domains = penalties.groupby("uscc")["domain"].agg(lambda s: sorted(set(s)))
        for uscc, ds in domains.items():
            if len(ds) >= rules.several_domains:
                name, grade, score = who(str(uscc))
                out.append(
                    Alert(
                        uscc=str(uscc),
                        name=name,
                        kind="several_domains",
                        kind_zh="多领域违法",
                        detail_zh=f"{window}在{len(ds)}个领域受到行政处罚：{'、'.join(ds)}",
                        domains=list(ds),
                        departments=[policy.department(d) for d in ds],
                        grade=grade,
                        score=score,
                    )
                )
        if self.previous_as_of is not None:
            f = self.frame.dropna(subset=["previous_score"])
            drop = f["previous_score"] - f["score"]
            for r in f[drop >= rules.score_drop_points].itertuples():
                ds = domains.get(r.uscc, [])
                out.append(
                    Alert(
                        uscc=str(r.uscc),
                        name=str(r.name),
                        kind="score_drop",
                        kind_zh="评分大幅下降",
                        detail_zh=(
                            f"评分由{int(r.previous_score)}（{r.previous_grade}，{self.previous_as_of}）"
                            f"降至{int(r.score)}（{r.grade}，{self.as_of}），下降{int(r.previous_score - r.score)}分"
                        ),
                        domains=list(ds),
                        departments=[policy.department(d) for d in ds] or [policy.default_department],
                        grade=str(r.grade),
                        score=int(r.score),
                    )
                )
        order = {"repeat_in_domain": 0, "several_domains": 1, "score_drop": 2}
        return sorted(out, key=lambda a: (order[a.kind], a.score, a.uscc))


def _graded(con: duckdb.DuckDBPyConnection, model: LoadedModel, as_of: dt.date) -> pd.DataFrame:
    """The population at ``as_of`` with its grades: those `scoring score` stored when they are current
    (the served version, the stored snapshot), else graded here."""
    scorer = model.scorer
    assert isinstance(scorer, Scorer)
    stored = current_grades(con, version=model.version, as_of=as_of)
    if stored is None:
        return grade_snapshot(con, scorer, as_of=as_of)
    log.info("supervision reads the grades stored by `scoring score` at %s", as_of)
    who = con.execute(
        f"SELECT s.as_of, s.uscc, e.name, e.industry, e.division FROM {SNAPSHOT_TABLE} s "  # nosec B608 # a constant table name; values bound
        "JOIN enterprises e ON e.uscc = s.uscc WHERE s.as_of = ? ORDER BY s.uscc",
        [as_of],
    ).df()
    who["as_of"] = [d.date() if hasattr(d, "date") else d for d in who["as_of"]]
    out = who.merge(stored, on="uscc", how="inner")
    out["score"] = out["score"].astype(int)
    return out[["as_of", "uscc", "name", "industry", "division", *_DECIDED]]


def build_population(
    warehouse: Path,
    model: LoadedModel,
    policy: SupervisionPolicy,
    *,
    as_of: dt.date,
    not_counted: set[str],
) -> Population:
    """Grade every enterprise at ``as_of`` and at the stored snapshot before it, and gather the penalties."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        current = _graded(con, model, as_of)
        earlier = [d for d in snapshot_dates(con) if d < as_of]
        previous_as_of = earlier[-1] if earlier else None
        if previous_as_of is not None:
            before = _graded(con, model, previous_as_of)[["uscc", "score", "grade"]]
            current = current.merge(
                before.rename(columns={"score": "previous_score", "grade": "previous_grade"}), on="uscc", how="left"
            )
        else:
            current["previous_score"], current["previous_grade"] = np.nan, None
        penalties = counted_penalties(con, as_of=as_of, months=policy.alerts.window_months, not_counted=not_counted)
    finally:
        con.close()
    return Population(
        model=f"{model.name} v{model.version}",
        as_of=as_of,
        previous_as_of=previous_as_of,
        frame=current,
        penalties=penalties,
        policy=policy,
    )


class PopulationCache:
    """The population of the served champion and snapshot, built once per model version and snapshot.

    Built in the background when the service starts or swaps models (a city of a million
    enterprises takes seconds), so the pages that read it answer at once. While a new one is being
    built, readers get the previous one (each page names the model and date it shows), or None.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: tuple[str, Population] | None = None

    def get(self, label: str, build: Callable[[], Population]) -> Population | None:
        """The population labelled ``label`` ("name vN @ date"), built by ``build`` if no one is building."""
        got = self._current
        if got is not None and got[0] == label:
            return got[1]
        if not self._lock.acquire(blocking=False):  # being built by another request or the warm-up
            return got[1] if got is not None else None
        try:
            got = self._current
            if got is None or got[0] != label:
                got = self._current = (label, build())
            return got[1]
        finally:
            self._lock.release()

    def warm(self, label: str, build: Callable[[], Population]) -> None:
        def run() -> None:
            try:
                self.get(label, build)
            except Exception:  # a page asking later builds it again and shows the error
                log.exception("building the supervision population failed")

        threading.Thread(target=run, name="population", daemon=True).start()
