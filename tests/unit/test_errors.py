"""The one error family: what an error carries, and how the API's one handler answers it."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from scoring.errors import ApiError, ScoringError
from scoring.features.catalog import CatalogError
from scoring.features.online import OnlineFeaturesError
from scoring.serve.handlers import install_handlers


def test_an_error_carries_its_code_status_and_both_messages() -> None:
    exc = OnlineFeaturesError("no feature snapshot in var/warehouse.duckdb")
    assert (exc.code, exc.status, exc.http_status_code()) == ("no_features", 503, 503)
    assert exc.message_en == str(exc) == "no feature snapshot in var/warehouse.duckdb"
    assert exc.message_zh == "没有可用的特征快照：no feature snapshot in var/warehouse.duckdb"
    assert isinstance(exc, ScoringError) and isinstance(exc, RuntimeError)  # old except clauses still hold
    named = ApiError(409, "conflict", "冲突", "a conflict", field="report_date", headers={"X-A": "1"})
    assert named.detail() == {
        "code": "conflict",
        "message_zh": "冲突",
        "message_en": "a conflict",
        "field": "report_date",
    }


def _client() -> TestClient:
    app = FastAPI()
    install_handlers(app)

    @app.get("/api")
    def api() -> None:
        raise ApiError(429, "rate_limited", "请求过于频繁", "too many", headers={"Retry-After": "3"})

    @app.get("/features")
    def features() -> None:
        raise OnlineFeaturesError("no snapshot")

    @app.get("/catalog")
    def catalog() -> None:
        raise CatalogError("/srv/secret/features/catalog.yaml: features[3].window: bad")

    return TestClient(app, raise_server_exceptions=False)


def test_the_one_handler_answers_each_error_with_its_status_code_and_headers() -> None:
    client = _client()
    r = client.get("/api")
    assert r.status_code == 429 and r.headers["Retry-After"] == "3"
    assert r.json() == {
        "error": {"code": "rate_limited", "message_zh": "请求过于频繁", "message_en": "too many", "field": None}
    }
    r = client.get("/features")
    assert r.status_code == 503 and r.json()["error"]["code"] == "no_features"


def test_an_error_without_a_status_is_a_logged_500_that_keeps_its_text_inside(caplog) -> None:
    r = _client().get("/catalog")
    assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"
    assert "secret" not in r.text
    assert any("catalog.yaml" in str(rec.exc_info[1]) for rec in caplog.records if rec.exc_info)


def test_only_a_store_that_cannot_be_reached_is_503_store_unavailable() -> None:
    import sqlite3

    import sqlalchemy as sa

    from scoring.store import unavailable

    def wrapped(orig: Exception, kind: type[sa.exc.DBAPIError] = sa.exc.OperationalError) -> sa.exc.DBAPIError:
        return kind("SELECT 1", {}, orig)

    locked = unavailable(wrapped(sqlite3.OperationalError("database is locked")))
    assert locked is not None and locked.code == "store_unavailable" and locked.headers == {"Retry-After": "5"}
    assert unavailable(wrapped(sqlite3.OperationalError("no such table: audit_log"))) is None  # a fault of the code
    assert unavailable(wrapped(sqlite3.IntegrityError("UNIQUE constraint failed"), sa.exc.IntegrityError)) is None
    assert unavailable(ValueError("not a driver's error")) is None
