"""Stored decisions: who may open which, the full record a regulator reads, and the replay that recomputes one."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from scoring.domain.decide import (
    EVALUATION_FIELDS,
    PRE_CREDIT_FIELDS,
    differences,
    evaluation_record,
    evaluation_result,
    pre_credit_record,
    pre_credit_result,
)
from scoring.domain.models import AMOUNT, DEFAULT, LoadedModel, ModelSet
from scoring.domain.policy import LimitPolicy
from scoring.errors import ApiError
from scoring.serve.flow import public
from scoring.serve.schemas import DecisionResponse, ReplayResponse, RequesterPublic
from scoring.serve.schemas_reviews import ReviewPublic
from scoring.serve.state import Service
from scoring.store import ApiKey, Role, get_decision


def visible_decision(service: Service, key: ApiKey, decision_id: str) -> dict[str, Any]:
    """The stored decision, or 404 when there is none this key may see (a bank sees only its own)."""
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
    # another bank's decision (or, to an enterprise, one about another enterprise) answers exactly as a
    # missing one: its existence is not disclosed either
    if (
        stored is None
        or (key.role == Role.BANK and stored["bank_id"] != key.bank_id)
        or (key.role == Role.ENTERPRISE and not key.is_about(stored["uscc"]))
    ):
        raise ApiError(404, "unknown_decision", "没有该决定", f"no decision {decision_id} visible to this key")
    return stored


def decision_response(
    stored: dict[str, Any], key: ApiKey, reviews: list[ReviewPublic] | None = None
) -> DecisionResponse:
    """A stored decision in full, as the caller's role may see it, with its human reviews."""
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
        reviews=reviews or [],
    )


def replay(service: Service, stored: dict[str, Any]) -> ReplayResponse:
    """Recompute a stored decision from its stored inputs with the model versions and policy it used.

    Raises:
        ApiError: 503 when a version it used cannot be loaded (the registry is unreachable or it was deleted).
    """
    p = stored["payload"]
    values = {i["feature"]: i["value"] for i in p["inputs"]}
    try:
        diffs, used, recomputed = _replay_evaluation(service, p, values)
        if stored["kind"] == "pre_credit":
            more, models, again = _replay_pre_credit(service, p, values, used[0])
            diffs += more
            used += models
            recomputed |= again
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
        models=[public(m) for m in used],
        recomputed=recomputed,
    )


def _replay_evaluation(
    service: Service, p: dict[str, Any], values: dict[str, Any]
) -> tuple[list[str], list[LoadedModel], dict[str, Any]]:
    ev = p["evaluation"]["model"]
    model = service.registry.version(ev["name"], ev["version"], alias=ev.get("alias"))
    again = evaluation_record(evaluation_result(model, values), service.catalog, values)
    diffs = differences(p["evaluation"], again, EVALUATION_FIELDS, "evaluation")
    return diffs, [model], {k: again[k] for k in ("probability", "score", "grade", "model_grade")}


def _replay_pre_credit(
    service: Service, p: dict[str, Any], values: dict[str, Any], evaluation: LoadedModel
) -> tuple[list[str], list[LoadedModel], dict[str, Any]]:
    pc = p["pre_credit"]
    default = service.registry.version(DEFAULT, pc["default_model"]["version"])
    amount = service.registry.version(AMOUNT, pc["amount_model"]["version"])
    models = ModelSet(
        evaluation=evaluation,
        default=default,
        amount=amount,
        policy=LimitPolicy.model_validate(pc["policy_document"]),
        loaded_at=dt.datetime.now(dt.UTC),
    )
    again = pre_credit_record(pre_credit_result(models, values), service.catalog, values)
    diffs = differences(pc, again, PRE_CREDIT_FIELDS, "pre_credit")
    for part, field in (("default_model", "shap_points"), ("amount_model", "shap_log"), ("amount_model", "estimate")):
        if json.dumps(pc[part][field], sort_keys=True) != json.dumps(again[part][field], sort_keys=True):
            diffs.append(f"pre_credit.{part}.{field}")
    recomputed = {k: again[k] for k in ("pre_credit_limit", "decision", "default_probability")}
    return diffs, [default, amount], recomputed
