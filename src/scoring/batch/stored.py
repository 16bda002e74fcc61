"""The grades `scoring score` stored, read back by those who would otherwise grade on their own.

The console's supervision population and the monitor take a date's grades from the warehouse's
``scores`` table when they are current: graded by the served version of the credit evaluation,
from the very build of the snapshot now stored (its catalog and its data, as ``snapshot_builds``
records them). Otherwise they grade the snapshot themselves, as before, and say nothing is lost.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from scoring.domain.batch import SCORES_TABLE

BUILDS = "score_builds"
GRADED = ["uscc", "probability", "score", "model_grade", "grade"]


def record_build(con: duckdb.DuckDBPyConnection, *, as_of: dt.date, version: str) -> None:
    """Say that ``version`` graded the snapshot at ``as_of`` as it is stored now."""
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {BUILDS} (as_of DATE PRIMARY KEY, evaluation_version VARCHAR, "
        "catalog_digest VARCHAR, data_fingerprint VARCHAR, scored_at TIMESTAMP)"
    )
    con.execute(
        f"INSERT OR REPLACE INTO {BUILDS} SELECT as_of, ?, catalog_digest, data_fingerprint, now() "
        "FROM snapshot_builds WHERE as_of = ?",
        [version, as_of],
    )


def current_grades(con: duckdb.DuckDBPyConnection, *, version: str, as_of: dt.date) -> pd.DataFrame | None:
    """The stored grades at ``as_of`` (columns ``GRADED``, by USCC) when ``version`` graded the
    snapshot build stored now; None when there are none or they are stale."""
    try:
        row = con.execute(
            f"SELECT count(*) FROM {BUILDS} b JOIN snapshot_builds s USING (as_of) WHERE b.as_of = ? "
            "AND b.evaluation_version = ? AND b.catalog_digest = s.catalog_digest "
            "AND b.data_fingerprint = s.data_fingerprint",
            [as_of, version],
        ).fetchone()
    except duckdb.CatalogException:
        return None
    if not row or not row[0]:
        return None
    return con.execute(f"SELECT {', '.join(GRADED)} FROM {SCORES_TABLE} WHERE as_of = ? ORDER BY uscc", [as_of]).df()
