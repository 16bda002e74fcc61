"""The FastAPI application: ``create_app`` builds it; uvicorn serves it (``--factory``).

Who may do what (DESIGN.md, "Who uses it"): a bank asks for pre-credit limits and evaluations of
enterprises that authorized it, reads its own decisions and reports outcomes; an analyst
evaluates (one or a batch); a regulator reads and replays every decision and changes nothing; an
admin manages consents and model reloads. Every decision, refusal and outcome is appended to the
audit log before it is answered.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from scoring import __version__
from scoring.data.uscc import UsccFault, validate
from scoring.domain.decide import (
    EVALUATION_FIELDS,
    PRE_CREDIT_FIELDS,
    differences,
    evaluation_record,
    evaluation_result,
    evaluation_results,
    inputs_record,
    model_ref,
    pre_credit_record,
    pre_credit_result,
)
from scoring.domain.models import AMOUNT, DEFAULT, EVALUATION, ModelSet
from scoring.domain.policy import LimitPolicy
from scoring.errors import ApiError
from scoring.serve import console
from scoring.serve.deps import ServiceDep, ServiceState, refuse, require
from scoring.serve.middleware import BodyLimit, Metrics, RequestMetrics, error_body
from scoring.serve.schemas import (
    BatchEvaluationRequest,
    ConsentPublic,
    ConsentRequest,
    DecisionResponse,
    ErrorResponse,
    EvaluationRequest,
    EvaluationResponse,
    ModelPublic,
    ModelsResponse,
    OutcomePublic,
    OutcomeRequest,
    OutcomeResponse,
    PreCreditRequest,
    PreCreditResponse,
    ReadyResponse,
    RecordPublic,
    ReplayResponse,
    RequesterPublic,
    ServedModelPublic,
    UsccValueError,
    uscc_shape,
)
from scoring.settings import Settings
from scoring.store import (
    DECISION_KINDS,
    ApiKey,
    DuplicateEvent,
    Event,
    Purpose,
    Role,
    append,
    events,
    find_idempotent,
    get_decision,
    grant_consent,
    list_consents,
    live_consent,
    revoke_consent,
)

log = logging.getLogger(__name__)

BATCH_PATH = "/v1/batch/evaluations"
BATCH_CHUNK = 500


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    described = {
        401: "missing or invalid API key",
        403: "the key's role may not do this, or the enterprise has not authorized this bank (audited)",
        404: "no such enterprise in the evaluation population, or no such decision visible to this key",
        409: "conflicts with what is stored",
        413: "request body too large",
        422: "malformed request (the field and fault are named)",
        429: "rate limit of this key reached: retry after the Retry-After header's seconds",
        503: "no model or no feature snapshot loaded",
    }
    return {c: {"model": ErrorResponse, "description": described[c]} for c in codes}


def _error(exc: ApiError) -> JSONResponse:
    body = {"error": {"code": exc.code, "message_zh": exc.message_zh, "message_en": exc.message_en, "field": exc.field}}
    return JSONResponse(status_code=exc.status, content=body, headers=exc.headers)


BankKey = Annotated[ApiKey, Depends(require(Role.BANK))]
EvaluatorKey = Annotated[ApiKey, Depends(require(Role.BANK, Role.ANALYST, Role.REGULATOR))]
DecisionReaderKey = Annotated[ApiKey, Depends(require(Role.BANK, Role.REGULATOR))]
RegulatorKey = Annotated[ApiKey, Depends(require(Role.REGULATOR))]
AnalystKey = Annotated[ApiKey, Depends(require(Role.ANALYST))]
AdminKey = Annotated[ApiKey, Depends(require(Role.ADMIN))]
ConsentReaderKey = Annotated[ApiKey, Depends(require(Role.ADMIN, Role.REGULATOR))]
AnyKey = Annotated[ApiKey, Depends(require(Role.BANK, Role.ANALYST, Role.REGULATOR, Role.ADMIN))]


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the champion models and the latest features are loaded at start-up."""
    state = ServiceState(settings or Settings())
    metrics = Metrics()

    def on_swap(models: ModelSet) -> None:
        metrics.model.clear()
        for m in models.members():
            metrics.model.labels(m.name, m.version).set(1)

    state.on_swap.append(on_swap)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(state.load)
        state.start_polling()
        yield
        state.stop()

    app = FastAPI(
        title="信用评价与信易贷预授信服务 (credit evaluation and pre-credit service)",
        version=__version__,
        description=(
            "公共信用综合评价 and 信易贷预授信 with explanations, for banks, analysts and regulators. "
            "Authenticate with `Authorization: Bearer <API key>`; every error has a stable `code` and a "
            "message in Chinese and English."
        ),
        lifespan=lifespan,
    )
    app.state.service = state
    app.state.metrics = metrics
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(
        BodyLimit,
        default=state.settings.max_body_bytes,
        per_path={BATCH_PATH: state.settings.max_batch_body_bytes},
    )

    console.install(app, state, replay=_replay)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        zh = {404: "没有这个接口", 405: "接口不支持该方法"}.get(exc.status_code, "请求错误")
        return Response(
            error_body(code, zh, str(exc.detail)),
            status_code=exc.status_code,
            media_type="application/json",
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first: dict[str, Any] = dict(exc.errors()[0]) if exc.errors() else {"loc": (), "msg": "invalid request"}
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        field = ".".join(loc) or None
        kind = first.get("type")
        ctx = first.get("ctx") or {}
        problem = ctx.get("error")
        if isinstance(problem, UsccValueError):
            zh, en, code = problem.problem.message_zh, problem.problem.message_en, "invalid_uscc"
        elif kind == "extra_forbidden":
            zh, en, code = f"不允许的字段'{field}'", f"unknown field {field!r}", "unknown_field"
        elif kind == "missing":
            zh, en, code = f"缺少必填字段'{field}'", f"field {field!r} is required", "missing_field"
        elif field is None and kind in ("model_attributes_type", "dict_type"):
            zh, en, code = (
                "请求体应为JSON对象（Content-Type: application/json）",
                "the body must be a JSON object sent with Content-Type: application/json",
                "invalid_body",
            )
        elif kind == "json_invalid":
            zh, en, code, field = "请求体不是合法的JSON", "the body is not valid JSON", "invalid_json", None
        else:
            msg = str(first.get("msg", ""))
            zh, en, code = f"字段'{field}'不合法：{msg}", f"invalid field {field!r}: {msg}", "invalid_request"
        return _error(ApiError(422, code, zh, en, field=field))

    # ------------------------------------------------------------------ operations
    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """The process is up (it may still have no model: see /readyz)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], response_model=ReadyResponse, responses={503: {"model": ReadyResponse}})
    def readyz(service: ServiceDep) -> JSONResponse:
        """200 ready, 200 degraded (serving the last good models; the registry is unreachable or refused a
        new champion), or 503 not_ready (no model or no features), with the problems."""
        m = service.models
        rs = service.registry_status
        body = ReadyResponse(
            status=service.status,  # type: ignore[arg-type]
            model=_public(m.evaluation) if m else None,
            models=[_public(x) for x in m.members()] if m else [],
            features_as_of=service.online.as_of if service.online else None,
            enterprises=len(service.online) if service.online else None,
            registry={"reachable": rs.reachable, "checked_at": rs.checked_at, "refused": dict(rs.refused)},
            problems=service.all_problems(),
        )
        return JSONResponse(status_code=200 if service.ready else 503, content=body.model_dump(mode="json"))

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    def prometheus() -> Response:
        """Prometheus metrics: requests, latency histogram, decisions by grade, model versions."""
        metrics.registry_up.set(1 if state.registry_status.reachable else 0)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # ------------------------------------------------------------------ models
    @app.get("/v1/models", response_model=ModelsResponse, tags=["models"], responses=_errors(401, 429))
    def models(key: AnyKey, service: ServiceDep) -> ModelsResponse:
        """The models being served: versions, training window, a link to each model card."""
        m = service.models
        rs = service.registry_status
        return ModelsResponse(
            models=[
                ServedModelPublic(
                    name=x.name,
                    version=x.version,
                    alias=x.alias,
                    run_id=x.run_id,
                    training_window=_window(x.lineage),
                    model_card_url=f"/v1/models/{x.name}/{x.version}/card" if x.model_card else None,
                )
                for x in (m.members() if m else [])
            ],
            policy=m.policy.model_dump(mode="json") if m and m.policy else None,
            loaded_at=m.loaded_at if m else None,
            registry={
                "reachable": rs.reachable,
                "checked_at": rs.checked_at,
                "error": rs.error,
                "refused": dict(rs.refused),
            },
        )

    @app.get(
        "/v1/models/{name}/{version}/card",
        response_class=PlainTextResponse,
        tags=["models"],
        responses=_errors(401, 404, 429),
    )
    def model_card(name: str, version: str, key: AnyKey, service: ServiceDep) -> PlainTextResponse:
        """The model card (Markdown) of a served or recently used version."""
        loaded = None
        if service.models:
            loaded = next((x for x in service.models.members() if x.name == name and x.version == version), None)
        if loaded is None or not loaded.model_card:
            raise ApiError(404, "no_model_card", "没有该模型版本的说明", f"no model card for {name} v{version} here")
        return PlainTextResponse(loaded.model_card, media_type="text/markdown; charset=utf-8")

    @app.post("/v1/models/reload", response_model=ModelsResponse, tags=["models"], responses=_errors(401, 403, 429))
    def reload_models(key: AdminKey, service: ServiceDep) -> ModelsResponse:
        """Ask the registry for the champions now (the service also does so every few seconds)."""
        service.refresh()
        return models(key, service)

    # ------------------------------------------------------------------ decisions
    @app.post(
        "/v1/evaluations",
        response_model=EvaluationResponse,
        tags=["decisions"],
        responses=_errors(401, 403, 404, 413, 422, 429, 503),
    )
    def evaluate(body: EvaluationRequest, key: EvaluatorKey, service: ServiceDep) -> Response:
        """公共信用综合评价 of one enterprise: probability, score, grade and the reasons behind them.

        A bank needs the enterprise's unexpired authorization for `evaluation` or `pre_credit`.
        """
        models = _models(service)
        values, warnings = _values(service, body.uscc)
        consent = _consent(service, key, body.uscc, (Purpose.EVALUATION, Purpose.PRE_CREDIT), "POST /v1/evaluations")
        result = evaluation_result(models.evaluation, values)
        assert service.catalog is not None and service.online is not None
        record = evaluation_record(result, service.catalog, values)
        disputed, excluded = _records(service, body.uscc)
        decision_id = str(uuid.uuid4())
        _store(
            service,
            key,
            kind="evaluation",
            decision_id=decision_id,
            uscc=body.uscc,
            values=values,
            models=models,
            evaluation=record,
            pre_credit=None,
            consent=consent,
            records=(disputed, excluded),
            warnings=warnings,
        )
        metrics.decisions.labels("evaluation", result.grade, "").inc()
        return _json(
            EvaluationResponse(
                decision_id=decision_id,
                uscc=body.uscc,
                name=str(values.get("name", "")),
                as_of=service.online.as_of,
                probability=round(result.probability, 6),
                score=result.score,
                grade=result.grade,
                grade_label_zh=result.grade_label_zh,
                model_grade=result.model_grade,
                overrides=record["overrides"],
                base_points=round(result.base_points, 1),
                reasons=record["reasons"],
                disputed_records=[RecordPublic(**r) for r in disputed],
                model=_public(models.evaluation),
                warnings=warnings,
            )
        )

    @app.post(
        "/v1/pre-credit",
        response_model=PreCreditResponse,
        tags=["decisions"],
        responses=_errors(401, 403, 404, 413, 422, 429, 503),
    )
    def pre_credit(body: PreCreditRequest, key: BankKey, service: ServiceDep) -> Response:
        """信易贷预授信: the limit, approve / refer / decline, the grade, the reasons and every policy step.

        Only for an enterprise that has authorized this bank for `pre_credit`, unexpired.
        """
        models = _models(service)
        if not models.pre_credit_ready:
            raise ApiError(
                503,
                "no_pre_credit_model",
                "预授信模型尚未加载",
                "no pre-credit champions loaded (pre_credit_default, pre_credit_amount)",
            )
        values, warnings = _values(service, body.uscc)
        consent = _consent(service, key, body.uscc, (Purpose.PRE_CREDIT,), "POST /v1/pre-credit")
        assert consent is not None and service.catalog is not None and service.online is not None
        result = pre_credit_result(models, values)
        evaluation = evaluation_record(result.evaluation, service.catalog, values)
        record = pre_credit_record(result, service.catalog, values)
        disputed, excluded = _records(service, body.uscc)
        decision_id = str(uuid.uuid4())
        _store(
            service,
            key,
            kind="pre_credit",
            decision_id=decision_id,
            uscc=body.uscc,
            values=values,
            models=models,
            evaluation=evaluation,
            pre_credit=record,
            consent=consent,
            records=(disputed, excluded),
            warnings=warnings,
            reference=body.reference,
        )
        metrics.decisions.labels("pre_credit", result.evaluation.grade, record["decision"]).inc()
        return _json(
            PreCreditResponse(
                decision_id=decision_id,
                uscc=body.uscc,
                name=str(values.get("name", "")),
                as_of=service.online.as_of,
                pre_credit_limit=record["pre_credit_limit"],
                decision=record["decision"],
                decision_zh=record["decision_zh"],
                grade=result.evaluation.grade,
                grade_label_zh=result.evaluation.grade_label_zh,
                score=result.evaluation.score,
                probability=round(result.evaluation.probability, 6),
                default_probability=round(result.default_probability, 6),
                reasons=record["reasons"],
                evaluation_reasons=evaluation["reasons"],
                policy=record["policy"]["name"],
                policy_version=record["policy"]["version"],
                policy_steps=record["policy_steps"],
                disputed_records=[RecordPublic(**r) for r in disputed],
                models=[_public(m) for m in models.members()],
                consent_id=str(consent["consent_id"]),
                warnings=warnings,
            )
        )

    @app.post(
        BATCH_PATH,
        tags=["decisions"],
        response_class=StreamingResponse,
        responses={
            200: {
                "content": {"application/x-ndjson": {"example": '{"uscc": "...", "grade": "B", ...}\n'}},
                "description": "one JSON line per USCC, in the order asked: an evaluation, or an error",
            },
            **_errors(401, 403, 413, 422, 429, 503),
        },
    )
    def batch_evaluations(body: BatchEvaluationRequest, key: AnalystKey, service: ServiceDep) -> StreamingResponse:
        """Evaluate up to 10,000 enterprises; the answer streams back as JSON lines while it is computed.

        A malformed or unknown USCC gets an error line with the same codes as `/v1/evaluations`;
        every evaluation is stored (and can be opened by its `decision_id`).
        """
        models = _models(service)
        return StreamingResponse(_batch(service, key, models, body.usccs), media_type="application/x-ndjson")

    @app.get(
        "/v1/decisions/{decision_id}",
        response_model=DecisionResponse,
        response_model_exclude_none=False,
        tags=["decisions"],
        responses=_errors(401, 403, 404, 429),
    )
    def decision(decision_id: str, key: DecisionReaderKey, service: ServiceDep) -> DecisionResponse:
        """A stored decision in full: inputs, every SHAP value, reasons, policy steps, model versions,
        requester, consent, excluded and disputed records. A bank sees only its own decisions."""
        stored = _visible_decision(service, key, decision_id)
        p = stored["payload"]
        return DecisionResponse(
            decision_id=stored["event_id"],
            kind=stored["kind"],
            created_at=stored["created_at"],
            uscc=stored["uscc"],
            name=p["name"],
            as_of=p["as_of"],
            requester=RequesterPublic(key_id=stored["key_id"], role=stored["role"], bank_id=stored["bank_id"]),
            consent=p.get("consent"),
            reference=p.get("reference"),
            inputs=p["inputs"],
            evaluation=p["evaluation"],
            pre_credit=p.get("pre_credit"),
            # repaired records are no longer published (信用修复): only a regulator sees them
            excluded_records=p["excluded_records"] if key.role == Role.REGULATOR else None,
            disputed_records=p["disputed_records"],
            warnings=p.get("warnings", []),
            audit={"seq": stored["seq"], "hash": stored["hash"], "prev_hash": stored["prev_hash"]},
        )

    @app.post(
        "/v1/decisions/{decision_id}/replay",
        response_model=ReplayResponse,
        tags=["decisions"],
        responses=_errors(401, 403, 404, 429, 503),
    )
    def replay(decision_id: str, key: RegulatorKey, service: ServiceDep) -> ReplayResponse:
        """Recompute a stored decision from its stored inputs with the model versions and policy it used,
        and say whether the result is identical (changes nothing)."""
        stored = _visible_decision(service, key, decision_id)
        return _replay(service, stored)

    # ------------------------------------------------------------------ outcomes
    @app.post(
        "/v1/outcomes",
        response_model=OutcomeResponse,
        tags=["outcomes"],
        responses={**_errors(401, 403, 404, 409, 413, 422, 429), 201: {"model": OutcomeResponse}},
        status_code=201,
    )
    def report_outcome(body: OutcomeRequest, key: BankKey, service: ServiceDep, response: Response) -> OutcomeResponse:
        """What the bank lent on one of its pre-credit decisions and how the loan performs, as of a date.

        Idempotent per decision and report date: the same report again answers 200 with
        `duplicate: true`; different figures for the same date are a 409.
        """
        assert service.engine is not None
        stored = _visible_decision(service, key, body.decision_id)
        if stored["kind"] != "pre_credit":
            raise ApiError(
                422,
                "not_pre_credit",
                "只能就预授信决定报送贷款结果",
                "outcomes are reported on pre-credit decisions",
                field="decision_id",
            )
        if body.report_date > dt.date.today():
            raise ApiError(
                422, "future_report", "报送日期晚于今天", "report_date is in the future", field="report_date"
            )
        report = body.model_dump(mode="json")
        idem = f"{body.decision_id}|{body.report_date.isoformat()}"
        try:
            [outcome_id] = append(
                service.engine,
                [
                    Event(
                        kind="outcome",
                        payload={"report": report, "uscc": stored["uscc"]},
                        key=key,
                        uscc=stored["uscc"],
                        ref_id=body.decision_id,
                        idem_key=idem,
                    )
                ],
            )
            duplicate = False
        except DuplicateEvent:
            earlier = find_idempotent(service.engine, idem)
            assert earlier is not None
            if earlier["payload"]["report"] != report:
                raise ApiError(
                    409,
                    "outcome_conflict",
                    "该决定在该报送日期已报送了不同的数据",
                    f"an outcome for decision {body.decision_id} on {body.report_date} was already reported "
                    f"with other figures (outcome {earlier['event_id']})",
                ) from None
            outcome_id, duplicate = earlier["event_id"], True
            response.status_code = 200
        return OutcomeResponse(
            outcome_id=outcome_id, decision_id=body.decision_id, report_date=body.report_date, duplicate=duplicate
        )

    @app.get(
        "/v1/outcomes", response_model=list[OutcomePublic], tags=["outcomes"], responses=_errors(401, 403, 404, 429)
    )
    def outcomes(
        key: DecisionReaderKey,
        service: ServiceDep,
        decision_id: Annotated[str | None, Query(description="only this decision's reports")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[OutcomePublic]:
        """Outcome reports, newest first: a bank sees only its own; a regulator sees all."""
        assert service.engine is not None
        if decision_id is not None:
            _visible_decision(service, key, decision_id)
        rows = events(
            service.engine,
            kinds=["outcome"],
            ref_id=decision_id,
            bank_id=key.bank_id if key.role == Role.BANK else None,
            limit=limit,
        )
        return [
            OutcomePublic(
                outcome_id=r["event_id"],
                decision_id=r["ref_id"],
                bank_id=r["bank_id"],
                created_at=r["created_at"],
                report=r["payload"]["report"],
            )
            for r in rows
        ]

    # ------------------------------------------------------------------ consents
    @app.post(
        "/v1/consents",
        response_model=ConsentPublic,
        status_code=201,
        tags=["consents"],
        responses=_errors(401, 403, 413, 422, 429),
    )
    def create_consent(body: ConsentRequest, key: AdminKey, service: ServiceDep) -> ConsentPublic:
        """Record an enterprise's authorization (授权) of a bank for a purpose, from a date until a date."""
        assert service.engine is not None
        try:
            row = grant_consent(
                service.engine,
                uscc=body.uscc,
                bank_id=body.bank_id,
                purpose=body.purpose,
                granted_on=body.granted_on,
                expires_on=body.expires_on,
                evidence=body.evidence,
                created_by=f"key:{key.key_id}",
                key=key,
            )
        except ValueError as exc:
            raise ApiError(422, "invalid_consent", "授权期限不合法", str(exc), field="expires_on") from exc
        return ConsentPublic(**row)

    @app.get("/v1/consents", response_model=list[ConsentPublic], tags=["consents"], responses=_errors(401, 403, 429))
    def consents(
        key: ConsentReaderKey,
        service: ServiceDep,
        uscc: Annotated[str | None, Query()] = None,
        bank_id: Annotated[str | None, Query()] = None,
    ) -> list[ConsentPublic]:
        """Consents, newest first (admins and regulators)."""
        assert service.engine is not None
        return [ConsentPublic(**r) for r in list_consents(service.engine, uscc=uscc, bank_id=bank_id)]

    @app.post(
        "/v1/consents/{consent_id}/revoke",
        response_model=ConsentPublic,
        tags=["consents"],
        responses=_errors(401, 403, 404, 429),
    )
    def revoke(consent_id: str, key: AdminKey, service: ServiceDep) -> ConsentPublic:
        """Revoke a consent from now on (decisions already made keep the consent they were made under)."""
        assert service.engine is not None
        row = revoke_consent(service.engine, consent_id, by=f"key:{key.key_id}", key=key)
        if row is None:
            raise ApiError(404, "unknown_consent", "没有该有效授权", f"no live consent {consent_id}")
        return ConsentPublic(**row)

    return app


# ---------------------------------------------------------------------------- helpers
def _json(body: BaseModel) -> Response:
    """The response model as JSON, as FastAPI would send it, without its second validation.

    FastAPI dumps a returned model to a dict, validates that dict against the response model
    again and serialises the result; the model was validated when it was built.
    """
    return Response(body.model_dump_json(), media_type="application/json")


def _public(model: Any) -> ModelPublic:
    return ModelPublic(name=model.name, version=model.version, alias=model.alias)


def _window(lineage: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "data_start",
        "data_extract_date",
        "train_as_of",
        "test_as_of",
        "train_vintages",
        "test_vintages",
        "data_fingerprint",
        "code_version",
    )
    return {k: lineage[k] for k in keys if k in lineage}


def _models(service: ServiceState) -> ModelSet:
    models = service.models  # taken once: a swap during this request does not mix versions
    if models is None or service.online is None:
        raise ApiError(
            503,
            "not_ready",
            "服务尚未加载模型或特征",
            "no model or feature snapshot loaded: " + "; ".join(service.all_problems()),
        )
    return models


def _values(service: ServiceState, uscc: str) -> tuple[dict[str, Any], list[str]]:
    """The enterprise's feature values (404 when it is not in the population) and warnings."""
    assert service.online is not None
    warnings = []
    values = service.online.values(uscc)
    check = [p for p in validate(uscc) if p.fault == UsccFault.CHECK]
    if check:
        if values is None:
            raise ApiError(422, "invalid_uscc", check[0].message_zh, check[0].message_en, field="uscc")
        warnings.append(f"uscc fails its check character but is registered (early pilot code): {check[0].message}")
    if values is None:
        raise ApiError(
            404,
            "unknown_enterprise",
            "该主体不在当前评价范围内（未登记或已注销）",
            f"enterprise {uscc} is not in the evaluation population as of {service.online.as_of}",
            field="uscc",
        )
    return values, warnings


def _consent(
    service: ServiceState, key: ApiKey, uscc: str, purposes: tuple[Purpose, ...], what: str
) -> dict[str, Any] | None:
    """The consent a bank's request is made under; a 403 (audited) when there is none in force."""
    if key.role != Role.BANK:
        return None
    assert service.engine is not None and key.bank_id is not None
    today = dt.date.today()
    consent = live_consent(service.engine, uscc=uscc, bank_id=key.bank_id, purposes=purposes, on=today)
    if consent is None:
        wanted = " or ".join(p.value for p in purposes)
        raise refuse(
            service,
            key,
            code="no_consent",
            zh=f"该主体未授权本银行（{key.bank_id}）用于此用途，或授权已过期、已撤销",
            en=f"enterprise {uscc} has no unexpired, unrevoked authorization of bank {key.bank_id} for {wanted} "
            f"on {today}",
            uscc=uscc,
            what=what,
        )
    return {
        "consent_id": consent["consent_id"],
        "purpose": consent["purpose"],
        "granted_on": str(consent["granted_on"]),
        "expires_on": str(consent["expires_on"]),
        "evidence": consent["evidence"],
    }


def _records(service: ServiceState, uscc: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(disputed, excluded) records of the enterprise on the snapshot's date."""
    rows = service.exceptions.get(uscc, [])
    return [r for r in rows if r["status"] == "disputed"], [r for r in rows if r["status"] != "disputed"]


def _store(
    service: ServiceState,
    key: ApiKey,
    *,
    kind: str,
    decision_id: str,
    uscc: str,
    values: dict[str, Any],
    models: ModelSet,
    evaluation: dict[str, Any],
    pre_credit: dict[str, Any] | None,
    consent: dict[str, Any] | None,
    records: tuple[list[dict[str, Any]], list[dict[str, Any]]],
    warnings: list[str],
    reference: str | None = None,
) -> None:
    assert service.engine is not None and service.catalog is not None and service.online is not None
    payload = _payload(
        service,
        key,
        uscc=uscc,
        values=values,
        models=models,
        evaluation=evaluation,
        pre_credit=pre_credit,
        consent=consent,
        records=records,
        warnings=warnings,
        reference=reference,
    )
    append(service.engine, [Event(kind=kind, payload=payload, key=key, uscc=uscc, event_id=decision_id)])


def _payload(
    service: ServiceState,
    key: ApiKey,
    *,
    uscc: str,
    values: dict[str, Any],
    models: ModelSet,
    evaluation: dict[str, Any],
    pre_credit: dict[str, Any] | None,
    consent: dict[str, Any] | None,
    records: tuple[list[dict[str, Any]], list[dict[str, Any]]],
    warnings: list[str],
    reference: str | None = None,
) -> dict[str, Any]:
    assert service.catalog is not None and service.online is not None
    # the evaluation reads its model's features; a pre-credit decision every served model's and the policy's
    features = models.features() if pre_credit is not None else list(models.evaluation.config.features)
    return {
        "name": str(values.get("name", "")),
        "as_of": str(service.online.as_of),
        "requester": {"key_id": key.key_id, "role": key.role.value, "bank_id": key.bank_id, "label": key.label},
        "consent": consent,
        "reference": reference,
        "inputs": inputs_record(features, service.catalog, values),
        "evaluation": evaluation,
        "pre_credit": pre_credit,
        "disputed_records": records[0],
        "excluded_records": records[1],
        "warnings": warnings,
    }


def _visible_decision(service: ServiceState, key: ApiKey, decision_id: str) -> dict[str, Any]:
    """The stored decision, or 404 when there is none this key may see (a bank sees only its own)."""
    assert service.engine is not None
    try:
        uuid.UUID(decision_id)
    except ValueError:
        raise ApiError(
            422,
            "invalid_decision_id",
            "决定编号格式不正确",
            f"decision id {decision_id!r} is not a UUID",
            field="decision_id",
        ) from None
    stored = get_decision(service.engine, decision_id)
    # another bank's decision answers exactly as a missing one: its existence is not disclosed either
    if stored is None or (key.role == Role.BANK and stored["bank_id"] != key.bank_id):
        raise ApiError(404, "unknown_decision", "没有该决定", f"no decision {decision_id} visible to this key")
    return stored


def _replay(service: ServiceState, stored: dict[str, Any]) -> ReplayResponse:
    assert service.registry is not None
    p = stored["payload"]
    values = {i["feature"]: i["value"] for i in p["inputs"]}
    ev = p["evaluation"]["model"]
    try:
        evaluation_model = service.registry.version(ev["name"], ev["version"], alias=ev.get("alias"))
        evaluation = evaluation_result(evaluation_model, values)
        again_eval = evaluation_record(evaluation, service.catalog, values)  # type: ignore[arg-type]
        diffs = differences(p["evaluation"], again_eval, EVALUATION_FIELDS, "evaluation")
        used = [evaluation_model]
        recomputed: dict[str, Any] = {k: again_eval[k] for k in ("probability", "score", "grade", "model_grade")}
        if stored["kind"] == "pre_credit":
            pc = p["pre_credit"]
            default = service.registry.version(DEFAULT, pc["default_model"]["version"])
            amount = service.registry.version(AMOUNT, pc["amount_model"]["version"])
            policy = LimitPolicy.model_validate(pc["policy_document"])
            models = ModelSet(
                evaluation=evaluation_model,
                default=default,
                amount=amount,
                policy=policy,
                loaded_at=dt.datetime.now(dt.UTC),
            )
            again = pre_credit_record(pre_credit_result(models, values), service.catalog, values)  # type: ignore[arg-type]
            diffs += differences(pc, again, PRE_CREDIT_FIELDS, "pre_credit")
            for part, field in (
                ("default_model", "shap_points"),
                ("amount_model", "shap_log"),
                ("amount_model", "estimate"),
            ):
                if json.dumps(pc[part][field], sort_keys=True) != json.dumps(again[part][field], sort_keys=True):
                    diffs.append(f"pre_credit.{part}.{field}")
            used += [default, amount]
            recomputed |= {k: again[k] for k in ("pre_credit_limit", "decision", "default_probability")}
    except ApiError:
        raise
    except Exception as exc:  # the registry is unreachable or the version was deleted
        raise ApiError(
            503,
            "replay_unavailable",
            "无法加载该决定所用的模型版本",
            f"cannot load the decision's model versions: {exc}",
        ) from exc
    return ReplayResponse(
        decision_id=stored["event_id"],
        identical=not diffs,
        differences=diffs,
        models=[_public(m) for m in used],
        recomputed=recomputed,
    )


def _batch(service: ServiceState, key: ApiKey, models: ModelSet, usccs: list[str]) -> Iterator[bytes]:
    """Evaluate in chunks, store each chunk in one transaction, and yield JSON lines as they are ready."""
    assert service.online is not None and service.catalog is not None and service.engine is not None
    for start in range(0, len(usccs), BATCH_CHUNK):
        lines: list[tuple[int, dict[str, Any]]] = []
        todo: list[tuple[int, str, dict[str, Any], list[str]]] = []
        for i, raw in enumerate(usccs[start : start + BATCH_CHUNK], start=start):
            try:
                uscc = uscc_shape(raw)
                values, warnings = _values(service, uscc)
            except UsccValueError as exc:
                p = exc.problem
                lines.append(
                    (
                        i,
                        {
                            "uscc": raw,
                            "error": {"code": "invalid_uscc", "message_zh": p.message_zh, "message_en": p.message_en},
                        },
                    )
                )
                continue
            except ApiError as exc:
                lines.append(
                    (
                        i,
                        {
                            "uscc": raw,
                            "error": {"code": exc.code, "message_zh": exc.message_zh, "message_en": exc.message_en},
                        },
                    )
                )
                continue
            todo.append((i, uscc, values, warnings))
        results = evaluation_results(models.evaluation, [t[2] for t in todo])
        stored = []
        for (i, uscc, values, warnings), result in zip(todo, results, strict=True):
            record = evaluation_record(result, service.catalog, values)
            disputed, excluded = _records(service, uscc)
            decision_id = str(uuid.uuid4())
            payload = _payload(
                service,
                key,
                uscc=uscc,
                values=values,
                models=models,
                evaluation=record,
                pre_credit=None,
                consent=None,
                records=(disputed, excluded),
                warnings=warnings,
            )
            stored.append(Event(kind="evaluation", payload=payload, key=key, uscc=uscc, event_id=decision_id))
            lines.append(
                (
                    i,
                    {
                        "decision_id": decision_id,
                        "uscc": uscc,
                        "name": payload["name"],
                        "as_of": payload["as_of"],
                        "probability": round(result.probability, 6),
                        "score": result.score,
                        "grade": result.grade,
                        "model_grade": result.model_grade,
                        "overrides": record["overrides"],
                        "reasons": record["reasons"],
                        "disputed_records": disputed,
                        "model": model_ref(models.evaluation),
                        "warnings": warnings,
                    },
                )
            )
        if stored:
            append(service.engine, stored)
        lines.sort(key=lambda t: t[0])
        yield b"".join(json.dumps(line, ensure_ascii=False, default=str).encode() + b"\n" for _, line in lines)


__all__ = ["DECISION_KINDS", "EVALUATION", "create_app"]
