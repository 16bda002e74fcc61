"""An enterprise's query log (查询记录): every request about it, who made it, when, for what and under which
authorization, as credit-information rules require it be shown to the enterprise.

Read from the audit log (the record, covered by the hash chain): the decisions about the enterprise
and the requests about it that were refused. What a bank decided (its limit, its model's figures) is
the bank's and is not part of an entry; neither is which other enterprise's key asked (only that one did).
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa

from scoring.store.tables import DECISION_KINDS, audit_log

QUERY_KINDS = (*DECISION_KINDS, "refusal")

# what each kind of request was for, when no authorization says it (a bank's always does)
_ROLE_PURPOSE = {
    "regulator": ("supervision", "监管查询"),
    "analyst": ("analysis", "分析评估"),
    "admin": ("administration", "系统管理"),
    "enterprise": ("own_enquiry", "企业自查"),
}
_PURPOSE_ZH = {"pre_credit": "信易贷预授信", "evaluation": "查询公共信用综合评价"}
_KIND_ZH = {"evaluation": "公共信用综合评价", "pre_credit": "信易贷预授信", "refusal": "请求被拒绝"}


def queries_about(engine: sa.Engine, uscc: str, *, before: int | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """The requests about ``uscc``, newest first: ``limit`` of them from before the entry ``before`` (its
    ``seq``, the cursor of the page before), each a dict of the fields of a query-log entry."""
    query = (
        sa.select(
            audit_log.c.seq,
            audit_log.c.event_id,
            audit_log.c.kind,
            audit_log.c.created_at,
            audit_log.c.role,
            audit_log.c.bank_id,
            audit_log.c.payload,
        )
        .where(audit_log.c.uscc == uscc, audit_log.c.kind.in_(QUERY_KINDS))
        .order_by(audit_log.c.seq.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(audit_log.c.seq < before)
    with engine.connect() as con:
        rows = con.execute(query).mappings().all()
    return [_entry(r) for r in rows]


def _entry(row: Any) -> dict[str, Any]:
    payload = orjson.loads(row["payload"])
    consent = payload.get("consent") or {}
    role = row["role"] or ""
    asked = str(payload.get("request") or "")
    if consent.get("purpose"):
        purpose = consent["purpose"]
        purpose_zh = _PURPOSE_ZH.get(purpose, purpose)
    elif role == "bank":  # a bank refused for want of an authorization: the purpose is the route's
        purpose = "pre_credit" if "pre-credit" in asked else "evaluation"
        purpose_zh = _PURPOSE_ZH[purpose]
    else:
        purpose, purpose_zh = _ROLE_PURPOSE.get(role, ("unknown", "未知"))
    refused = row["kind"] == "refusal"
    return {
        "cursor": row["seq"],
        "event_id": row["event_id"],
        "at": row["created_at"],
        "kind": row["kind"],
        "kind_zh": _KIND_ZH.get(row["kind"], row["kind"]),
        "request": asked if refused else None,
        "requester_role": role,
        "bank_id": row["bank_id"],
        "purpose": purpose,
        "purpose_zh": purpose_zh,
        "consent_id": consent.get("consent_id"),
        "answered": not refused,
        "refusal_code": payload.get("code") if refused else None,
    }
