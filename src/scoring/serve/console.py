"""The regulator console (监管控制台) at /console: server-rendered pages in Chinese, on the same service.

Signed in with a regulator or analyst API key, typed once into a form: the key never appears in a
URL. The browser then holds only a random session token, in a cookie that is HttpOnly (scripts
cannot read it) and SameSite=Strict (no other site can make the browser send it, so the replay
form needs no CSRF token). Sessions are rows of the decision store, so every server worker
knows them, and a revoked key ends its sessions at once.

A regulator sees every decision, replays any and sees the records excluded from it (信用修复);
an analyst sees evaluations (not the banks' pre-credit decisions, which the enterprise authorized
for that bank alone), the supervision and alert pages, and replays nothing. A bank key is refused,
and the refusal is audited.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import duckdb
from fastapi import APIRouter, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from scoring.data.schema import INDUSTRY_NAMES
from scoring.features.records import record_status
from scoring.registry.policy import PolicyError, SupervisionPolicy, load_supervision_policy
from scoring.registry.scorer import Scorer
from scoring.serve.deps import ROLE_ZH, ApiError, ServiceState, refuse
from scoring.serve.store import (
    DECISION_KINDS,
    ApiKey,
    Event,
    Role,
    append,
    authenticate,
    end_session,
    get_decision,
    open_session,
    search_decisions,
    session_key,
)
from scoring.serve.supervision import GRADES, Population, PopulationCache, build_population, grade_history

COOKIE = "scoring_console"
SESSION_HOURS = 8
CONSOLE_ROLES = (Role.REGULATOR, Role.ANALYST)
KIND_ZH = {"evaluation": "公共信用综合评价", "pre_credit": "信易贷预授信"}
TABLE_ZH = {
    "penalties": "行政处罚",
    "serious_dishonesty_list": "严重失信主体名单",
    "executee_list": "失信被执行人",
    "commitments": "信用承诺",
    "admin_actions": "其他行政行为",
    "licenses": "行政许可",
    "tax_ratings": "纳税信用等级",
    "tax_monthly": "纳税申报（按月）",
    "utility_monthly": "水电气缴费（按月）",
    "social_insurance_monthly": "社会保险（按月）",
    "housing_fund_monthly": "住房公积金（按月）",
    "loans": "信易贷贷款",
}
TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")


class SignedOut(Exception):
    """No valid console session: go to the sign-in page."""


def _value(v: Any) -> str:
    """A feature value as a person reads it."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "缺失"
    if isinstance(v, bool):
        return "是" if v else "否"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}" if v != int(v) else f"{int(v)}"
    return str(v)


TEMPLATES.env.filters["value"] = _value
TEMPLATES.env.filters["pct"] = lambda x: "" if x is None else f"{x:.0%}" if x >= 0.1 else f"{x:.1%}"
TEMPLATES.env.filters["yuan"] = lambda x: "" if x is None else f"{x / 10000:,.0f}万元" if x >= 10000 else f"{x:,.0f}元"


def waterfall(
    base: float, points: dict[str, float], labels: dict[str, tuple[str, Any]], *, top: int = 12
) -> dict[str, Any]:
    """The geometry of a SHAP waterfall in score points: base, the largest contributions, the rest, the total.

    Drawn as SVG by the template (no JavaScript, nothing to build). ``labels`` maps a feature to
    its Chinese label and the enterprise's value. Bars run from the running total before a
    feature to the total after it; the last bar's end is base + every contribution.
    """
    ranked = sorted(points.items(), key=lambda kv: -abs(kv[1]))
    shown, rest = ranked[:top], ranked[top:]
    steps: list[dict[str, Any]] = []
    total = base
    for name, p in shown:
        label, value = labels.get(name, (name, None))
        steps.append({"feature": name, "label": label, "value": _value(value), "points": p, "start": total})
        total += p
    if rest:
        p = sum(v for _, v in rest)
        steps.append({"feature": "", "label": f"其余{len(rest)}项", "value": "", "points": p, "start": total})
        total += p
    lo = min([base, total, *(s["start"] for s in steps), *(s["start"] + s["points"] for s in steps)])
    hi = max([base, total, *(s["start"] for s in steps), *(s["start"] + s["points"] for s in steps)])
    span = (hi - lo) or 1.0
    width, left, row = 420.0, 330.0, 24

    def x(v: float) -> float:
        return round(left + (v - lo) / span * width, 1)

    for i, s in enumerate(steps):
        a, b = x(s["start"]), x(s["start"] + s["points"])
        s |= {"x": min(a, b), "w": max(abs(b - a), 1.0), "y": 30 + i * row, "up": s["points"] >= 0}
    return {
        "base": base,
        "total": total,
        "steps": steps,
        "base_x": x(base),
        "total_x": x(total),
        "height": 30 + len(steps) * row + 30,
        "width": left + width + 90,
        "left": left,
    }


def install(app: FastAPI, state: ServiceState, *, replay: Callable[[ServiceState, dict[str, Any]], Any]) -> None:
    """Mount the console's pages on the app (``replay`` is the API's own replay of a stored decision)."""
    router = APIRouter(prefix="/console", include_in_schema=False)
    policy_cache: dict[str, SupervisionPolicy] = {}

    def policy() -> SupervisionPolicy:
        if "p" not in policy_cache:
            policy_cache["p"] = load_supervision_policy(state.settings.model_spec_path("supervision_policy"))
        return policy_cache["p"]

    def wanted() -> str:
        m, o = state.models, state.online
        return f"{m.evaluation.name} v{m.evaluation.version} @ {o.as_of}" if m and o else ""

    def build() -> tuple[str, Population | None]:
        label, models, online = wanted(), state.models, state.online
        if models is None or online is None:
            return label, None
        not_counted = {
            str(r["record_id"])
            for rows in state.exceptions.values()
            for r in rows
            if r.get("table") == "penalties" and not r.get("counts", False)
        }
        pop = build_population(
            state.settings.warehouse_path, models.evaluation, policy(), as_of=online.as_of, not_counted=not_counted
        )
        return label, pop

    population = PopulationCache(build)
    if state.settings.console_warm:
        state.on_swap.append(lambda _models: population.warm(wanted()))
    app.state.population = population

    # ------------------------------------------------------------------ sessions
    def signed_in(request: Request) -> ApiKey:
        token = request.cookies.get(COOKIE)
        if not token or state.engine is None:
            raise SignedOut
        key = session_key(state.engine, token)
        if key is None or key.role not in CONSOLE_ROLES:
            raise SignedOut
        return key

    def page(request: Request, template: str, key: ApiKey | None, status: int = 200, **context: Any) -> HTMLResponse:
        return TEMPLATES.TemplateResponse(
            request,
            template,
            {"key": key, "role_zh": ROLE_ZH.get(key.role) if key else "", "service": state, **context},
            status_code=status,
        )

    @app.exception_handler(SignedOut)
    async def _to_sign_in(request: Request, _: SignedOut) -> Response:
        return RedirectResponse(f"/console/login?next={request.url.path}", status_code=303)

    @router.get("", response_class=HTMLResponse)
    @router.get("/", response_class=HTMLResponse)
    def home(request: Request) -> Response:
        signed_in(request)
        return RedirectResponse("/console/decisions", status_code=303)

    @router.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/console/decisions") -> HTMLResponse:
        return page(request, "login.html", None, next=_safe_next(next))

    @router.post("/login", response_class=HTMLResponse)
    def login(
        request: Request, api_key: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/console/decisions"
    ) -> Response:
        assert state.engine is not None
        key = authenticate(state.engine, api_key.strip()) if api_key.strip() else None
        if key is None:
            return page(request, "login.html", None, 401, next=_safe_next(next), error="API密钥无效或已吊销")
        if key.role not in CONSOLE_ROLES:
            refuse(
                state,
                key,
                code="forbidden_role",
                zh=f"{ROLE_ZH[key.role]}密钥不能登录监管控制台",
                en=f"a {key.role.value} key may not sign in to the console (allowed: regulator, analyst)",
                uscc=None,
                what="POST /console/login",
            )
            return page(
                request,
                "login.html",
                None,
                403,
                next=_safe_next(next),
                error=f"{ROLE_ZH[key.role]}密钥不能登录监管控制台（限监管人员、分析人员）。此次尝试已记入审计日志。",
            )
        token = open_session(state.engine, key, hours=SESSION_HOURS)
        append(state.engine, [Event(kind="console_sign_in", payload={"session_hours": SESSION_HOURS}, key=key)])
        out = RedirectResponse(_safe_next(next), status_code=303)
        out.set_cookie(
            COOKIE,
            token,
            max_age=SESSION_HOURS * 3600,
            path="/console",
            httponly=True,
            samesite="strict",
            secure=state.settings.console_secure_cookie,
        )
        return out

    @router.post("/logout")
    def logout(request: Request) -> Response:
        token = request.cookies.get(COOKIE)
        if token and state.engine is not None:
            end_session(state.engine, token)
        out = RedirectResponse("/console/login", status_code=303)
        out.delete_cookie(COOKIE, path="/console")
        return out

    # ------------------------------------------------------------------ decisions
    @router.get("/decisions", response_class=HTMLResponse)
    def decisions(
        request: Request,
        q: str = "",
        bank: str = "",
        day_from: str = "",
        day_to: str = "",
        grade: str = "",
        kind: str = "",
        page_no: Annotated[int, Query(alias="page", ge=1, le=10_000)] = 1,
    ) -> HTMLResponse:
        key = signed_in(request)
        assert state.engine is not None
        form = {"q": q.strip(), "bank": bank.strip(), "day_from": day_from, "day_to": day_to, "grade": grade}
        form["kind"] = kind
        errors: list[str] = []
        filters: dict[str, Any] = {}
        text = form["q"]
        if text:
            if _is_uuid(text):
                filters["decision_id"] = text
            elif len(text) == 18 and text.isascii() and text.isalnum():  # a USCC, even one failing its check
                filters["usccs"] = [text.upper()]
            else:
                filters["usccs"] = _usccs_named(state, text)
        for name in ("day_from", "day_to"):
            if form[name]:
                try:
                    filters[name] = dt.date.fromisoformat(form[name])
                except ValueError:
                    errors.append(f"{'起始' if name == 'day_from' else '截止'}日期“{form[name]}”不是YYYY-MM-DD格式")
        if grade:
            if grade not in GRADES:
                errors.append(f"等级“{grade}”不是A/B/C/D之一")
            else:
                filters["grade"] = grade
        if form["bank"]:
            filters["bank_id"] = form["bank"]
        kinds = _kinds_for(key)
        if kind:
            if kind not in kinds:
                errors.append(f"决定类型“{kind}”不可查询")
            else:
                kinds = (kind,)
        rows: list[dict[str, Any]] = []
        more = False
        if not errors:
            rows, more = search_decisions(state.engine, kinds=kinds, limit=50, offset=(page_no - 1) * 50, **filters)
        return page(
            request,
            "decisions.html",
            key,
            status=422 if errors else 200,
            form=form,
            errors=errors,
            rows=[_listed(r) for r in rows],
            more=more,
            page_no=page_no,
            kinds=kinds if not kind else _kinds_for(key),
            kind_zh=KIND_ZH,
            grades=GRADES,
        )

    def visible(key: ApiKey, decision_id: str) -> dict[str, Any]:
        assert state.engine is not None
        stored = get_decision(state.engine, decision_id) if _is_uuid(decision_id) else None
        if stored is None or stored["kind"] not in _kinds_for(key):
            raise ApiError(404, "unknown_decision", "没有该决定", f"no decision {decision_id} visible to this key")
        return stored

    @router.get("/decisions/{decision_id}", response_class=HTMLResponse)
    def decision(request: Request, decision_id: str) -> HTMLResponse:
        key = signed_in(request)
        try:
            stored = visible(key, decision_id)
        except ApiError as exc:
            return page(request, "error.html", key, exc.status, message=exc.message_zh)
        return page(request, "decision.html", key, **_decision_view(state, key, stored), replayed=None)

    @router.post("/decisions/{decision_id}/replay", response_class=HTMLResponse)
    def replay_decision(request: Request, decision_id: str) -> HTMLResponse:
        key = signed_in(request)
        try:
            stored = visible(key, decision_id)
            if key.role != Role.REGULATOR:
                raise ApiError(403, "forbidden_role", "仅监管人员可以重放决定", "only a regulator replays decisions")
            result = replay(state, stored)
        except ApiError as exc:
            return page(request, "error.html", key, exc.status, message=exc.message_zh)
        return page(request, "decision.html", key, **_decision_view(state, key, stored), replayed=result)

    # ------------------------------------------------------------------ enterprises
    @router.get("/enterprises/{uscc}", response_class=HTMLResponse)
    def enterprise(request: Request, uscc: str) -> HTMLResponse:
        key = signed_in(request)
        uscc = uscc.strip().upper()
        models, online = state.models, state.online
        if models is None or online is None or state.catalog is None:
            return page(request, "error.html", key, 503, message="服务尚未加载模型或特征")
        values = online.values(uscc)
        if values is None:
            return page(request, "error.html", key, 404, message=f"{uscc}不在当前评价范围内（未登记或已注销）")
        scorer = models.evaluation.scorer
        assert isinstance(scorer, Scorer)
        con = duckdb.connect(str(state.settings.warehouse_path), read_only=True)
        try:
            history = grade_history(con, scorer, uscc=uscc)
            records = record_status(con, state.catalog, uscc=uscc, as_of=online.as_of)
            info = con.execute(
                "SELECT name, industry, division, size_class, registered_date FROM enterprises WHERE uscc = ?", [uscc]
            ).fetchone()
        finally:
            con.close()
        assert state.engine is not None
        stored, _ = search_decisions(state.engine, usccs=[uscc], kinds=_kinds_for(key), limit=200)
        recs = records.to_dict(orient="records")
        for r in recs:
            r["table_zh"] = TABLE_ZH.get(str(r["table"]), str(r["table"]))
            r["date"] = "" if r["date"] is None or str(r["date"]) in ("NaT", "nan") else str(r["date"])[:10]
        if (
            key.role != Role.REGULATOR
        ):  # repaired records are no longer published (信用修复): only a regulator sees them
            recs = [r for r in recs if r["status"] != "repaired"]
        return page(
            request,
            "enterprise.html",
            key,
            uscc=uscc,
            info=info,
            as_of=online.as_of,
            model=models.evaluation,
            history=history.to_dict(orient="records"),
            chart=_history_chart(history),
            stored=[_listed(r) for r in stored],
            counting=[r for r in recs if r["counts"]],
            not_counting=[r for r in recs if not r["counts"]],
        )

    # ------------------------------------------------------------------ supervision and alerts
    def current_population(request: Request, key: ApiKey) -> Population | HTMLResponse:
        if state.models is None or state.online is None:
            return page(request, "error.html", key, 503, message="服务尚未加载模型或特征")
        try:
            pop = population.get(wanted())
        except PolicyError as exc:
            return page(request, "error.html", key, 500, message=f"监管政策文件有误：{exc}")
        if pop is None:
            return page(request, "error.html", key, 503, message="模型刚刚更新，请稍后刷新")
        return pop

    @router.get("/supervision", response_class=HTMLResponse)
    def supervision(request: Request, by: str = "industry") -> HTMLResponse:
        key = signed_in(request)
        pop = current_population(request, key)
        if isinstance(pop, HTMLResponse):
            return pop
        by = by if by in ("industry", "division") else "industry"
        table = pop.distribution(by)
        names = pop.policy.divisions if by == "division" else INDUSTRY_NAMES
        return page(
            request,
            "supervision.html",
            key,
            pop=pop,
            by=by,
            rows=[
                {"group": g, "name": names.get(str(g), ""), **{c: int(table.loc[g, c]) for c in table.columns}}
                for g in table.index
            ],
            totals={c: int(table[c].sum()) for c in table.columns},
            inspections=pop.inspections(),
            grades=GRADES,
        )

    @router.get("/alerts", response_class=HTMLResponse)
    def alerts(request: Request, kind: str = "", department: str = "") -> HTMLResponse:
        key = signed_in(request)
        pop = current_population(request, key)
        if isinstance(pop, HTMLResponse):
            return pop
        every = pop.alerts()
        counts: dict[str, int] = {}
        for a in every:
            counts[a.kind] = counts.get(a.kind, 0) + 1
        shown = [a for a in every if (not kind or a.kind == kind) and (not department or department in a.departments)]
        departments = sorted({d for a in every for d in a.departments})
        return page(
            request,
            "alerts.html",
            key,
            pop=pop,
            alerts=shown[:200],
            total=len(shown),
            counts=counts,
            kind=kind,
            department=department,
            departments=departments,
        )

    # ------------------------------------------------------------------ model cards
    @router.get("/models/{name}/{version}", response_class=HTMLResponse)
    def model_card(request: Request, name: str, version: str) -> HTMLResponse:
        key = signed_in(request)
        assert state.registry is not None
        try:
            loaded = state.registry.version(name, version)
        except Exception:
            return page(request, "error.html", key, 404, message=f"没有模型{name}的版本{version}")
        return page(request, "model.html", key, model=loaded)

    app.include_router(router)


def _safe_next(target: str) -> str:
    """Only a console path: a sign-in link cannot send the browser elsewhere."""
    return (
        target if target.startswith("/console/") and "//" not in target and "\\" not in target else "/console/decisions"
    )


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _kinds_for(key: ApiKey) -> tuple[str, ...]:
    return DECISION_KINDS if key.role == Role.REGULATOR else ("evaluation",)


def _usccs_named(state: ServiceState, text: str, cap: int = 500) -> list[str]:
    """Enterprises of the served snapshot whose name contains ``text`` (at most ``cap``)."""
    online = state.online
    if online is None:
        return []
    names = online.column("name")
    return [u for u, n in zip(online.usccs, names, strict=True) if text in str(n)][:cap]


def _listed(row: dict[str, Any]) -> dict[str, Any]:
    """A row of the decision search (``decision_index``) as the tables show it."""
    return {
        **row,
        "decision_id": row["event_id"],
        "kind_zh": KIND_ZH.get(row["kind"], row["kind"]),
        "created_at": str(row["created_at"])[:19].replace("T", " "),
        "bank_id": row["bank_id"] or "",
        "limit": row["pre_credit_limit"],
        "decision_zh": row["decision_zh"] or "",
        "model": row["model"] or "",
    }


def _head(stored: dict[str, Any]) -> dict[str, Any]:
    """The heading figures of one stored decision."""
    p = stored["payload"]
    return {
        "decision_id": stored["event_id"],
        "kind_zh": KIND_ZH.get(stored["kind"], stored["kind"]),
        "created_at": str(stored["created_at"])[:19].replace("T", " "),
        "uscc": stored["uscc"],
        "name": p.get("name", ""),
    }


def _decision_view(state: ServiceState, key: ApiKey, stored: dict[str, Any]) -> dict[str, Any]:
    p = stored["payload"]
    labels = {i["feature"]: (i["label_zh"], i["value"]) for i in p["inputs"]}
    ev, pc = p["evaluation"], p.get("pre_credit")
    charts = [("公共信用综合评价：各项特征对评分的贡献（分）", waterfall(ev["base_points"], ev["shap_points"], labels))]
    if pc:
        dm = pc["default_model"]
        charts.append(
            ("违约模型：各项特征对违约风险评分的贡献（分）", waterfall(dm["base_points"], dm["shap_points"], labels))
        )
    return {
        "d": _head(stored),
        "stored": stored,
        "p": p,
        "ev": ev,
        "pc": pc,
        "charts": charts,
        "excluded": p.get("excluded_records", []) if key.role == Role.REGULATOR else None,
        "disputed": p.get("disputed_records", []),
        "table_zh": TABLE_ZH,
    }


def _history_chart(history: Any) -> dict[str, Any] | None:
    """A line of the score over the snapshot dates (SVG points), with the grade bands' floors."""
    if len(history) < 1:
        return None
    scores = [int(s) for s in history["score"]]
    width, height, pad = 640.0, 180.0, 30.0
    lo, hi = 0.0, 1000.0
    n = len(scores)

    def xy(i: int, s: float) -> tuple[float, float]:
        x = pad + (i / max(n - 1, 1)) * (width - 2 * pad)
        return round(x, 1), round(height - pad - (s - lo) / (hi - lo) * (height - 2 * pad), 1)

    pts = [xy(i, s) for i, s in enumerate(scores)]
    return {
        "points": " ".join(f"{x},{y}" for x, y in pts),
        "dots": [
            {"x": x, "y": y, "score": s, "grade": g, "as_of": str(d)}
            for (x, y), s, g, d in zip(pts, scores, history["grade"], history["as_of"], strict=True)
        ],
        "width": width,
        "height": height,
    }
