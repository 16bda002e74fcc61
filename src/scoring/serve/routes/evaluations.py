"""Decisions: the public credit evaluation, the 信易贷 pre-credit limit, and evaluations in a batch."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response, StreamingResponse

from scoring.serve import flow
from scoring.serve.deps import AnalystKey, BankKey, DeciderDep, EvaluatorKey, MetricsDep, ServiceDep
from scoring.serve.responses import errors, json_response
from scoring.serve.schemas import (
    BatchEvaluationRequest,
    EvaluationRequest,
    EvaluationResponse,
    PreCreditRequest,
    PreCreditResponse,
)

BATCH_PATH = "/v1/batch/evaluations"

router = APIRouter(tags=["decisions"])


@router.post(
    "/v1/evaluations", response_model=EvaluationResponse, responses=errors(400, 401, 403, 404, 413, 422, 429, 503)
)
def evaluate(body: EvaluationRequest, key: EvaluatorKey, service: ServiceDep, metrics: MetricsDep) -> Response:
    """公共信用综合评价 of one enterprise: probability, score, grade and the reasons behind them.

    A bank needs the enterprise's unexpired authorization for `evaluation` or `pre_credit`.
    """
    answer = flow.evaluate(service, key, body.uscc)
    metrics.decisions.labels("evaluation", answer.grade, "").inc()
    return json_response(answer)


@router.post(
    "/v1/pre-credit", response_model=PreCreditResponse, responses=errors(400, 401, 403, 404, 413, 422, 429, 503)
)
async def pre_credit(body: PreCreditRequest, key: BankKey, decider: DeciderDep, metrics: MetricsDep) -> Response:
    """信易贷预授信: the limit, approve / refer / decline, the grade, the reasons and every policy step.

    Only for an enterprise that has authorized this bank for `pre_credit`, unexpired.
    """
    # async: the request waits on the decider's thread (decided with the others waiting), not on the pool's
    answer = await decider.pre_credit(flow.PreCreditAsk(key=key, uscc=body.uscc, reference=body.reference))
    metrics.decisions.labels("pre_credit", answer.grade, answer.decision).inc()
    return json_response(answer)


@router.post(
    BATCH_PATH,
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"application/x-ndjson": {"example": '{"uscc": "...", "grade": "B", ...}\n'}},
            "description": "one JSON line per USCC, in the order asked: an evaluation, or an error",
        },
        **errors(400, 401, 403, 413, 422, 429, 503),
    },
)
def batch_evaluations(body: BatchEvaluationRequest, key: AnalystKey, service: ServiceDep) -> StreamingResponse:
    """Evaluate up to 10,000 enterprises; the answer streams back as JSON lines while it is computed.

    A malformed or unknown USCC gets an error line with the same codes as `/v1/evaluations`;
    every evaluation is stored (and can be opened by its `decision_id`).
    """
    ready = service.ready()  # 503 before the stream starts; one model set for the whole batch
    return StreamingResponse(flow.batch(service, ready, key, body.usccs), media_type="application/x-ndjson")
