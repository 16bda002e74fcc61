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
import functools
import math
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode, urlsplit

import duckdb
from fastapi import APIRouter, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from scoring.data.schema import INDUSTRY_NAMES, TABLES
from scoring.data.uscc import CHARSET
from scoring.domain.policy import PolicyError, SupervisionPolicy, load_supervision_policy
from scoring.domain.scorer import Scorer
from scoring.errors import ApiError, ScoringError
from scoring.features.records import record_status
from scoring.registry.versions import model_card
from scoring.serve.deps import ROLE_ZH, ServiceState, refuse
from scoring.serve.supervision import GRADES, Population, PopulationCache, build_population, grade_history
from scoring.store import (
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

COOKIE = "scoring_console"
SESSION_HOURS = 8
CONSOLE_ROLES = (Role.REGULATOR, Role.ANALYST)
KIND_ZH = {"evaluation": "公共信用综合评价", "pre_credit": "信易贷预授信"}
TABLE_ZH = {name: table.label_zh for name, table in TABLES.items()}
PURPOSE_ZH = {"pre_credit": "信易贷预授信", "evaluation": "查询公共信用综合评价"}
BEIJING = dt.timezone(dt.timedelta(hours=8), "北京时间")  # the users' clock (China keeps no summer time)
EARLIEST, LATEST = dt.date(2000, 1, 1), dt.date(2099, 12, 31)
TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")


class SignedOut(ScoringError):
    """No valid console session: go to the sign-in page."""

    code = "signed_out"
    status = 401
    title_zh = "未登录或会话已过期"


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

    @functools.cache  # read once, on first use: a fault in the file is shown on the page that needs it
    def policy() -> SupervisionPolicy:
        return load_supervision_policy(state.settings.model_spec_path("supervision_policy"))

    def served() -> tuple[str, Callable[[], Population]] | None:
        """The label and the builder of the population of what is served now (one read of models and snapshot)."""
        models, online = state.models, state.online
        if models is None or online is None:
            return None
        label = f"{models.evaluation.name} v{models.evaluation.version} @ {online.as_of}"

        def build() -> Population:
            not_counted = {
                str(r["record_id"])
                for rows in state.exceptions.values()
                for r in rows
                if r.get("table") == "penalties" and not r.get("counts", False)
            }
            return build_population(
                state.settings.warehouse_path, models.evaluation, policy(), as_of=online.as_of, not_counted=not_counted
            )

        return label, build

    population = PopulationCache()

    def warm(_models: Any) -> None:
        now = served()
        if now is not None:
            population.warm(*now)

    if state.settings.console_warm:
        state.on_swap.append(warm)

    # ------------------------------------------------------------------ sessions
    def signed_in(request: Request) -> ApiKey:
        token = request.cookies.get(COOKIE)
        if not token or state.engine is None:
            raise SignedOut("no valid console session: sign in")
        key = session_key(state.engine, token)
        if key is None or key.role not in CONSOLE_ROLES:
            raise SignedOut("no valid console session: sign in")
        return key

    def page(request: Request, template: str, key: ApiKey | None, status: int = 200, **context: Any) -> HTMLResponse:
        return _no_store(
            TEMPLATES.TemplateResponse(
                request,
                template,
                {"key": key, "role_zh": ROLE_ZH.get(key.role) if key else "", **context},
                status_code=status,
            )
        )

    def same_origin(request: Request) -> None:
        """A form posted from another site is refused (SameSite keeps the cookie from it; this keeps its sign-in)."""
        origin = request.headers.get("origin") or request.headers.get("referer")
        if origin and urlsplit(origin).netloc != request.url.netloc:
            raise ApiError(403, "cross_site", "拒绝来自其他网站的表单提交", f"a form posted from {origin} is refused")

    @app.exception_handler(SignedOut)
    async def _to_sign_in(request: Request, _: SignedOut) -> Response:
        # back to the page after signing in: a GET with its query; a replay (POST) to its decision's page
        target = request.url.path
        if request.method == "GET" and request.url.query:
            target += "?" + request.url.query
        elif request.method != "GET":
            target = target.removesuffix("/replay")
        return _no_store(RedirectResponse(f"/console/login?{urlencode({'next': target})}", status_code=303))

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
        try:
            same_origin(request)
        except ApiError as exc:
            return page(request, "login.html", None, exc.status, next="/console/decisions", error=exc.message_zh)
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
        out = _no_store(RedirectResponse(_safe_next(next), status_code=303))
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
        same_origin(request)
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
        page_no: Annotated[str, Query(alias="page")] = "1",
    ) -> HTMLResponse:
        key = signed_in(request)
        assert state.engine is not None
        form = {"q": q.strip(), "bank": bank.strip(), "day_from": day_from, "day_to": day_to, "grade": grade}
        form["kind"] = kind
        errors: list[str] = []
        filters: dict[str, Any] = {}
        text = form["q"]
        if text:
            if (decision_id := _uuid(text)) is not None:
                filters["decision_id"] = decision_id
            elif len(text) == 18 and all(c in CHARSET for c in text.upper()):  # a USCC, even one failing its check
                filters["usccs"] = [text.upper()]
            else:
                filters["name"] = text
        for name, zh in (("day_from", "起始"), ("day_to", "截止")):
            if form[name]:
                try:
                    day = dt.date.fromisoformat(form[name])
                except ValueError:
                    errors.append(f"{zh}日期“{form[name]}”不是YYYY-MM-DD格式")
                    continue
                if not EARLIEST <= day <= LATEST:
                    errors.append(f"{zh}日期“{form[name]}”不在{EARLIEST}至{LATEST}之间")
                else:
                    filters[name] = day
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
        number = int(page_no) if page_no.isdigit() and 1 <= int(page_no) <= 10_000 else 0
        if not number:
            errors.append(f"页码“{page_no}”不是1至10000之间的整数")
        rows: list[dict[str, Any]] = []
        more = False
        if not errors:
            rows, more = search_decisions(
                state.engine,
                kinds=kinds,
                bank_requests=key.role == Role.REGULATOR,
                tz=BEIJING,
                limit=50,
                offset=(number - 1) * 50,
                **filters,
            )
        return page(
            request,
            "decisions.html",
            key,
            status=422 if errors else 200,
            form=form,
            errors=errors,
            rows=[_listed(r) for r in rows],
            more=more,
            page_no=number,
            kinds=_kinds_for(key),
            kind_zh=KIND_ZH,
            grades=GRADES,
        )

    def visible(key: ApiKey, decision_id: str) -> dict[str, Any]:
        """The stored decision, or 404 when this key may not see it (as a missing one: its existence is not told)."""
        assert state.engine is not None
        found = _uuid(decision_id)
        stored = get_decision(state.engine, found) if found else None
        if (
            stored is None
            or stored["kind"] not in _kinds_for(key)
            or (key.role != Role.REGULATOR and stored["bank_id"] is not None)  # a bank's, under its consent
        ):
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
            same_origin(request)
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
        try:
            con = duckdb.connect(str(state.settings.warehouse_path), read_only=True)
            try:
                history = grade_history(con, scorer, uscc=uscc)
                records = record_status(con, state.catalog, uscc=uscc, as_of=online.as_of)
                info = con.execute(
                    "SELECT name, industry, division, size_class, registered_date FROM enterprises WHERE uscc = ?",
                    [uscc],
                ).fetchone()
            finally:
                con.close()
        except duckdb.Error as exc:  # the warehouse is being written (`scoring ingest`, `scoring features`)
            return page(
                request, "error.html", key, 503, message=f"数据仓库暂不可读，请稍后再试（{type(exc).__name__}）"
            )
        assert state.engine is not None
        stored, _ = search_decisions(
            state.engine, usccs=[uscc], kinds=_kinds_for(key), bank_requests=key.role == Role.REGULATOR, limit=200
        )
        recs = records.to_dict(orient="records")
        for r in recs:
            r["table_zh"] = TABLE_ZH.get(str(r["table"]), str(r["table"]))
            r["date"] = "" if r["date"] is None or str(r["date"]) in ("NaT", "nan") else str(r["date"])[:10]
        if key.role != Role.REGULATOR:
            # repaired (信用修复) or deleted records are no longer published: only a regulator sees them, as in the API
            recs = [r for r in recs if r["counts"] or r["status"] == "disputed"]
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
        now = served()
        if now is None:
            return page(request, "error.html", key, 503, message="服务尚未加载模型或特征")
        try:
            pop = population.get(*now)
        except PolicyError as exc:
            return page(request, "error.html", key, 500, message=f"监管政策文件有误：{exc}")
        except duckdb.Error as exc:  # the warehouse is being written (`scoring ingest`, `scoring features`)
            return page(
                request, "error.html", key, 503, message=f"数据仓库暂不可读，请稍后再试（{type(exc).__name__}）"
            )
        if pop is None:
            return page(request, "error.html", key, 503, message="正在按当前模型计算全部主体的等级，请稍后刷新")
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
    def card(request: Request, name: str, version: str) -> HTMLResponse:
        key = signed_in(request)
        served = state.models.members() if state.models else []
        loaded = next((m for m in served if m.name == name and m.version == version), None)
        if loaded is not None:
            return page(
                request, "model.html", key, name=name, version=version, run_id=loaded.run_id, card=loaded.model_card
            )
        try:  # an older version: its card alone, not its booster
            run_id, text = model_card(name, version)
        except Exception:
            return page(request, "error.html", key, 404, message=f"没有模型{name}的版本{version}")
        return page(request, "model.html", key, name=name, version=version, run_id=run_id, card=text)

    app.include_router(router)


def _safe_next(target: str) -> str:
    """Only a console path: a sign-in link cannot send the browser elsewhere."""
    return (
        target if target.startswith("/console/") and "//" not in target and "\\" not in target else "/console/decisions"
    )


def _uuid(text: str) -> str | None:
    """The decision id as stored (lower case, hyphenated), or None when ``text`` is not a UUID."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


_R = TypeVar("_R", bound=Response)


def _no_store(response: _R) -> _R:
    """Decisions and keys stay out of shared and browser caches."""
    response.headers["Cache-Control"] = "no-store"
    return response


def _beijing(utc_text: str) -> str:
    """An audit time (UTC ISO text) on the users' clock."""
    return dt.datetime.fromisoformat(utc_text).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _kinds_for(key: ApiKey) -> tuple[str, ...]:
    return DECISION_KINDS if key.role == Role.REGULATOR else ("evaluation",)


def _listed(row: dict[str, Any]) -> dict[str, Any]:
    """A row of the decision search (``decision_index``) as the tables show it."""
    return {
        **row,
        "decision_id": row["event_id"],
        "kind_zh": KIND_ZH.get(row["kind"], row["kind"]),
        "created_at": _beijing(str(row["created_at"])),
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
        "created_at": _beijing(str(stored["created_at"])),
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
        "requester_zh": ROLE_ZH.get(Role(stored["role"]), stored["role"]) if stored["role"] else "",
        "purpose_zh": PURPOSE_ZH,
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
