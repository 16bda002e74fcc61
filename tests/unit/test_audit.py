"""The decision store on SQLite and on a real PostgreSQL server: hash chain, consents, keys."""

import datetime as dt
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from scoring.store import (
    DuplicateEvent,
    Event,
    Purpose,
    Role,
    append,
    authenticate,
    create_key,
    engine_for,
    get_decision,
    get_event,
    grant_consent,
    live_consent,
    revoke_consent,
    verify_chain,
)

USCC = "91320100748204660Q"


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path: Path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'decisions.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = engine_for(url)
    if request.param == "postgresql":  # a clean store per test on the session's server
        from scoring.store import metadata

        metadata.drop_all(engine)
        engine.dispose()
        engine = engine_for(url)
    yield engine
    engine.dispose()


def _fill(engine: sa.Engine, n: int = 12) -> list[str]:
    _, key = create_key(engine, role=Role.BANK, bank_id="B1")
    return append(
        engine, [Event(kind="evaluation", payload={"i": i, "score": 600 + i}, key=key, uscc=USCC) for i in range(n)]
    )


def test_an_untouched_chain_verifies(engine) -> None:
    ids = _fill(engine)
    report = verify_chain(engine)
    assert report.intact and report.rows == len(ids) == report.head_seq
    assert get_decision(engine, ids[3])["payload"] == {"i": 3, "score": 603}


def test_a_changed_row_is_detected(engine) -> None:
    ids = _fill(engine)
    with engine.begin() as con:
        con.execute(
            sa.text("UPDATE audit_log SET payload = :p WHERE event_id = :e"), {"p": '{"i":5,"score":999}', "e": ids[5]}
        )
    report = verify_chain(engine)
    assert not report.intact and any("row 6" in p and "changed" in p for p in report.problems)


def test_a_rehashed_row_still_breaks_the_next_link(engine) -> None:
    """Someone who rewrites a row and its hash breaks the link of the row after it."""
    ids = _fill(engine)
    with engine.begin() as con:
        con.execute(sa.text("UPDATE audit_log SET hash = :h WHERE event_id = :e"), {"h": "f" * 64, "e": ids[2]})
    problems = verify_chain(engine).problems
    assert any("row 4" in p and "link" in p for p in problems)


def test_deleted_rows_are_detected_in_the_middle_and_at_the_end(engine) -> None:
    ids = _fill(engine)
    with engine.begin() as con:
        con.execute(sa.text("DELETE FROM audit_log WHERE event_id = :e"), {"e": ids[4]})
    assert any("missing" in p for p in verify_chain(engine).problems)
    with engine.begin() as con:
        con.execute(sa.text("DELETE FROM audit_log WHERE event_id = :e"), {"e": ids[-1]})
    assert any("deleted at the end" in p or "missing" in p for p in verify_chain(engine).problems)


def test_concurrent_appends_make_one_unbroken_chain(engine) -> None:
    _, key = create_key(engine, role=Role.ANALYST)

    def work(t: int) -> None:
        for i in range(25):
            append(engine, [Event(kind="evaluation", payload={"t": t, "i": i}, key=key, uscc=USCC)])

    threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = verify_chain(engine)
    assert report.intact and report.rows == 150


def test_a_duplicate_among_concurrent_appends_fails_alone(engine) -> None:
    """Concurrent appends share transactions (group commit): a duplicate must not take the others down."""
    append(engine, [Event(kind="outcome", payload={"amount": 1}, uscc=USCC, idem_key="d0|2026-06-30")])
    start = threading.Barrier(8)
    failed: list[int] = []

    def work(t: int) -> None:
        start.wait()
        for i in range(20):
            idem = "d0|2026-06-30" if (t, i) == (3, 7) else f"d{t}-{i}|2026-06-30"
            try:
                append(engine, [Event(kind="outcome", payload={"t": t, "i": i}, uscc=USCC, idem_key=idem)])
            except DuplicateEvent:
                failed.append(t * 100 + i)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = verify_chain(engine)
    assert failed == [307]
    assert report.intact and report.rows == 1 + 8 * 20 - 1


def test_concurrent_appends_share_one_commit_and_get_their_own_ids(engine) -> None:
    """Group commit: appends queued while the writer is busy go out in one transaction, each with its own ids."""
    from scoring.store import audit as store

    commits: list[int] = []
    sa.event.listen(engine, "commit", lambda _: commits.append(1))
    results: dict[int, list[str]] = {}

    def work(t: int) -> None:
        events = [Event(kind="evaluation", payload={"t": t, "i": i}, uscc=USCC) for i in range(3)]
        results[t] = append(engine, events)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    with store._append_lock:  # the writer is busy: every append queues behind it
        for t in threads:
            t.start()
        appender = store._appenders.get(engine)
        deadline = time.monotonic() + 30
        while (appender is None or len(appender._queue) < 8) and time.monotonic() < deadline:
            time.sleep(0.01)
            appender = store._appenders.get(engine)
        assert appender is not None and len(appender._queue) == 8
    for t in threads:
        t.join()
    assert len(commits) == 1
    for t, ids in results.items():
        assert [get_event(engine, i)["payload"] for i in ids] == [{"t": t, "i": i} for i in range(3)]
    assert verify_chain(engine).rows == 24


def test_an_idempotency_key_is_stored_once(engine) -> None:
    event = Event(kind="outcome", payload={"amount": 1}, uscc=USCC, idem_key="d1|2026-06-30")
    append(engine, [event])
    with pytest.raises(DuplicateEvent):
        append(engine, [event])
    assert verify_chain(engine).rows == 1


def test_consent_is_live_only_for_its_bank_purpose_and_dates_until_revoked(engine) -> None:
    row = grant_consent(
        engine,
        uscc=USCC,
        bank_id="B1",
        purpose=Purpose.PRE_CREDIT,
        granted_on=dt.date(2026, 1, 1),
        expires_on=dt.date(2026, 12, 31),
        evidence="SQ-1",
        created_by="test",
    )
    on = dt.date(2026, 6, 1)
    assert live_consent(engine, uscc=USCC, bank_id="B1", purposes=[Purpose.PRE_CREDIT], on=on)
    assert not live_consent(engine, uscc=USCC, bank_id="B2", purposes=[Purpose.PRE_CREDIT], on=on)
    assert not live_consent(engine, uscc=USCC, bank_id="B1", purposes=[Purpose.EVALUATION], on=on)
    assert not live_consent(engine, uscc=USCC, bank_id="B1", purposes=[Purpose.PRE_CREDIT], on=dt.date(2026, 12, 31))
    assert not live_consent(engine, uscc=USCC, bank_id="B1", purposes=[Purpose.PRE_CREDIT], on=dt.date(2025, 12, 31))
    assert revoke_consent(engine, row["consent_id"], by="test") is not None
    assert not live_consent(engine, uscc=USCC, bank_id="B1", purposes=[Purpose.PRE_CREDIT], on=on)
    assert revoke_consent(engine, row["consent_id"], by="test") is None
    # both changes are in the audit chain
    assert verify_chain(engine).rows == 2
    with pytest.raises(ValueError, match="after granted_on"):
        grant_consent(
            engine,
            uscc=USCC,
            bank_id="B1",
            purpose=Purpose.PRE_CREDIT,
            granted_on=dt.date(2026, 1, 1),
            expires_on=dt.date(2026, 1, 1),
            evidence=None,
            created_by="test",
        )


def test_keys_are_stored_hashed_and_bank_keys_need_a_bank(engine) -> None:
    secret, record = create_key(engine, role=Role.REGULATOR, label="r")
    with engine.connect() as con:
        stored = con.execute(sa.text("SELECT key_hash FROM api_keys WHERE key_id = :k"), {"k": record.key_id}).scalar()
    assert secret not in stored and len(stored) == 64
    assert authenticate(engine, secret) == record
    with pytest.raises(ValueError, match="bank id"):
        create_key(engine, role=Role.BANK)
    with pytest.raises(ValueError, match="only bank keys"):
        create_key(engine, role=Role.ANALYST, bank_id="B1")


def test_audit_verify_command_reports_tampering(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'decisions.db'}"
    engine = engine_for(url)
    ids = _fill(engine, 5)
    env = {"SCORING_DECISION_DB_URL": url, "SCORING_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    ok = subprocess.run(
        [sys.executable, "-m", "scoring.cli", "audit", "verify"], capture_output=True, text=True, env=env
    )
    assert ok.returncode == 0 and "intact: 5 rows" in ok.stdout
    with engine.begin() as con:
        con.execute(sa.text("DELETE FROM audit_log WHERE event_id = :e"), {"e": ids[1]})
    bad = subprocess.run(
        [sys.executable, "-m", "scoring.cli", "audit", "verify"], capture_output=True, text=True, env=env
    )
    assert bad.returncode == 1 and "missing" in bad.stdout


def test_the_row_hash_is_its_definition_on_every_kind_of_character() -> None:
    """A chain written before the hash was encoded by orjson verifies after: the same bytes hashed."""
    import hashlib
    import json
    import random

    from scoring.store.audit import _HASHED, _row_hash

    rng = random.Random(7)
    alphabet = [chr(c) for c in range(0x80)] + list('信用评价额度\u2028\u2029\ufeff\U0001f600\\"/')
    for _ in range(2000):
        row = {
            k: rng.choice([None, rng.randint(-(10**15), 10**15), "".join(rng.choices(alphabet, k=rng.randint(0, 30)))])
            for k in _HASHED
        }
        prev = "".join(rng.choices("0123456789abcdef", k=64))
        body = json.dumps([prev, *(row[k] for k in _HASHED)], ensure_ascii=False, separators=(",", ":"))
        assert _row_hash(prev, row) == hashlib.sha256(body.encode()).hexdigest(), row


def test_the_servers_store_checkpoints_off_the_commit_and_a_second_process_waits_its_turn(tmp_path: Path) -> None:
    """No checkpoint at commit (wal_autocheckpoint=0): the Checkpointer's; appends from two processes
    at once, each waiting on the file lock instead of SQLite's polling, make one unbroken chain."""
    from scoring.store.engine import Checkpointer

    url = f"sqlite:///{tmp_path / 'decisions.db'}"
    engine = engine_for(url, background_checkpoints=True)
    with engine.connect() as con:
        assert con.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    checkpoints = Checkpointer(engine, seconds=0.05)
    code = (
        "import sys; from scoring.store import Event, append, engine_for\n"
        "e = engine_for(sys.argv[1])\n"
        "for i in range(100): append(e, [Event(kind='note', payload={'i': i, 'by': sys.argv[2]})])\n"
    )
    others = [subprocess.Popen([sys.executable, "-c", code, url, f"p{k}"]) for k in range(2)]
    for i in range(100):
        append(engine, [Event(kind="note", payload={"i": i, "by": "here"})])
    assert [p.wait(timeout=120) for p in others] == [0, 0]
    checkpoints.stop()  # a last checkpoint: the log is all in the file
    with engine.connect() as con:
        busy, log, done = con.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
    assert busy == 0 and log == done
    report = verify_chain(engine)
    assert report.intact and report.rows == 300, report.problems[:3]
    assert (tmp_path / "decisions.db.append-lock").exists()
    engine.dispose()


def test_the_log_stays_bounded_under_appends_that_never_pause(tmp_path: Path) -> None:
    """Three processes append decision-sized events without a pause: a passive checkpoint never finds
    the log all copied, so the checkpointer starts it again under the appenders' lock, and the log
    file stays a fraction of what was written; the chain is whole."""
    from scoring.store.engine import Checkpointer

    url = f"sqlite:///{tmp_path / 'decisions.db'}"
    engine = engine_for(url, background_checkpoints=True)
    checkpoints = Checkpointer(engine, seconds=0.02, restart_frames=256)  # 1 MB of pages
    code = (
        "import sys; from scoring.store import Event, append, engine_for\n"
        "e = engine_for(sys.argv[1], background_checkpoints=True)\n"
        "for i in range(150): append(e, [Event(kind='note', payload={'i': i, 'x': [k / 7 for k in range(1500)]})])\n"
    )
    others = [subprocess.Popen([sys.executable, "-c", code, url]) for _ in range(2)]
    for i in range(150):
        append(engine, [Event(kind="note", payload={"i": i, "x": [k / 7 for k in range(1500)]})])
    assert [p.wait(timeout=300) for p in others] == [0, 0]
    checkpoints.stop()
    written = sum(len(orjson.dumps({"i": 0, "x": [k / 7 for k in range(1500)]})) for _ in range(450))
    wal = (tmp_path / "decisions.db-wal").stat().st_size
    assert checkpoints.restarts > 0
    # without the restart the log holds everything written (more, with the pages' headers); with it, what
    # came in between two restarts: how much depends on how often the checkpointer's thread gets the CPU
    # among three busy processes, so the bound is loose
    assert wal < written / 2, (wal, written)
    report = verify_chain(engine)
    assert report.intact and report.rows == 450, report.problems[:3]
    engine.dispose()
