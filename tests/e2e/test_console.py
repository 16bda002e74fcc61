"""The console in a real headless Chromium (the OS package), driven by Playwright, against the real server."""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import shutil

import duckdb
import httpx
import pytest

from scoring.domain.policy import load_supervision_policy
from scoring.serve.console.views import BEIJING
from scoring.store import engine_for
from tests.conftest import authorize, skip_or_fail

pytestmark = pytest.mark.e2e


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser():
    path = _chromium()
    if path is None:
        skip_or_fail("no Chromium on PATH (Debian package chromium): the console browser tests did not run")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # as root, Chromium runs only without its sandbox (CI runs as root)
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        b = p.chromium.launch(executable_path=path, args=args, headless=True)
        yield b
        b.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(locale="zh-CN")
    pg = context.new_page()
    yield pg
    context.close()


@pytest.fixture(scope="module")
def made(server, served, keys) -> dict:
    """A pre-credit decision of BANK_A and an evaluation by the analyst, made through the API."""
    engine = engine_for(served.settings.decision_url)
    con = duckdb.connect(str(served.settings.warehouse_path), read_only=True)
    try:
        uscc, name = con.execute(
            "SELECT s.uscc, e.name FROM feature_snapshots s JOIN enterprises e USING (uscc) "
            "WHERE s.as_of = (SELECT max(as_of) FROM feature_snapshots) AND s.penalty_count_12m >= 1 "
            "AND s.tax_months_filed_12m >= 6 ORDER BY s.uscc LIMIT 1"
        ).fetchone()
    finally:
        con.close()
    authorize(engine, uscc=uscc, bank_id="BANK_A")
    pre = httpx.post(
        f"{server}/v1/pre-credit",
        json={"uscc": uscc, "reference": "console-e2e"},
        headers={"Authorization": f"Bearer {keys.bank_a}"},
        timeout=30,
    )
    assert pre.status_code == 200, pre.text
    ev = httpx.post(
        f"{server}/v1/evaluations", json={"uscc": uscc}, headers={"Authorization": f"Bearer {keys.analyst}"}, timeout=30
    )
    assert ev.status_code == 200, ev.text
    return {"uscc": uscc, "name": name, "pre_credit": pre.json(), "evaluation": ev.json(), "bank_key": keys.bank_a}


def _sign_in(page, server: str, key: str) -> None:
    page.goto(f"{server}/console")
    assert "/console/login" in page.url  # signed out: the sign-in form
    page.fill("input[name=api_key]", key)
    page.click("button[type=submit]")


def _search(page, server: str, **fields: str) -> list[str]:
    """Search the decisions and return the decision ids listed."""
    page.goto(f"{server}/console/decisions")
    for name, value in fields.items():
        if name in ("grade", "kind"):
            page.select_option(f"select[name={name}]", value)
        else:
            page.fill(f"input[name={name}]", value)
    page.click("form.search button[type=submit]")
    links = page.locator("#results a[href^='/console/decisions/']")
    return [str(h).rsplit("/", 1)[-1] for h in links.evaluate_all("els => els.map(e => e.getAttribute('href'))")]


def test_regulator_signs_in_searches_opens_the_chart_and_replays(page, server, keys, made) -> None:
    _sign_in(page, server, keys.regulator)
    assert page.url.endswith("/console/decisions")
    assert keys.regulator not in page.url
    cookie = next(c for c in page.context.cookies() if c["name"] == "scoring_console")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert cookie["value"] != keys.regulator  # a session token, never the key
    assert page.evaluate("document.cookie") == ""  # scripts cannot read it

    pre_id, ev_id = made["pre_credit"]["decision_id"], made["evaluation"]["decision_id"]
    grade = made["pre_credit"]["grade"]
    other = next(g for g in "ABCD" if g != grade)
    today = dt.datetime.now(BEIJING).date().isoformat()  # the users' day
    assert {pre_id, ev_id} <= set(_search(page, server, q=made["uscc"]))
    assert set(_search(page, server, q=pre_id)) == {pre_id}
    assert pre_id in _search(page, server, q=made["name"][2:6])  # part of the name
    banked = _search(page, server, q=made["uscc"], bank="BANK_A")
    assert pre_id in banked and ev_id not in banked
    assert pre_id not in _search(page, server, q=made["uscc"], bank="BANK_B")
    assert pre_id in _search(page, server, q=made["uscc"], grade=grade)
    assert pre_id not in _search(page, server, q=made["uscc"], grade=other)
    assert pre_id in _search(page, server, q=made["uscc"], day_from=today, day_to=today)
    assert _search(page, server, q=made["uscc"], day_to="2000-01-01") == []

    page.goto(f"{server}/console/decisions?q={made['uscc']}")
    page.click(f"a[href='/console/decisions/{pre_id}']")
    assert page.locator("#score").inner_text() == str(made["pre_credit"]["score"])
    assert (
        page.locator("#limit").is_visible()
        and page.locator("#decision").inner_text() == made["pre_credit"]["decision_zh"]
    )
    chart = page.locator("svg.waterfall").first
    assert chart.is_visible()
    bars = chart.locator("g.bar")
    assert bars.count() >= 5
    labels = " ".join(bars.locator("text").all_text_contents())
    top = made["pre_credit"]["evaluation_reasons"][0]
    assert top["label_zh"] in labels and re.search(r"[\u4e00-\u9fff]", labels)
    # the bars add up: base points plus every contribution is the score (before clipping to 0-1000)
    points = [float(v) for v in bars.evaluate_all("els => els.map(e => e.dataset.points)")]
    base = float(re.search(r"基准分 (-?\d+)", chart.text_content() or "").group(1))
    assert math.isclose(base + sum(points), made["pre_credit"]["score"], abs_tol=1.5) or not (
        0 < made["pre_credit"]["score"] < 1000
    )
    assert page.locator("#reasons tr").count() > 1
    assert page.locator("#policy-steps tr").count() > 1
    assert page.locator("#disputed").is_visible() and page.locator("#excluded").is_visible()

    page.click("#replay-button")
    result = page.locator("#replay-result")
    assert "完全一致" in result.inner_text()

    page.click("a[href^='/console/models/credit_evaluation/']")
    assert "credit_evaluation" in page.locator("h1").inner_text()
    assert len(page.locator("#model-card").inner_text()) > 200


def test_a_bank_key_is_refused_and_audited(page, server, served, keys) -> None:
    engine = engine_for(served.settings.decision_url)
    from scoring.store import events

    before = len(events(engine, kinds=["refusal"], bank_id="BANK_B", limit=10_000))
    _sign_in(page, server, keys.bank_b)
    assert "银行密钥不能登录监管控制台" in page.locator(".error").inner_text()
    assert not [c for c in page.context.cookies() if c["name"] == "scoring_console"]
    page.goto(f"{server}/console/supervision")
    assert "/console/login" in page.url
    after = events(engine, kinds=["refusal"], bank_id="BANK_B", limit=10_000)
    assert len(after) == before + 1 and after[0]["payload"]["request"] == "POST /console/login"


def test_a_wrong_key_is_refused(page, server) -> None:
    _sign_in(page, server, "sk_not_a_key")
    assert "API密钥无效" in page.locator(".error").inner_text()


def test_an_analyst_sees_evaluations_but_not_bank_decisions_and_cannot_replay(page, server, keys, made) -> None:
    _sign_in(page, server, keys.analyst)
    listed = _search(page, server, q=made["uscc"])
    assert made["evaluation"]["decision_id"] in listed and made["pre_credit"]["decision_id"] not in listed
    page.goto(f"{server}/console/decisions/{made['pre_credit']['decision_id']}")
    assert "没有该决定" in page.locator(".error").inner_text()
    page.goto(f"{server}/console/decisions/{made['evaluation']['decision_id']}")
    assert page.locator("svg.waterfall").first.is_visible()
    assert page.locator("#replay-button").count() == 0
    answer = page.request.post(f"{server}/console/decisions/{made['evaluation']['decision_id']}/replay")
    assert answer.status == 403


def test_signing_out_ends_the_session(page, server, keys) -> None:
    _sign_in(page, server, keys.regulator)
    token = next(c for c in page.context.cookies() if c["name"] == "scoring_console")["value"]
    page.click("header form button")
    assert "/console/login" in page.url
    # the old token no longer opens anything, even when sent again by hand
    r = httpx.get(f"{server}/console/alerts", cookies={"scoring_console": token}, follow_redirects=False)
    assert r.status_code == 303 and "/console/login" in r.headers["location"]


def test_supervision_and_alert_pages(page, server, served, keys) -> None:
    policy = load_supervision_policy(served.settings.model_spec_path("supervision_policy"))
    con = duckdb.connect(str(served.settings.warehouse_path), read_only=True)
    try:
        n = con.execute(
            "SELECT count(*) FROM feature_snapshots WHERE as_of = (SELECT max(as_of) FROM feature_snapshots)"
        ).fetchone()[0]
    finally:
        con.close()
    _sign_in(page, server, keys.regulator)
    page.goto(f"{server}/console/supervision")
    rows = page.locator("#inspections tr")
    cells = [rows.nth(i).locator("td").all_inner_texts() for i in range(1, 5)]
    counts = {c[0]: int(c[1].replace(",", "")) for c in cells}
    assert sum(counts.values()) == n
    for c in cells:  # planned inspections: the policy's share of the grade's enterprises, rounded up
        assert int(c[4].replace(",", "")) == math.ceil(counts[c[0]] * policy.inspection[c[0]].share)
    total_row = page.locator("#distribution tr").last.locator("th").all_inner_texts()
    assert int(total_row[-2].replace(",", "")) == n
    page.goto(f"{server}/console/supervision?by=division")
    assert "灵璧县" in page.locator("#distribution").inner_text()

    page.goto(f"{server}/console/alerts")
    shown = page.locator("#alerts tr")
    assert shown.count() > 1
    departments = set(policy.departments.values()) | {policy.default_department}
    first = shown.nth(1).locator("td").all_inner_texts()
    assert any(d in first[3] for d in departments)
    page.goto(f"{server}/console/alerts?kind=repeat_in_domain")
    texts = page.locator("#alerts tr td:first-child").all_inner_texts()
    assert texts and set(texts) == {"同一领域反复违法"}


def test_enterprise_page_shows_grade_history_and_records(page, server, served, keys, made) -> None:
    con = duckdb.connect(str(served.settings.warehouse_path), read_only=True)
    try:
        dates = con.execute("SELECT count(*) FROM feature_snapshots WHERE uscc = ?", [made["uscc"]]).fetchone()[0]
    finally:
        con.close()
    _sign_in(page, server, keys.regulator)
    page.goto(f"{server}/console/enterprises/{made['uscc']}")
    assert made["name"] in page.locator("h1").inner_text()
    assert page.locator("#history tr").count() == dates + 1
    assert made["pre_credit"]["decision_id"] in page.locator("#stored").inner_html()
    assert page.locator("#counting tr").count() > 1
    assert page.locator("#not-counting").is_visible()


def test_every_page_carries_the_security_headers_and_breaks_none_of_its_rules(page, server, keys, made) -> None:
    """CSP without inline script or style, no framing, no sniffing, no referrer to other sites: on each page,
    and Chromium reports no violation of the policy (a page that still had an inline style would)."""
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    pages = [
        "/console/login",
        "/console/decisions",
        f"/console/decisions/{made['pre_credit']['decision_id']}",
        f"/console/enterprises/{made['uscc']}",
        "/console/supervision",
        "/console/alerts",
    ]
    _sign_in(page, server, keys.regulator)
    for path in pages:
        answer = page.goto(f"{server}{path}")
        assert answer is not None and answer.status == 200, path
        headers = answer.headers
        csp = headers["content-security-policy"]
        assert "'unsafe-inline'" not in csp and "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
        assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "same-origin"
        assert headers["x-frame-options"] == "DENY"
        stylesheets = page.evaluate("document.styleSheets.length")
        assert stylesheets == 1, path  # console.css loaded (the policy allows it), nothing else
    assert violations == []


def test_an_enterprise_signs_in_to_its_own_page_and_sees_who_asked_about_it(page, server, served, made) -> None:
    """Issue 19, item 1: its grade and reasons, its query log (the bank, the purpose, the authorization;
    not the bank's limit), and no supervisor's page."""
    from scoring.store import Role, create_key

    engine = engine_for(served.settings.decision_url)
    secret, _ = create_key(engine, role=Role.ENTERPRISE, uscc=made["uscc"], label="console e2e")
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    _sign_in(page, server, secret)
    assert page.url.endswith("/console/me")
    assert made["name"] in page.locator("h1").inner_text()
    assert page.locator("#evaluation .grade").inner_text() in "ABCD"
    assert page.locator("#reasons li").count() >= 1
    rows = page.locator("#queries tr").all_inner_texts()
    bank_row = next(r for r in rows if "BANK_A" in r)
    assert "信易贷预授信" in bank_row and "已答复" in bank_row
    assert any("分析人员" in r and "分析评估" in r for r in rows)
    limit = made["pre_credit"]["pre_credit_limit"]
    assert f"{limit:,.0f}" not in page.content() and str(limit) not in page.content()
    for other in ("/console/decisions", f"/console/enterprises/{made['uscc']}", "/console/supervision"):
        page.goto(f"{server}{other}")
        assert page.url.endswith("/console/me"), other
    answer = page.goto(f"{server}/console/me")
    assert answer is not None and "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert page.evaluate("document.styleSheets.length") == 1 and violations == []


def test_a_reviewer_concludes_a_review_from_the_queue(page, server, served, made) -> None:
    """Issue 19, item 5: the enterprise asks (API); the reviewer sees the request with the decision in the
    console, overrides the grade with a reason; the bank reads the conclusion beside its unchanged decision."""
    from scoring.store import Role, create_key

    engine = engine_for(served.settings.decision_url)
    enterprise, _ = create_key(engine, role=Role.ENTERPRISE, uscc=made["uscc"], label="review e2e")
    reviewer, _ = create_key(engine, role=Role.REVIEWER, label="复核员甲")
    decision = made["pre_credit"]
    asked = httpx.post(
        f"{server}/v1/decisions/{decision['decision_id']}/reviews",
        json={"reason": "上月已完成信用修复，请复核"},
        headers={"Authorization": f"Bearer {enterprise}"},
        timeout=30,
    )
    assert asked.status_code == 201, asked.text
    review_id = asked.json()["review_id"]
    _sign_in(page, server, reviewer)
    assert page.url.endswith("/console/reviews")
    card = page.locator(f"#review-{review_id}")
    assert "上月已完成信用修复" in card.inner_text() and decision["grade"] in card.inner_text()
    page.goto(f"{server}/console/decisions")  # a supervisor's page: back to the queue
    assert page.url.endswith("/console/reviews")
    grade = "A" if decision["grade"] != "A" else "B"
    card = page.locator(f"#review-{review_id}")
    card.locator("select[name=outcome]").select_option("overridden")
    card.locator("select[name=grade]").select_option(grade)
    card.locator("textarea[name=reason]").fill("修复记录核实无误，等级调整")
    card.locator("button[type=submit]").click()
    assert "复核结论已记录" in page.locator("#done").inner_text()
    assert page.locator(f"#review-{review_id}").count() == 0
    stored = httpx.get(
        f"{server}/v1/decisions/{decision['decision_id']}",
        headers={"Authorization": f"Bearer {made['bank_key']}"},
        timeout=30,
    ).json()
    review = next(r for r in stored["reviews"] if r["review_id"] == review_id)
    assert (review["outcome"], review["grade"]) == ("overridden", grade)
    assert stored["evaluation"]["grade"] == decision["grade"]


def test_an_enterprise_asks_for_a_review_from_its_page_and_reads_the_conclusion(page, server, served, made) -> None:
    """Issue 19, item 5, the enterprise's side in the console: the request with its reason from /console/me,
    the conclusion shown there once a reviewer has decided."""
    from scoring.store import Role, create_key

    engine = engine_for(served.settings.decision_url)
    enterprise, _ = create_key(engine, role=Role.ENTERPRISE, uscc=made["uscc"], label="review page e2e")
    reviewer, _ = create_key(engine, role=Role.REVIEWER, label="复核员乙")
    _sign_in(page, server, enterprise)
    decision = made["evaluation"]["decision_id"]
    page.select_option("#ask-review select[name=decision_id]", decision)
    page.fill("#ask-review textarea[name=reason]", "短")
    page.evaluate("document.querySelector('#ask-review textarea').removeAttribute('minlength')")
    page.click("#ask-review button[type=submit]")
    assert "至少5个字" in page.locator(".error").inner_text()
    page.select_option("#ask-review select[name=decision_id]", decision)
    page.fill("#ask-review textarea[name=reason]", "行政处罚已完成信用修复，请复核等级")
    page.click("#ask-review button[type=submit]")
    review_id = page.locator("#asked").inner_text().split("（", 1)[1].split("）", 1)[0]
    assert "待复核" in page.locator("#review-list").inner_text()
    answered = httpx.post(
        f"{server}/v1/reviews/{review_id}/conclusion",
        json={"outcome": "confirmed", "reason": "修复在评价日之后，维持原等级"},
        headers={"Authorization": f"Bearer {reviewer}"},
        timeout=30,
    )
    assert answered.status_code == 201, answered.text
    page.goto(f"{server}/console/me")
    listed = page.locator("#review-list").inner_text()
    assert "已办结" in listed and "维持原决定" in listed and "修复在评价日之后" in listed
