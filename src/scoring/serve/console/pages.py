"""The console's pages for a signed-in regulator or analyst: decisions, enterprises, supervision, alerts, models.

A regulator sees every decision, replays any and sees the records excluded from it (信用修复);
an analyst sees evaluations (not the banks' pre-credit decisions, which the enterprise authorized
for that bank alone), the supervision and alert pages, and replays nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import duckdb
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from scoring.data.schema import INDUSTRY_NAMES
from scoring.data.uscc import CHARSET
from scoring.domain.policy import PolicyError
from scoring.domain.scorer import Scorer
from scoring.errors import ApiError
from scoring.features.records import record_status
from scoring.registry.versions import model_card
from scoring.serve.console.population import Console, ConsoleDep
from scoring.serve.console.session import SignedIn, same_origin
from scoring.serve.console.views import (
    BEIJING,
    KIND_ZH,
    TABLE_ZH,
    as_uuid,
    decision_view,
    history_chart,
    kinds_for,
    listed,
    page,
)
from scoring.serve.deps import ServiceDep
from scoring.serve.refusals import refuse
from scoring.serve.state import Service
from scoring.serve.stored import replay
from scoring.serve.supervision import GRADES, Population, grade_history
from scoring.store import ApiKey, Role, get_decision, search_decisions

EARLIEST, LATEST = dt.date(2000, 1, 1), dt.date(2099, 12, 31)
PAGE_SIZE = 50

router = APIRouter(prefix="/console", include_in_schema=False)


def search_filters(
    form: dict[str, str], key: ApiKey, page_no: str
) -> tuple[dict[str, Any], tuple[str, ...], int, list[str]]:
    """The search's filters, kinds and page number from the form, and each fault in Chinese."""
    errors: list[str] = []
    filters: dict[str, Any] = {}
    text = form["q"]
    if text:
        if (decision_id := as_uuid(text)) is not None:
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
    if form["grade"]:
        if form["grade"] not in GRADES:
            errors.append(f"等级“{form['grade']}”不是A/B/C/D之一")
        else:
            filters["grade"] = form["grade"]
    if form["bank"]:
        filters["bank_id"] = form["bank"]
    kinds = kinds_for(key)
    if form["kind"]:
        if form["kind"] not in kinds:
            errors.append(f"决定类型“{form['kind']}”不可查询")
        else:
            kinds = (form["kind"],)
    number = int(page_no) if page_no.isdigit() and 1 <= int(page_no) <= 10_000 else 0
    if not number:
        errors.append(f"页码“{page_no}”不是1至10000之间的整数")
    return filters, kinds, number, errors


@router.get("/decisions", response_class=HTMLResponse)
def decisions(
    request: Request,
    key: SignedIn,
    service: ServiceDep,
    q: str = "",
    bank: str = "",
    day_from: str = "",
    day_to: str = "",
    grade: str = "",
    kind: str = "",
    page_no: Annotated[str, Query(alias="page")] = "1",
) -> HTMLResponse:
    form = {"q": q.strip(), "bank": bank.strip(), "day_from": day_from, "day_to": day_to, "grade": grade, "kind": kind}
    filters, kinds, number, errors = search_filters(form, key, page_no)
    rows: list[dict[str, Any]] = []
    more = False
    if not errors:
        rows, more = search_decisions(
            service.engine,
            kinds=kinds,
            bank_requests=key.role == Role.REGULATOR,
            tz=BEIJING,
            limit=PAGE_SIZE,
            offset=(number - 1) * PAGE_SIZE,
            **filters,
        )
    return page(
        request,
        "decisions.html",
        key,
        status=422 if errors else 200,
        form=form,
        errors=errors,
        rows=[listed(r) for r in rows],
        more=more,
        page_no=number,
        kinds=kinds_for(key),
        kind_zh=KIND_ZH,
        grades=GRADES,
    )


def visible(service: Service, key: ApiKey, decision_id: str) -> dict[str, Any]:
    """The stored decision, or 404 when this key may not see it (as a missing one: its existence is not told)."""
    found = as_uuid(decision_id)
    stored = get_decision(service.engine, found) if found else None
    if (
        stored is None
        or stored["kind"] not in kinds_for(key)
        or (key.role != Role.REGULATOR and stored["bank_id"] is not None)  # a bank's, under its consent
    ):
        raise ApiError(404, "unknown_decision", "没有该决定", f"no decision {decision_id} visible to this key")
    return stored


@router.get("/decisions/{decision_id}", response_class=HTMLResponse)
def decision(request: Request, key: SignedIn, service: ServiceDep, decision_id: str) -> HTMLResponse:
    try:
        stored = visible(service, key, decision_id)
    except ApiError as exc:
        return page(request, "error.html", key, exc.status, message=exc.message_zh)
    return page(request, "decision.html", key, **decision_view(key, stored), replayed=None)


@router.post("/decisions/{decision_id}/replay", response_class=HTMLResponse)
def replay_decision(request: Request, key: SignedIn, service: ServiceDep, decision_id: str) -> HTMLResponse:
    try:
        same_origin(request)
        stored = visible(service, key, decision_id)
        if key.role != Role.REGULATOR:  # a 403 is audited, as every refusal (refusals.py)
            raise refuse(
                service.engine,
                key,
                code="forbidden_role",
                zh="仅监管人员可以重放决定",
                en="only a regulator replays decisions",
                uscc=None,
                what=f"POST {request.url.path}",
            )
        result = replay(service, stored)
    except ApiError as exc:
        return page(request, "error.html", key, exc.status, message=exc.message_zh)
    return page(request, "decision.html", key, **decision_view(key, stored), replayed=result)


def _enterprise_records(service: Service, scorer: Scorer, uscc: str, as_of: dt.date) -> tuple[Any, Any, Any]:
    """(grade history, record status, registration row) of one enterprise, read from the warehouse."""
    con = duckdb.connect(str(service.settings.warehouse_path), read_only=True)
    try:
        history = grade_history(con, scorer, uscc=uscc)
        records = record_status(con, service.catalog, uscc=uscc, as_of=as_of)
        info = con.execute(
            "SELECT name, industry, division, size_class, registered_date FROM enterprises WHERE uscc = ?",
            [uscc],
        ).fetchone()
    finally:
        con.close()
    return history, records, info


@router.get("/enterprises/{uscc}", response_class=HTMLResponse)
def enterprise(request: Request, key: SignedIn, service: ServiceDep, uscc: str) -> HTMLResponse:
    uscc = uscc.strip().upper()
    models, online = service.models, service.online
    if models is None or online is None:
        return page(request, "error.html", key, 503, message="服务尚未加载模型或特征")
    values = online.values(uscc)
    if values is None:
        return page(request, "error.html", key, 404, message=f"{uscc}不在当前评价范围内（未登记或已注销）")
    try:
        history, records, info = _enterprise_records(service, models.evaluation_scorer, uscc, online.as_of)
    except duckdb.Error as exc:  # the warehouse is being written (`scoring ingest`, `scoring features`)
        return page(request, "error.html", key, 503, message=f"数据仓库暂不可读，请稍后再试（{type(exc).__name__}）")
    stored, _ = search_decisions(
        service.engine, usccs=[uscc], kinds=kinds_for(key), bank_requests=key.role == Role.REGULATOR, limit=200
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
        chart=history_chart(history),
        stored=[listed(r) for r in stored],
        counting=[r for r in recs if r["counts"]],
        not_counting=[r for r in recs if not r["counts"]],
    )


def current_population(request: Request, key: ApiKey, service: Service, console: Console) -> Population | HTMLResponse:
    """The population of what is served now, or the page that says why there is none yet."""
    now = console.served(service)
    if now is None:
        return page(request, "error.html", key, 503, message="服务尚未加载模型或特征")
    try:
        pop = console.populations.get(*now)
    except PolicyError as exc:
        return page(request, "error.html", key, 500, message=f"监管政策文件有误：{exc}")
    except duckdb.Error as exc:  # the warehouse is being written (`scoring ingest`, `scoring features`)
        return page(request, "error.html", key, 503, message=f"数据仓库暂不可读，请稍后再试（{type(exc).__name__}）")
    if pop is None:
        return page(request, "error.html", key, 503, message="正在按当前模型计算全部主体的等级，请稍后刷新")
    return pop


@router.get("/supervision", response_class=HTMLResponse)
def supervision(
    request: Request, key: SignedIn, service: ServiceDep, console: ConsoleDep, by: str = "industry"
) -> HTMLResponse:
    pop = current_population(request, key, service, console)
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
def alerts(
    request: Request, key: SignedIn, service: ServiceDep, console: ConsoleDep, kind: str = "", department: str = ""
) -> HTMLResponse:
    pop = current_population(request, key, service, console)
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
        overdue=service.overdue[:200],
        overdue_total=len(service.overdue),
    )


@router.get("/models/{name}/{version}", response_class=HTMLResponse)
def card(request: Request, key: SignedIn, service: ServiceDep, name: str, version: str) -> HTMLResponse:
    served = service.models.members() if service.models else []
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
