"""The console through HTTP (sessions, search input, the decision index) and the supervision rules behind it."""

from __future__ import annotations

import datetime as dt
import math
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient

from scoring.registry.policy import PolicyError, load_supervision_policy
from scoring.serve.app import create_app
from scoring.serve.console import waterfall
from scoring.serve.store import (
    Event,
    Role,
    append,
    create_key,
    decision_index,
    engine_for,
    open_session,
    revoke_key,
    search_decisions,
    session_key,
)
from scoring.serve.supervision import Population, build_population

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def app_client(served):
    with TestClient(create_app(served.settings)) as c:
        yield c


@pytest.fixture(scope="module")
def policy(served):
    return load_supervision_policy(served.settings.model_spec_path("supervision_policy"))


def test_sign_in_sets_a_strict_http_only_session_cookie_and_no_key_in_a_url(app_client, keys) -> None:
    answer = app_client.post("/console/login", data={"api_key": keys.regulator}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/console/decisions"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert keys.regulator not in cookie and keys.regulator not in answer.headers["location"]
    app_client.cookies.clear()


def test_the_sign_in_form_sends_back_only_to_the_console(app_client, keys) -> None:
    for target, expected in (
        ("/console/alerts", "/console/alerts"),
        ("//elsewhere.example/x", "/console/decisions"),
        ("https://elsewhere.example/", "/console/decisions"),
        ("/console/..//elsewhere.example", "/console/decisions"),
    ):
        answer = app_client.post(
            "/console/login", data={"api_key": keys.analyst, "next": target}, follow_redirects=False
        )
        assert answer.headers["location"] == expected, target
    app_client.cookies.clear()


def test_a_revoked_key_ends_its_sessions_at_once(app_client, served) -> None:
    engine = engine_for(served.settings.decision_url)
    secret, record = create_key(engine, role=Role.REGULATOR, label="to revoke")
    app_client.post("/console/login", data={"api_key": secret})
    assert app_client.get("/console/supervision").status_code == 200
    assert revoke_key(engine, record.key_id)
    gone = app_client.get("/console/supervision", follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"].startswith("/console/login")
    app_client.cookies.clear()


def test_an_expired_session_is_no_session(served) -> None:
    engine = engine_for(served.settings.decision_url)
    _, record = create_key(engine, role=Role.ANALYST, label="expiring")
    assert session_key(engine, open_session(engine, record, hours=1)) == record
    assert session_key(engine, open_session(engine, record, hours=-1)) is None
    assert session_key(engine, "not-a-token") is None


def test_bad_search_input_is_named_not_crashed(app_client, keys) -> None:
    app_client.post("/console/login", data={"api_key": keys.regulator})
    bad_day = app_client.get("/console/decisions", params={"day_from": "2026-13-01"})
    assert bad_day.status_code == 422 and "起始日期“2026-13-01”不是YYYY-MM-DD格式" in bad_day.text
    bad_grade = app_client.get("/console/decisions", params={"grade": "E"})
    assert bad_grade.status_code == 422 and "等级“E”不是A/B/C/D之一" in bad_grade.text
    assert app_client.get("/console/decisions/not-a-uuid").status_code == 404
    assert app_client.get("/console/enterprises/91320100748204660Q").status_code == 404
    app_client.cookies.clear()


def _decision(grade: str, uscc: str, bank: str | None = None) -> Event:
    payload = {
        "name": f"企业{uscc[-3:]}",
        "evaluation": {"grade": grade, "score": 600, "model": {"name": "m", "version": "1"}},
    }
    return Event(kind="evaluation", payload=payload, uscc=uscc)


def test_the_decision_index_follows_appends_and_is_rebuilt_for_an_older_store(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'decisions.db'}"
    engine = engine_for(url)
    ids = append(engine, [_decision("B", "91320100748204660Q"), _decision("D", "91430122707233692A")])
    append(engine, [Event(kind="refusal", payload={"code": "x"})])  # not a decision: not indexed
    found, more = search_decisions(engine, grade="D")
    assert [r["event_id"] for r in found] == [ids[1]] and not more
    assert found[0]["name"] == "企业92A" and found[0]["model"] == "m v1"
    with engine.begin() as con:  # a store written before the index existed
        con.execute(decision_index.delete())
    engine.dispose()
    engine = engine_for(url)
    everything, _ = search_decisions(engine)
    assert [r["event_id"] for r in everything] == ids[::-1]
    assert search_decisions(engine, usccs=[]) == ([], False)
    page, more = search_decisions(engine, limit=1)
    assert len(page) == 1 and more


def _warehouse_copy(served, tmp_path: Path) -> Path:
    target = tmp_path / "warehouse.duckdb"
    shutil.copy(served.settings.warehouse_path, target)
    return target


def test_alerts_count_penalties_in_one_or_several_domains_and_not_repaired_ones(
    app_client, served, policy, tmp_path
) -> None:
    service = app_client.app.state.service
    as_of = service.online.as_of
    warehouse = _warehouse_copy(served, tmp_path)
    con = duckdb.connect(str(warehouse))
    start = as_of - dt.timedelta(days=330)
    quiet = con.execute(
        "SELECT uscc FROM feature_snapshots WHERE as_of = ? AND uscc NOT IN "
        "(SELECT uscc FROM penalties WHERE decision_date >= ?) ORDER BY uscc LIMIT 2",
        [as_of, start],
    ).fetchall()
    one, several = quiet[0][0], quiet[1][0]

    def penalty(pid: str, uscc: str, domain: str, days_before: int, repaired: dt.date | None = None) -> None:
        con.execute(
            "INSERT INTO penalties (penalty_id, uscc, domain, severity, amount, decision_date, repair_date) "
            "VALUES (?, ?, ?, '一般', 5000, ?, ?)",
            [pid, uscc, domain, as_of - dt.timedelta(days=days_before), repaired],
        )

    for i in range(3):
        penalty(f"T-ONE-{i}", one, "生态环境", 20 + 60 * i)
    for i, domain in enumerate(("税务", "交通运输", "卫生健康")):
        penalty(f"T-SEV-{i}", several, domain, 30 + 50 * i)
    penalty("T-OLD", several, "税务", 400)  # before the 12-month window: does not count
    con.close()

    def alerts_of(uscc: str, not_counted: set[str] = frozenset()) -> dict[str, list]:
        pop = build_population(warehouse, service.models.evaluation, policy, as_of=as_of, not_counted=set(not_counted))
        return {a.kind: a for a in pop.alerts() if a.uscc == uscc}

    found = alerts_of(one)
    assert set(found) == {"repeat_in_domain"}
    assert found["repeat_in_domain"].departments == ["生态环境局"] and "生态环境领域受到行政处罚3次" in (
        found["repeat_in_domain"].detail_zh
    )
    spread = alerts_of(several)
    assert set(spread) == {"several_domains"}
    assert sorted(spread["several_domains"].departments) == sorted(["税务局", "交通运输局", "卫生健康委员会"])
    # deleted after an objection: no longer counts, so two penalties are left and no alert
    assert alerts_of(one, {"T-ONE-0"}) == {}
    # repaired before the evaluation date (信用修复): no longer counts either
    con = duckdb.connect(str(warehouse))
    con.execute("UPDATE penalties SET repair_date = ? WHERE penalty_id = 'T-SEV-2'", [as_of - dt.timedelta(days=5)])
    con.close()
    assert alerts_of(several) == {}


def test_a_sharp_score_drop_is_flagged_from_the_policy_threshold(policy) -> None:
    drop = policy.alerts.score_drop_points
    frame = pd.DataFrame(
        {
            "uscc": ["U1", "U2", "U3"],
            "name": ["甲", "乙", "丙"],
            "industry": ["F", "F", "C"],
            "division": ["341302"] * 3,
            "score": [500, 500, 500],
            "grade": ["C", "C", "C"],
            "previous_score": [500 + drop, 500 + drop - 1, None],
            "previous_grade": ["A", "A", None],
        }
    )
    penalties = pd.DataFrame(
        {"penalty_id": ["P1"], "uscc": ["U1"], "domain": ["市场监管"], "severity": ["一般"], "decision_date": [None]}
    )
    pop = Population(
        model="m v1",
        as_of=dt.date(2026, 1, 1),
        previous_as_of=dt.date(2025, 1, 1),
        frame=frame,
        penalties=penalties,
        policy=policy,
    )
    drops = [a for a in pop.alerts() if a.kind == "score_drop"]
    assert [a.uscc for a in drops] == ["U1"]
    assert drops[0].departments == ["市场监督管理局"] and f"下降{int(drop)}分" in drops[0].detail_zh
    plan = {r["grade"]: r for r in pop.inspections()}
    assert plan["C"]["enterprises"] == 3 and plan["C"]["planned"] == math.ceil(3 * policy.inspection["C"].share)
    assert pop.distribution("industry").loc["F", "C"] == 2


def test_the_supervision_policy_names_the_file_and_field_of_a_fault(tmp_path) -> None:
    good = yaml.safe_load((REPO / "models" / "supervision_policy.yaml").read_text(encoding="utf-8"))
    lower = {**good, "inspection": {**good["inspection"], "D": {"share": 0.01, "measure_zh": "x"}}}
    path = tmp_path / "supervision_policy.yaml"
    path.write_text(yaml.safe_dump(lower, allow_unicode=True), encoding="utf-8")
    with pytest.raises(PolicyError, match="a worse grade is inspected more"):
        load_supervision_policy(path)
    typo = {**good, "alerts": {**good["alerts"], "repeat_in_domian": 3}}
    path.write_text(yaml.safe_dump(typo, allow_unicode=True), encoding="utf-8")
    with pytest.raises(PolicyError, match=r"supervision_policy.yaml: alerts.repeat_in_domian"):
        load_supervision_policy(path)


def test_the_waterfall_adds_up_to_the_score() -> None:
    points = {f"f{i}": (-1) ** i * (20 - i) for i in range(20)}
    labels = {f"f{i}": (f"特征{i}", i) for i in range(20)}
    chart = waterfall(500.0, points, labels, top=5)
    assert len(chart["steps"]) == 6 and chart["steps"][-1]["label"] == "其余15项"
    assert math.isclose(chart["total"], 500.0 + sum(points.values()))
    assert [s["feature"] for s in chart["steps"][:5]] == ["f0", "f1", "f2", "f3", "f4"]  # largest first
    for s, following in zip(chart["steps"], chart["steps"][1:], strict=False):
        assert math.isclose(s["start"] + s["points"], following["start"])
