"""Outcomes: the loans banks reported, read back from the audit log as the warehouse's ``loans`` file."""

from __future__ import annotations

import json

import pandas as pd
import sqlalchemy as sa

from scoring.store.tables import audit_log

LOAN_COLUMNS = (
    "loan_id",
    "uscc",
    "bank_id",
    "start_date",
    "term_months",
    "maturity_date",
    "amount",
    "max_dpd",
    "dpd90_date",
    "settled_date",
    "status",
)


def reported_loans(engine: sa.Engine) -> pd.DataFrame:
    """Every reported loan at its latest report date, in the warehouse's ``loans`` format.

    The file this makes is ingested like any platform file (the loan id is the key, so a later
    report replaces an earlier one), and the pre-credit models retrain on it.
    """
    with engine.connect() as con:
        rows = con.execute(
            sa.select(audit_log.c.bank_id, audit_log.c.uscc, audit_log.c.payload).where(audit_log.c.kind == "outcome")
        ).all()
    records = []
    for bank_id, uscc, payload in rows:
        report = json.loads(payload)["report"]
        records.append({**report, "bank_id": bank_id, "uscc": uscc})
    if not records:
        return pd.DataFrame(columns=list(LOAN_COLUMNS))
    frame = pd.DataFrame.from_records(records).sort_values(["loan_id", "report_date"])
    frame = frame.drop_duplicates(["bank_id", "loan_id"], keep="last")
    for col in ("start_date", "maturity_date", "dpd90_date", "settled_date"):
        frame[col] = pd.to_datetime(frame[col]).dt.date
    return frame[list(LOAN_COLUMNS)].reset_index(drop=True)
