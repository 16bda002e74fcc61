"""Consents: an enterprise's authorization (授权) of a bank for a purpose, recorded, listed and revoked."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from scoring.errors import ApiError
from scoring.serve.deps import AdminKey, ConsentIdPath, ConsentReaderKey, ServiceDep
from scoring.serve.responses import errors
from scoring.serve.schemas import ConsentPublic, ConsentRequest
from scoring.store import grant_consent, list_consents, revoke_consent

router = APIRouter(tags=["consents"])


@router.post(
    "/v1/consents", response_model=ConsentPublic, status_code=201, responses=errors(400, 401, 403, 413, 422, 429)
)
def create_consent(body: ConsentRequest, key: AdminKey, service: ServiceDep) -> ConsentPublic:
    """Record an enterprise's authorization (授权) of a bank for a purpose, from a date until a date."""
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


@router.get("/v1/consents", response_model=list[ConsentPublic], responses=errors(401, 403, 429))
def consents(
    key: ConsentReaderKey,
    service: ServiceDep,
    uscc: Annotated[str | None, Query()] = None,
    bank_id: Annotated[str | None, Query()] = None,
) -> list[ConsentPublic]:
    """Consents, newest first (admins and regulators)."""
    return [ConsentPublic(**r) for r in list_consents(service.engine, uscc=uscc, bank_id=bank_id)]


@router.post("/v1/consents/{consent_id}/revoke", response_model=ConsentPublic, responses=errors(401, 403, 404, 429))
def revoke(consent_id: ConsentIdPath, key: AdminKey, service: ServiceDep) -> ConsentPublic:
    """Revoke a consent from now on (decisions already made keep the consent they were made under)."""
    row = revoke_consent(service.engine, consent_id, by=f"key:{key.key_id}", key=key)
    if row is None:
        raise ApiError(404, "unknown_consent", "没有该有效授权", f"no live consent {consent_id}")
    return ConsentPublic(**row)
