"""What `scoring score` stored, read back by those who would otherwise compute it on their own.

The console's supervision population and the monitor take a date's grades from the warehouse's
``scores`` table when they are current: graded by the served version of the credit evaluation,
from the very build of the snapshot now stored (its catalog and its data, as ``snapshot_builds``
records them). Otherwise they grade the snapshot themselves, as before, and say nothing is lost.

The service takes the three models' numbers of its pre-credit decisions (:func:`stored_outputs`)
from there too, when all three served versions graded the snapshot build it serves; each decision's
limit policy, reasons, consent and audit are still its own.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd

from scoring.domain.batch import AMOUNT_SHAP, DEFAULT_SHAP, SCORES_TABLE, SHAP
from scoring.domain.models import ModelSet
from scoring.domain.outputs import Outputs

BUILDS = "score_builds"
GRADED = ["uscc", "probability", "score", "model_grade", "grade"]
VERSION_COLUMNS = ("evaluation_version", "default_version", "amount_version")


def build_versions(models: ModelSet) -> dict[str, str]:
    """The versions a build records, a column each: the evaluation's, and the 信易贷 pair's when served."""
    versions = {"evaluation_version": models.evaluation.version}
    if models.default is not None and models.amount is not None:
        versions |= {"default_version": models.default.version, "amount_version": models.amount.version}
    return versions


def record_build(con: duckdb.DuckDBPyConnection, *, as_of: dt.date, versions: dict[str, str]) -> None:
    """Say that the models of ``versions`` (:func:`build_versions`) graded the snapshot at ``as_of``
    as it is stored now."""
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {BUILDS} (as_of DATE PRIMARY KEY, evaluation_version VARCHAR, "
        "catalog_digest VARCHAR, data_fingerprint VARCHAR, scored_at TIMESTAMP)"
    )
    for column in VERSION_COLUMNS:  # a table of an earlier release knew the evaluation only
        con.execute(f"ALTER TABLE {BUILDS} ADD COLUMN IF NOT EXISTS {column} VARCHAR")
    named = [c for c in VERSION_COLUMNS if c in versions]
    con.execute(f"DELETE FROM {BUILDS} WHERE as_of = ?", [as_of])  # nosec B608 # BUILDS
    con.execute(
        f"INSERT INTO {BUILDS} (as_of, catalog_digest, data_fingerprint, scored_at"  # nosec B608 # VERSION_COLUMNS
        f"{''.join(', ' + c for c in named)}) "
        f"SELECT as_of, catalog_digest, data_fingerprint, now(){', ?' * len(named)} "
        "FROM snapshot_builds WHERE as_of = ?",
        [*(versions[c] for c in named), as_of],
    )


def is_current(con: duckdb.DuckDBPyConnection, as_of: dt.date, versions: dict[str, str]) -> bool:
    """Whether the stored rows at ``as_of`` were graded by ``versions`` (by column) from the build stored now."""
    try:
        columns = {r[0] for r in con.execute(f"DESCRIBE {BUILDS}").fetchall()}
    except duckdb.CatalogException:
        return False
    wanted = {c: versions[c] for c in VERSION_COLUMNS if c in versions}
    if not set(wanted) <= columns:
        return False
    same = "".join(f" AND b.{column} = ?" for column in wanted)
    row = con.execute(
        f"SELECT count(*) FROM {BUILDS} b JOIN snapshot_builds s USING (as_of) "  # nosec B608 # BUILDS
        "WHERE b.as_of = ? "
        f"AND b.catalog_digest = s.catalog_digest AND b.data_fingerprint = s.data_fingerprint{same}",
        [as_of, *wanted.values()],
    ).fetchone()
    return bool(row and row[0])


def current_grades(con: duckdb.DuckDBPyConnection, *, version: str, as_of: dt.date) -> pd.DataFrame | None:
    """The stored grades at ``as_of`` (columns ``GRADED``, by USCC) when ``version`` graded the
    snapshot build stored now; None when there are none or they are stale."""
    if not is_current(con, as_of, {"evaluation_version": version}):
        return None
    return con.execute(
        f"SELECT {', '.join(GRADED)} FROM {SCORES_TABLE} WHERE as_of = ? ORDER BY uscc",  # nosec B608 # constants
        [as_of],
    ).df()


def stored_outputs(
    con: duckdb.DuckDBPyConnection, models: ModelSet, *, as_of: dt.date, build: tuple[str, str]
) -> tuple[list[str], Outputs] | None:
    """(the USCCs, the three models' outputs row by row) that the served ``models`` gave the snapshot
    build at ``as_of`` stored now, when that is ``build`` (catalog digest, data fingerprint: the build
    the caller's features are); None when they are not stored, stale, of another build, or ``models``
    cannot decide pre-credit."""
    if not models.pre_credit_ready or not is_current(con, as_of, build_versions(models)):
        return None
    build_of = f"SELECT catalog_digest, data_fingerprint FROM {BUILDS} WHERE as_of = ?"  # nosec B608 # BUILDS
    graded = con.execute(build_of, [as_of]).fetchone()
    if graded is None or (str(graded[0]), str(graded[1])) != build:
        return None  # the snapshot was built again since the caller read its features
    assert models.default is not None and models.amount is not None
    e_names = models.evaluation_scorer.config.features
    d_names, a_names = models.default.scorer.config.features, models.amount.scorer.config.features
    blocks = {
        "points": [f'"{SHAP}{n}"' for n in e_names],
        "default_points": [f'"{DEFAULT_SHAP}{n}"' for n in d_names],
        "amount_shap": [f'"{AMOUNT_SHAP}{n}"' for n in a_names],
    }
    singles = [
        "probability", "score", "model_grade", "grade", "base_points",
        "default_probability", "default_base_points", "amount_estimate", "amount_base",
    ]  # fmt: skip
    present = {r[0] for r in con.execute(f"DESCRIBE {SCORES_TABLE}").fetchall()}
    if not {c.strip('"') for cs in blocks.values() for c in cs} | set(singles) <= present:
        return None  # rows of an earlier release, without every number
    columns = ["uscc", *singles, *(c for cs in blocks.values() for c in cs)]
    fetched = con.execute(
        f"SELECT {', '.join(columns)} FROM {SCORES_TABLE} WHERE as_of = ? ORDER BY uscc",  # nosec B608 # checked above
        [as_of],
    )
    column = dict(zip(columns, fetched.fetchnumpy().values(), strict=True))
    if any(np.ma.is_masked(c) for c in column.values()):
        return None  # a NULL where every row has a number: not rows `scoring score` wrote
    column = {name: np.ma.getdata(c) for name, c in column.items()}

    def matrix(names: list[str]) -> np.ndarray:
        return np.ascontiguousarray(np.column_stack([column[n] for n in names]).astype(np.float64))

    outputs = Outputs(
        probability=column["probability"].astype(np.float64),
        score=column["score"].astype(np.float64),
        model_grade=column["model_grade"].astype(object),
        grade=column["grade"].astype(object),
        points=matrix(blocks["points"]),
        base=column["base_points"].astype(np.float64),
        default_probability=column["default_probability"].astype(np.float64),
        default_points=matrix(blocks["default_points"]),
        default_base=column["default_base_points"].astype(np.float64),
        amount_estimate=column["amount_estimate"].astype(np.float64),
        amount_shap=matrix(blocks["amount_shap"]),
        amount_base=column["amount_base"].astype(np.float64),
    )
    return [str(u) for u in column["uscc"]], outputs
