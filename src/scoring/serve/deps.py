"""The service state and the dependencies endpoints declare (``ServiceDep``, ``CurrentKey``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from scoring.features.catalog import Catalog, load_catalog
from scoring.features.online import OnlineFeatures, OnlineFeaturesError, load_online
from scoring.registry.store import LoadedModel, configure, load_version, resolve_alias
from scoring.serve.store import ApiKey, authenticate, engine_for
from scoring.settings import Settings

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answered with a stable code and a message in Chinese and English."""

    def __init__(
        self,
        status: int,
        code: str,
        message_zh: str,
        message_en: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message_en)
        self.status, self.code, self.message_zh, self.message_en, self.field = (
            status,
            code,
            message_zh,
            message_en,
            field,
        )
        self.headers = headers


@dataclass
class ServiceState:
    """What the service loaded at start: settings, catalog, champion model, online features."""

    settings: Settings
    catalog: Catalog | None = None
    model: LoadedModel | None = None
    online: OnlineFeatures | None = None
    engine: sa.Engine | None = None
    problems: list[str] = field(default_factory=list)

    def load(self) -> None:
        s = self.settings
        self.problems = []
        self.engine = engine_for(s.decision_url)
        self.catalog = load_catalog(s.catalog_path)
        try:
            configure(s)
            version = resolve_alias(s.model_name, s.model_alias)
            self.model = load_version(s.model_name, version, alias=s.model_alias)
        except Exception as exc:  # the registry may be empty or unreachable: serve nothing, say why
            log.warning("no model loaded: %s", exc)
            self.problems.append(f"no {s.model_alias} model {s.model_name!r} in the registry: {exc}")
        try:
            self.online = load_online(s.warehouse_path, self.catalog)
        except OnlineFeaturesError as exc:
            log.warning("no online features: %s", exc)
            self.problems.append(str(exc))
        if self.model and self.online:
            missing = [f for f in self.model.config.features if f not in self.online.frame.columns]
            if missing:
                self.problems.append(f"the feature snapshot lacks model features {missing}")
                self.online = None

    @property
    def ready(self) -> bool:
        return self.model is not None and self.online is not None


def get_service(request: Request) -> ServiceState:
    return request.app.state.service


ServiceDep = Annotated[ServiceState, Depends(get_service)]

_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer sk_...`")


def current_key(
    service: ServiceDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> ApiKey:
    if credentials is None or not credentials.credentials:
        raise ApiError(
            401,
            "missing_api_key",
            "缺少API密钥",
            "missing API key: send Authorization: Bearer <key>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    assert service.engine is not None
    key = authenticate(service.engine, credentials.credentials)
    if key is None:
        raise ApiError(
            401,
            "invalid_api_key",
            "API密钥无效或已吊销",
            "invalid or revoked API key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return key


CurrentKey = Annotated[ApiKey, Depends(current_key)]
