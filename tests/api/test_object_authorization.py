"""Object-level authorization (issue 18): every party asks for every other party's objects by id.

The parties are two banks, an analyst, a regulator and an admin. Each case names an endpoint that
takes an id, the party asking and the object asked for (another party's). A refusal must be the
documented one (status and ``error.code``); it must not carry the other party's identifiers, in the
body or the headers; it must read byte for byte as the answer about an object that does not exist
(once the id the caller sent is taken out), so that ids cannot be probed; and a 403 must be in the
audit log before it is answered (``serve/refusals.py``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb
import httpx
import pytest

from scoring.serve.console.session import COOKIE
from scoring.store import authenticate, engine_for, events
from tests.conftest import authorize

PARTIES = ("bank_a", "bank_b", "analyst", "regulator", "admin")
BANKS = {"bank_a": "BANK_A", "bank_b": "BANK_B"}
DECISIONS = (
    "bank_a.pre_credit",
    "bank_a.evaluation",
    "bank_b.pre_credit",
    "bank_b.evaluation",
    "analyst.evaluation",
    "regulator.evaluation",
)
CONSENTS = ("bank_a.consent", "bank_b.consent")
OUTCOMES = ("bank_a.outcome", "bank_b.outcome")
USCCS = ("bank_a.uscc", "bank_b.uscc", "analyst.uscc", "regulator.uscc")
CARDS = ("served.card", "unknown.card")
# loan amounts no other number on a page is likely to equal: found in a body, they came from that bank's report
AMOUNTS = {"bank_a": 271828, "bank_b": 314159}
VOLATILE_HEADERS = {"date", "x-request-id", "x-response-time"}


@dataclass(frozen=True)
class Expect:
    """The documented answer: status, ``error.code`` of a JSON refusal, whether the refusal is audited and as what."""

    status: int
    code: str | None = None
    audited: bool = False
    probe: bool = True  # reads as the answer about a missing object (unless the caller may read the object)


ALLOWED = Expect(200)
NOT_FOUND = Expect(404, "unknown_decision")
FORBIDDEN = Expect(403, "forbidden_role", audited=True)
CONSOLE_404 = Expect(404)  # the console's error page: HTML, no JSON code
SIGN_IN_REFUSED = Expect(303, audited=True)  # the sign-in is a 403, audited; the page sends to the sign-in


def owner(obj: str) -> str:
    return obj.split(".", 1)[0]


def expected(endpoint: str, caller: str, obj: str) -> Expect:
    """Who may do what (serve/deps.py, serve/stored.py, console/pages.py), for ``caller`` asking about ``obj``."""
    bank = caller in BANKS
    if endpoint in ("decision", "outcomes_of"):
        return NOT_FOUND if bank else ALLOWED if caller == "regulator" else FORBIDDEN
    if endpoint == "replay":
        return ALLOWED if caller == "regulator" else FORBIDDEN
    if endpoint == "report_outcome":
        return NOT_FOUND if bank else FORBIDDEN
    if endpoint == "revoke":
        return FORBIDDEN  # the admin, who manages consents, is not among the callers
    if endpoint == "consents_of":
        return ALLOWED if caller in ("admin", "regulator") else FORBIDDEN
    if endpoint == "outcomes_list":
        return ALLOWED if bank or caller == "regulator" else FORBIDDEN
    if endpoint == "card":
        return ALLOWED if obj == "served.card" else Expect(404, "no_model_card")
    if endpoint == "console_decision":
        if caller == "regulator" or (caller == "analyst" and owner(obj) not in BANKS):
            return ALLOWED
        return CONSOLE_404 if caller == "analyst" else SIGN_IN_REFUSED
    if endpoint == "console_replay":
        if caller == "regulator":
            return ALLOWED
        if caller == "analyst" and owner(obj) not in BANKS:  # one the analyst may read: no secret to keep
            return Expect(403, audited=True, probe=False)
        return CONSOLE_404 if caller == "analyst" else SIGN_IN_REFUSED
    if endpoint == "console_enterprise":
        return ALLOWED if caller in ("analyst", "regulator") else SIGN_IN_REFUSED
    raise AssertionError(endpoint)


def _gap_marks(case: tuple[str, str, str]) -> list[pytest.MarkDecorator]:
    reason = GAPS.get(case)
    return [pytest.mark.xfail(reason=reason, strict=True)] if reason else []


def _matrix() -> list[tuple[str, str, str]]:
    cases = []
    for endpoint in ("decision", "replay", "outcomes_of", "report_outcome", "console_decision", "console_replay"):
        cases += [(endpoint, c, o) for o in DECISIONS for c in PARTIES if c != owner(o)]
    cases += [("revoke", c, o) for o in CONSENTS for c in PARTIES if c not in (owner(o), "admin")]
    cases += [("consents_of", c, o) for o in CONSENTS for c in PARTIES if c != owner(o)]
    cases += [("outcomes_list", c, o) for o in OUTCOMES for c in PARTIES if c != owner(o)]
    cases += [("card", c, o) for o in CARDS for c in PARTIES]
    cases += [("console_enterprise", c, o) for o in USCCS for c in PARTIES if c != owner(o)]
    return cases


MATRIX = _matrix()
# known gaps, outside the files this suite may change: strict, so each flips to a failure once fixed
GAPS: dict[tuple[str, str, str], str] = {}  # cases known to fail, each with its reason (none now)
CASES = [
    pytest.param(*case, id="-".join((case[0], case[1], "asks", case[2])), marks=_gap_marks(case)) for case in MATRIX
]


@dataclass
class Party:
    """What one party made, and the strings that identify it."""

    secret: str
    key_id: str
    bank_id: str | None = None
    uscc: str | None = None
    objects: dict[str, str] = field(default_factory=dict)  # "pre_credit", "evaluation", "consent", "outcome" -> id
    marks: set[str] = field(default_factory=set)  # references, loan ids, amounts: found, they came from this party
    limit: int = 0

    def identifiers(self) -> set[str]:
        found = {*self.objects.values(), *self.marks}
        return found | {x for x in (self.bank_id, self.uscc) if x}


@dataclass
class World:
    engine: Any
    parties: dict[str, Party]
    card: tuple[str, str]
    tokens: dict[str, str]  # console session tokens of the analyst and the regulator

    def value(self, obj: str) -> str:
        party, what = obj.split(".", 1)
        if what == "uscc":
            return self.parties[party].uscc or ""
        return self.parties[party].objects[what]


def _auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _lendable(served, n: int) -> list[str]:
    """``n`` live enterprises of the served snapshot a bank may lend to (others than test_service's)."""
    con = duckdb.connect(str(served.settings.warehouse_path), read_only=True)
    try:
        rows = con.execute(
            "SELECT uscc FROM feature_snapshots WHERE as_of = (SELECT max(as_of) FROM feature_snapshots) "
            "AND tax_sales_12m > 2000000 AND serious_list_active = 0 AND executee_list_active = 0 "
            "ORDER BY uscc DESC LIMIT ?",
            [n],
        ).fetchall()
    finally:
        con.close()
    return [r[0] for r in rows]


def _outcome(decision_id: str, *, loan_id: str, amount: int) -> dict[str, Any]:
    today = dt.date.today()
    return {
        "decision_id": decision_id,
        "report_date": str(today),
        "loan_id": loan_id,
        "start_date": str(today - dt.timedelta(days=60)),
        "term_months": 12,
        "maturity_date": str(today + dt.timedelta(days=305)),
        "amount": amount,
        "max_dpd": 0,
        "status": "正常",
    }


def _sign_in(client, secret: str) -> httpx.Response:
    answer = client.post("/console/login", data={"api_key": secret}, follow_redirects=False)
    client.cookies.clear()  # the session client is shared: each console request carries its own cookie
    return answer


@pytest.fixture(scope="module")
def world(client, keys, served) -> World:
    """Each bank's consent, pre-credit decision, evaluation and outcome; the analyst's and the regulator's evaluation."""
    engine = engine_for(served.settings.decision_url)
    secrets = {p: getattr(keys, p) for p in PARTIES}
    parties = {p: Party(secret=s, key_id=authenticate(engine, s).key_id) for p, s in secrets.items()}
    usccs = dict(zip(("bank_a", "bank_b", "analyst", "regulator"), _lendable(served, 4), strict=True))
    for name, bank_id in BANKS.items():
        party = parties[name]
        party.bank_id, party.uscc = bank_id, usccs[name]
        party.objects["consent"] = authorize(engine, uscc=party.uscc, bank_id=bank_id)["consent_id"]
        reference, loan_id = f"APP-{bank_id}-OBJ", f"LOAN-{bank_id}-OBJ"
        r = client.post(
            "/v1/pre-credit", json={"uscc": party.uscc, "reference": reference}, headers=_auth(party.secret)
        )
        assert r.status_code == 200, r.text
        party.objects["pre_credit"], party.limit = r.json()["decision_id"], r.json()["pre_credit_limit"]
        r = client.post("/v1/evaluations", json={"uscc": party.uscc}, headers=_auth(party.secret))
        assert r.status_code == 200, r.text
        party.objects["evaluation"] = r.json()["decision_id"]
        report = _outcome(party.objects["pre_credit"], loan_id=loan_id, amount=AMOUNTS[name])
        r = client.post("/v1/outcomes", json=report, headers=_auth(party.secret))
        assert r.status_code in (200, 201), r.text
        party.objects["outcome"] = r.json()["outcome_id"]
        party.marks |= {reference, loan_id, str(AMOUNTS[name])}
    for name in ("analyst", "regulator"):
        party = parties[name]
        party.uscc = usccs[name]
        r = client.post("/v1/evaluations", json={"uscc": party.uscc}, headers=_auth(party.secret))
        assert r.status_code == 200, r.text
        party.objects["evaluation"] = r.json()["decision_id"]
    models = client.get("/v1/models", headers=_auth(keys.regulator)).json()["models"]
    card = next((m["name"], m["version"]) for m in models if m["model_card_url"])
    tokens = {}
    for name in ("analyst", "regulator"):
        answer = _sign_in(client, secrets[name])
        assert answer.status_code == 303, answer.text
        tokens[name] = answer.cookies[COOKIE]
    return World(engine=engine, parties=parties, card=card, tokens=tokens)


@dataclass(frozen=True)
class Asked:
    """The answer, the values the caller sent (taken out before comparing) and what an audited refusal records."""

    answer: httpx.Response
    sent: tuple[str, ...]
    request: str


Ask = Callable[[Any, World, str, dict[str, str]], Asked]


def _api(method: str, template: str, body: Callable[[dict[str, str]], dict[str, Any]] | None = None) -> Ask:
    def ask(client, world: World, caller: str, values: dict[str, str]) -> Asked:
        url = template.format(**values)
        json = body(values) if body else None
        answer = client.request(method, url, json=json, headers=_auth(world.parties[caller].secret))
        return Asked(answer, tuple(values.values()), f"{method} {url.split('?', 1)[0]}")

    return ask


def _console(method: str, template: str) -> Ask:
    def ask(client, world: World, caller: str, values: dict[str, str]) -> Asked:
        url = template.format(**values)
        if caller in world.tokens:
            headers, request = {"Cookie": f"{COOKIE}={world.tokens[caller]}"}, f"{method} {url}"
        else:  # banks and admins may not sign in: they come to the page without a session
            assert _sign_in(client, world.parties[caller].secret).status_code == 403
            headers, request = {}, "POST /console/login"
        answer = client.request(method, url, headers=headers, follow_redirects=False)
        client.cookies.clear()
        return Asked(answer, tuple(values.values()), request)

    return ask


ASKS: dict[str, Ask] = {
    "decision": _api("GET", "/v1/decisions/{id}"),
    "replay": _api("POST", "/v1/decisions/{id}/replay"),
    "outcomes_of": _api("GET", "/v1/outcomes?decision_id={id}"),
    "report_outcome": _api(
        "POST", "/v1/outcomes", body=lambda v: _outcome(v["id"], loan_id="LOAN-PROBE", amount=100000)
    ),
    "revoke": _api("POST", "/v1/consents/{id}/revoke"),
    "consents_of": _api("GET", "/v1/consents?uscc={uscc}&bank_id={bank_id}"),
    "outcomes_list": _api("GET", "/v1/outcomes"),
    "card": _api("GET", "/v1/models/{name}/{version}/card"),
    "console_decision": _console("GET", "/console/decisions/{id}"),
    "console_replay": _console("POST", "/console/decisions/{id}/replay"),
    "console_enterprise": _console("GET", "/console/enterprises/{uscc}"),
}


def _values(world: World, endpoint: str, obj: str) -> dict[str, str]:
    """What the caller puts in the request to name ``obj``."""
    if endpoint == "consents_of":
        party = world.parties[owner(obj)]
        return {"uscc": party.uscc or "", "bank_id": party.bank_id or ""}
    if endpoint == "outcomes_list":
        return {}
    if endpoint == "card":
        name, version = world.card
        return {"name": name, "version": version if obj == "served.card" else "999999"}
    return {"uscc" if endpoint == "console_enterprise" else "id": world.value(obj)}


def _missing(values: dict[str, str]) -> dict[str, str]:
    """The same request about objects that do not exist (ids of the same shape and length)."""
    fake = {"id": str(uuid.uuid4()), "uscc": "91000000MA0000000X", "bank_id": "BANK_Z", "version": "999998"}
    return {k: fake.get(k, v) for k, v in values.items()}


def _shown(text: str, sent: tuple[str, ...]) -> str:
    for value in sorted(sent, key=len, reverse=True):
        if value:
            text = text.replace(value, "{sent}")
    return text


def _headers(answer: httpx.Response, sent: tuple[str, ...]) -> dict[str, str]:
    return {k: _shown(v, sent) for k, v in answer.headers.items() if k.lower() not in VOLATILE_HEADERS}


def _must_not_show(world: World, endpoint: str, caller: str, obj: str, status: int) -> set[str]:
    """The other parties' identifiers this answer may not carry."""
    parties = world.parties
    everyone = {i for p in parties.values() for i in p.identifiers()}
    if endpoint == "card":  # a model card is no party's: it shows none of them
        return everyone
    if status != 200:  # a refusal says nothing of the party whose object was asked for, limit included
        party = parties[owner(obj)]
        return party.identifiers() | ({str(party.limit)} if party.limit >= 10000 else set())
    if caller in ("regulator", "admin"):  # they read every decision, outcome and consent
        return set()
    return {i for name, p in parties.items() if name in BANKS and name != caller for i in p.identifiers()}


def _refusal_logged(world: World, caller: str, request: str, after: int) -> bool:
    """Whether the caller's refusal of ``request`` (a 403, ``forbidden_role``) was appended after ``after``."""
    key_id = world.parties[caller].key_id
    return any(
        e["seq"] > after
        and e["key_id"] == key_id
        and e["payload"]["request"] == request
        and e["payload"]["code"] == "forbidden_role"
        for e in events(world.engine, kinds=["refusal"], limit=50)
    )


def _last_seq(world: World) -> int:
    newest = events(world.engine, limit=1)
    return newest[0]["seq"] if newest else 0


@pytest.mark.parametrize(("endpoint", "caller", "obj"), CASES)
def test_a_party_asking_for_another_partys_object(client, world: World, endpoint: str, caller: str, obj: str) -> None:
    expect = expected(endpoint, caller, obj)
    values = _values(world, endpoint, obj)
    before = _last_seq(world)
    asked = ASKS[endpoint](client, world, caller, values)
    answer = asked.answer
    assert answer.status_code == expect.status, answer.text[:500]
    if expect.code is not None:
        assert answer.json()["error"]["code"] == expect.code
    if expect.status == 303:
        assert answer.headers["location"].startswith("/console/login")

    # nothing of the other party in the body or the headers, beyond what the caller itself sent
    raw = answer.text + "\n" + "\n".join(f"{k}: {v}" for k, v in answer.headers.items())
    shown = sorted(t for t in _must_not_show(world, endpoint, caller, obj, expect.status) - set(asked.sent) if t in raw)
    assert not shown, f"the answer shows {shown}"

    if expect.audited:  # a 403 is in the audit log before it is answered
        assert _refusal_logged(world, caller, asked.request, before), f"no refusal of {asked.request} audited"

    if expect.status != 200 and expect.probe:  # "exists but not yours" reads exactly as "does not exist"
        missing = ASKS[endpoint](client, world, caller, _missing(values))
        assert missing.answer.status_code == answer.status_code
        assert _shown(missing.answer.text, missing.sent) == _shown(answer.text, asked.sent)
        assert _headers(missing.answer, missing.sent) == _headers(answer, asked.sent)
    if expect.status == 200 and endpoint in ("decision", "replay"):
        assert answer.json()["decision_id"] == values["id"]
    elif endpoint == "outcomes_list" and caller == "regulator":
        assert world.value(obj) in {o["outcome_id"] for o in answer.json()}
