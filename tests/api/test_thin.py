"""The thin path of POST /v1/pre-credit (serve/thin.py): the common case answered without FastAPI's
routing, exactly as FastAPI answers it; everything else passed on to FastAPI with its body intact."""

import asyncio
import datetime as dt
import json
from typing import Any

import pytest

from scoring.data.uscc import make_uscc
from scoring.serve.thin import ThinPreCredit
from scoring.store import Purpose, Role, create_key, engine_for, grant_consent


class _Inner:
    """The app behind the thin path: records what was passed on, answers 299."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope, receive, send) -> None:
        message = await receive()
        self.bodies.append(message.get("body", b""))
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def _call(client, thin: ThinPreCredit, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """One request through ``thin`` on the test client's event loop: status, headers, JSON body."""

    async def run() -> dict[str, Any]:
        sent: list[dict] = []
        chunks = [body[:7], body[7:]]  # in two parts, as a client may send it

        async def receive() -> dict:
            chunk = chunks.pop(0) if chunks else b""
            return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

        async def send(message: dict) -> None:
            sent.append(message)
            await asyncio.sleep(0)

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/v1/pre-credit",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        }
        await thin(scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return {
            "status": start["status"],
            "headers": {k.decode(): v.decode() for k, v in start["headers"]},
            "json": json.loads(payload) if payload else None,
            "route": scope.get("route"),
        }

    return client.portal.call(run)


@pytest.fixture(scope="module")
def bank(served, client) -> dict[str, str]:
    """A bank key of its own, authorized by one enterprise of the snapshot and cached by one request."""
    engine = engine_for(served.settings.decision_url)
    secret, _ = create_key(engine, role=Role.BANK, bank_id="BANK_THIN", rate_per_minute=100_000)
    ready = client.app.state.service.ready()
    uscc = str(ready.online.usccs[0])
    today = dt.date.today()
    grant_consent(
        engine,
        uscc=uscc,
        bank_id="BANK_THIN",
        purpose=Purpose.PRE_CREDIT,
        granted_on=today - dt.timedelta(days=1),
        expires_on=today + dt.timedelta(days=30),
        evidence="test",
        created_by="test",
    )
    first = client.post("/v1/pre-credit", json={"uscc": uscc}, headers={"Authorization": f"Bearer {secret}"})
    assert first.status_code == 200, first.text  # through FastAPI: the key was not cached yet
    return {"secret": secret, "uscc": uscc, "fastapi": first.json()}


def _headers(secret: str, content_type: str = "application/json") -> dict[str, str]:
    return {"authorization": f"Bearer {secret}", "content-type": content_type}


def test_the_common_case_is_answered_as_fastapi_answers_it(client, bank) -> None:
    inner = _Inner()
    thin = ThinPreCredit(inner, api=client.app)
    got = _call(client, thin, json.dumps({"uscc": bank["uscc"]}).encode(), _headers(bank["secret"]))
    assert inner.bodies == [], "the common case went on to FastAPI"
    assert got["status"] == 200 and got["headers"]["content-type"] == "application/json"
    assert got["route"].path == "/v1/pre-credit"  # the request metrics label it as FastAPI's route
    ours, theirs = dict(got["json"]), dict(bank["fastapi"])
    assert ours.pop("decision_id") != theirs.pop("decision_id")
    assert ours == theirs
    # and it was stored before it was answered, as every decision
    stored = client.get(f"/v1/decisions/{got['json']['decision_id']}", headers=_headers(bank["secret"]))
    assert stored.status_code == 200 and stored.json()["uscc"] == bank["uscc"]


def test_errors_of_the_common_case_are_fastapis_own(client, bank) -> None:
    thin = ThinPreCredit(_Inner(), api=client.app)
    population = {str(u) for u in client.app.state.service.ready().online.usccs}
    unknown = next(
        u
        for k in range(1000)
        if (u := make_uscc(authority="9", entity_type="1", division="110000", org_body=f"{k:08d}")) not in population
    )
    not_authorized = str(client.app.state.service.ready().online.usccs[2])
    for uscc, status in ((unknown, 404), (not_authorized, 403)):
        body = json.dumps({"uscc": uscc}).encode()
        ours = _call(client, thin, body, _headers(bank["secret"]))
        # a JSON media type the thin path leaves to FastAPI
        theirs = client.post("/v1/pre-credit", content=body, headers=_headers(bank["secret"], "application/x+json"))
        assert ours["status"] == theirs.status_code == status
        assert ours["json"] == theirs.json()


@pytest.mark.parametrize(
    "case",
    ["no key", "unknown key", "analyst key", "not json", "extra field", "bad uscc", "other content type", "empty"],
)
def test_everything_else_goes_on_to_fastapi_with_its_body(client, bank, analyst_key, case) -> None:
    good = json.dumps({"uscc": bank["uscc"]}).encode()
    body, headers = {
        "no key": (good, {"content-type": "application/json"}),
        "unknown key": (good, _headers("sk_not_a_key")),
        "analyst key": (good, _headers(analyst_key)),
        "not json": (b'{"uscc": ', _headers(bank["secret"])),
        "extra field": (json.dumps({"uscc": bank["uscc"], "x": 1}).encode(), _headers(bank["secret"])),
        "bad uscc": (b'{"uscc": "123"}', _headers(bank["secret"])),
        "other content type": (good, _headers(bank["secret"], "text/plain")),
        "empty": (b"", _headers(bank["secret"])),
    }[case]
    inner = _Inner()
    got = _call(client, ThinPreCredit(inner, api=client.app), body, headers)
    assert got["status"] == 299 and inner.bodies == [body]


def test_the_rate_limit_holds_on_the_thin_path(served, client) -> None:
    engine = engine_for(served.settings.decision_url)
    secret, _ = create_key(engine, role=Role.BANK, bank_id="BANK_SLOW", rate_per_minute=2)
    uscc = str(client.app.state.service.ready().online.usccs[1])
    body = json.dumps({"uscc": uscc}).encode()
    first = client.post("/v1/pre-credit", content=body, headers=_headers(secret))  # FastAPI: caches the key
    assert first.status_code == 403  # no consent, audited; it took one request of the rate
    thin = ThinPreCredit(_Inner(), api=client.app)
    codes = [_call(client, thin, body, _headers(secret)) for _ in range(2)]
    assert [c["status"] for c in codes] == [403, 429]
    assert codes[1]["json"]["error"]["code"] == "rate_limited" and int(codes[1]["headers"]["retry-after"]) >= 1
