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

from scoring.domain.policy import PolicyError, load_supervision_policy
from scoring.serve.app import create_app
from scoring.serve.console.views import BEIJING, waterfall
from scoring.serve.supervision import Population, build_population
from scoring.store import (
    Event,
    Purpose,
    Role,
    append,
    create_key,
    decision_index,
    engine_for,
    open_session,
    revoke_key,
    search_decisions,
    session_key,
    verify_chain,
)

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
    far = app_client.get("/console/decisions", params={"day_to": "9999-12-31"})
    assert far.status_code == 422 and "截止日期“9999-12-31”不在2000-01-01至2099-12-31之间" in far.text
    bad_grade = app_client.get("/console/decisions", params={"grade": "E"})
    assert bad_grade.status_code == 422 and "等级“E”不是A/B/C/D之一" in bad_grade.text
    for page in ("abc", "0"):
        bad_page = app_client.get("/console/decisions", params={"page": page})
        assert bad_page.status_code == 422 and f"页码“{page}”" in bad_page.text
    assert app_client.get("/console/decisions").headers["cache-control"] == "no-store"
    assert app_client.get("/console/decisions/not-a-uuid").status_code == 404
    assert app_client.get("/console/enterprises/91320100748204660Q").status_code == 404
    app_client.cookies.clear()


def test_a_form_from_another_site_is_refused(app_client, keys) -> None:
    answer = app_client.post(
        "/console/login",
        data={"api_key": keys.regulator},
        headers={"Origin": "http://elsewhere.example"},
        follow_redirects=False,
    )
    assert answer.status_code == 403 and "拒绝来自其他网站的表单提交" in answer.text
    assert "set-cookie" not in answer.headers


def test_a_replay_after_the_session_ended_returns_to_the_decision_page(app_client) -> None:
    app_client.cookies.clear()
    decision = "0b8e5a3c-6a3a-4a56-9b61-2f35f0a8f0a1"
    answer = app_client.post(f"/console/decisions/{decision}/replay", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/console/login?next=%2Fconsole%2Fdecisions%2F{decision}"
    search = app_client.get("/console/decisions", params={"q": "商贸", "grade": "B"}, follow_redirects=False)
    assert search.headers["location"].endswith(
        "next=%2Fconsole%2Fdecisions%3Fq%3D%25E5%2595%2586%25E8%25B4%25B8%26grade%3DB"
    )


def test_an_analyst_never_sees_what_a_bank_asked(app_client, served, keys) -> None:
    """An evaluation a bank asked for, under the enterprise's authorization of that bank, is the bank's and
    the regulator's alone: the analyst neither finds it nor opens it."""
    from tests.conftest import authorize

    service = app_client.app.state.service
    uscc = service.online.usccs[3]
    authorize(engine_for(served.settings.decision_url), uscc=uscc, bank_id="BANK_A", purpose=Purpose.EVALUATION)
    asked = app_client.post("/v1/evaluations", json={"uscc": uscc}, headers={"Authorization": f"Bearer {keys.bank_a}"})
    assert asked.status_code == 200, asked.text
    decision = asked.json()["decision_id"]
    app_client.post("/console/login", data={"api_key": keys.regulator})
    assert decision in app_client.get("/console/decisions", params={"q": uscc}).text
    app_client.cookies.clear()
    app_client.post("/console/login", data={"api_key": keys.analyst})
    assert decision not in app_client.get("/console/decisions", params={"q": uscc}).text
    assert decision not in app_client.get("/console/decisions", params={"bank": "BANK_A"}).text
    assert app_client.get(f"/console/decisions/{decision}").status_code == 404
    assert decision not in app_client.get(f"/console/enterprises/{uscc}").text
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
    # a store indexed in part (a backfill cut short, or a new worker's appends first) is completed
    with engine.begin() as con:
        con.execute(decision_index.delete().where(decision_index.c.event_id == ids[0]))
    engine.dispose()
    engine = engine_for(url)
    assert [r["event_id"] for r in search_decisions(engine)[0]] == ids[::-1]
    # the index is checked against the chain: an entry changed or removed behind the log's back is reported
    assert verify_chain(engine).intact
    with engine.begin() as con:
        con.execute(decision_index.update().where(decision_index.c.event_id == ids[1]).values(grade="A"))
        con.execute(decision_index.delete().where(decision_index.c.event_id == ids[0]))
    problems = verify_chain(engine).problems
    assert any(ids[1] in p and "disagrees" in p for p in problems)
    assert any(ids[0] in p and "lacks it" in p for p in problems)


def test_search_by_name_part_and_by_the_users_day(tmp_path) -> None:
    engine = engine_for(f"sqlite:///{tmp_path / 'decisions.db'}")
    [b, d] = append(engine, [_decision("B", "91320100748204660Q"), _decision("D", "91430122707233692A")])
    assert [r["event_id"] for r in search_decisions(engine, name="业92")[0]] == [d]
    assert search_decisions(engine, name="%")[0] == []  # a wildcard is a character like any other
    # days are the users' days (Beijing time): today there finds both, yesterday there neither
    beijing = BEIJING
    today = dt.datetime.now(beijing).date()
    found = search_decisions(engine, day_from=today, day_to=today, tz=beijing)[0]
    assert {r["event_id"] for r in found} == {b, d}
    assert search_decisions(engine, day_to=today - dt.timedelta(days=1), tz=beijing)[0] == []


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
    missing = {**good, "inspection": {g: r for g, r in good["inspection"].items() if g != "B"}}
    path.write_text(yaml.safe_dump(missing, allow_unicode=True), encoding="utf-8")
    with pytest.raises(PolicyError, match="exactly the grades A, B, C and D"):
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


def test_failed_sign_ins_lock_the_key_prefix_out_and_the_lock_out_is_audited(app_client, served, keys) -> None:
    from scoring.serve.console.limits import PER_PREFIX
    from scoring.store import events

    engine = engine_for(served.settings.decision_url)
    guesses = [f"sk_Guess{i:02d}xxxxxxxxxxxxxxxxxxxxxxxxx" for i in range(PER_PREFIX + 1)]  # one prefix: sk_Guess
    answers = [app_client.post("/console/login", data={"api_key": g}) for g in guesses]
    assert [a.status_code for a in answers] == [401] * PER_PREFIX + [429]
    assert int(answers[-1].headers["retry-after"]) > 0 and "登录失败次数过多" in answers[-1].text
    locked = [e for e in events(engine, kinds=["console_lockout"]) if e["payload"]["key_prefix"] == "sk_Guess"]
    assert len(locked) == 1 and locked[0]["payload"]["locked"] == "prefix"
    signed_in = app_client.post("/console/login", data={"api_key": keys.regulator}, follow_redirects=False)
    assert signed_in.status_code == 303  # another prefix from the same client is not locked


def test_a_client_that_fails_too_often_is_locked_out_whatever_the_key() -> None:
    from scoring.serve.console.limits import LOCK_SECONDS, PER_CLIENT, SignInLimits

    now = [1000.0]
    limits = SignInLimits(clock=lambda: now[0])
    locked = [limits.failed("10.0.0.9", f"sk_{i:05d}zz") for i in range(PER_CLIENT)]
    assert locked[-1] == ["client:10.0.0.9"] and not any(locked[:-1])
    assert limits.locked("10.0.0.9", "sk_Another") == LOCK_SECONDS and limits.locked("10.0.0.8", "sk_Another") == 0
    now[0] += LOCK_SECONDS
    assert limits.locked("10.0.0.9", "sk_Another") == 0  # the lock-out ends
