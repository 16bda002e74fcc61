"""The models being served: versions, training windows, model cards, and a reload on demand."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from scoring.errors import ApiError
from scoring.serve.deps import AdminKey, AnyKey, ServiceDep
from scoring.serve.responses import errors
from scoring.serve.schemas import ModelsResponse, ServedModelPublic
from scoring.serve.state import Service

router = APIRouter(tags=["models"])

WINDOW_KEYS = (
    "data_start",
    "data_extract_date",
    "train_as_of",
    "test_as_of",
    "train_vintages",
    "test_vintages",
    "data_fingerprint",
    "code_version",
)


def _window(lineage: dict[str, Any]) -> dict[str, Any]:
    return {k: lineage[k] for k in WINDOW_KEYS if k in lineage}


def served_models(service: Service) -> ModelsResponse:
    """The served set with its training windows and the registry's last answer."""
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


@router.get("/v1/models", response_model=ModelsResponse, responses=errors(401, 429))
def models(key: AnyKey, service: ServiceDep) -> ModelsResponse:
    """The models being served: versions, training window, a link to each model card."""
    return served_models(service)


MARKDOWN = "text/markdown; charset=utf-8"


@router.get(
    "/v1/models/{name}/{version}/card",
    response_class=Response,  # no media type of its own: the errors are documented as JSON, the card as Markdown
    responses={
        200: {
            "description": "the model card in Markdown",
            "content": {"text/markdown": {"schema": {"type": "string"}}},
        },
        **errors(401, 404, 429),
    },
)
def model_card(name: str, version: str, key: AnyKey, service: ServiceDep) -> Response:
    """The model card (Markdown) of a served or recently used version."""
    loaded = None
    if service.models:
        loaded = next((x for x in service.models.members() if x.name == name and x.version == version), None)
    if loaded is None or not loaded.model_card:
        raise ApiError(404, "no_model_card", "没有该模型版本的说明", f"no model card for {name} v{version} here")
    return Response(loaded.model_card, media_type=MARKDOWN)


@router.post("/v1/models/reload", response_model=ModelsResponse, responses=errors(401, 403, 429))
def reload_models(key: AdminKey, service: ServiceDep) -> ModelsResponse:
    """Ask the registry for the champions now (the service also does so every few seconds)."""
    service.refresh()
    return served_models(service)
