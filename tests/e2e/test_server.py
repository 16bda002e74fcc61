"""The real server: uvicorn in its own process on a free loopback port, called over HTTP."""

import httpx
import pytest

from scoring.store import Purpose, Role, create_key, engine_for
from tests.conftest import authorize

pytestmark = pytest.mark.e2e


def test_served_explained_score_over_http(server, served, known_uscc) -> None:
    engine = engine_for(served.settings.decision_url)
    secret, _ = create_key(engine, role=Role.BANK, bank_id="B3413001")
    authorize(engine, uscc=known_uscc, bank_id="B3413001", purpose=Purpose.EVALUATION)
    r = httpx.post(
        f"{server}/v1/evaluations", json={"uscc": known_uscc}, headers={"Authorization": f"Bearer {secret}"}, timeout=30
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["uscc"] == known_uscc and body["grade"] in "ABCD" and body["reasons"]
    assert httpx.get(f"{server}/healthz").json() == {"status": "ok"}
    assert httpx.post(f"{server}/v1/evaluations", json={"uscc": known_uscc}).status_code == 401
    bad = httpx.post(
        f"{server}/v1/evaluations", json={"uscc": "91320100748204660X"}, headers={"Authorization": f"Bearer {secret}"}
    )
    assert bad.status_code == 422 and "check character" in bad.json()["error"]["message_en"]


@pytest.fixture(scope="module")
def known_uscc(served) -> str:
    import duckdb

    con = duckdb.connect(str(served.settings.warehouse_path), read_only=True)
    try:
        return con.execute("SELECT uscc FROM feature_snapshots ORDER BY as_of DESC, uscc LIMIT 1").fetchone()[0]
    finally:
        con.close()
