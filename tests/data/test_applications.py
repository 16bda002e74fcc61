"""The credit applications of the generator: approved and declined, and the declined ones' counterfactual outcomes."""

import hashlib
from pathlib import Path

import duckdb
import pytest

from scoring.data.generate import GeneratorConfig, chunks, generate


def _files(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.parquet"))}


def test_the_other_tables_are_byte_identical_with_or_without_the_applications(tmp_path: Path, monkeypatch) -> None:
    # several chunks and many injected errors: the errors of every chunk come from one shared stream
    cfg = GeneratorConfig(enterprises=300, months=24, seed=3, chunk_size=128, error_rate=0.01)
    with_apps = generate(cfg, tmp_path / "with")
    monkeypatch.setattr(chunks, "OWN_STREAM_STEPS", ())
    without = generate(cfg, tmp_path / "without")
    before, after = _files(tmp_path / "without"), _files(tmp_path / "with")
    assert set(after) - set(before) == {"loan_applications.parquet", "synthetic_declined_outcomes.parquet"}
    assert {name: after[name] for name in before} == before
    assert with_apps["rows"]["loan_applications"] > 0 and without["rows"]["loan_applications"] == 0
    other = {k: v for k, v in with_apps["injected_errors"].items() if k != "loan_applications"}
    assert other == without["injected_errors"]


@pytest.fixture(scope="module")
def county(tmp_path_factory):
    """3,000 enterprises over 36 months without injected errors, read straight from the files."""
    out = tmp_path_factory.mktemp("applications")
    manifest = generate(GeneratorConfig(enterprises=3000, months=36, seed=5, error_rate=0.0), out)
    con = duckdb.connect()
    for name in manifest["rows"]:
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{out}/{name}.parquet')")
    return con


def test_every_loan_has_its_approved_application_and_declined_ones_have_none(county) -> None:
    counts = county.execute(
        """SELECT count(*) FILTER (WHERE a.decision = '批准') AS approved,
                  count(*) FILTER (WHERE a.decision = '批准' AND (l.loan_id IS NULL OR l.uscc <> a.uscc
                      OR a.decision_date > l.start_date)) AS unmatched,
                  count(*) FILTER (WHERE a.decision = '拒绝' AND a.loan_id IS NOT NULL) AS declined_with_loan,
                  count(*) FILTER (WHERE a.applied_date > a.decision_date OR a.applied_date < e.registered_date)
                      AS bad_dates
           FROM loan_applications a LEFT JOIN loans l USING (loan_id) JOIN enterprises e ON e.uscc = a.uscc"""
    ).fetchone()
    assert counts[0] == county.execute("SELECT count(*) FROM loans").fetchone()[0]
    assert counts[1:] == (0, 0, 0)
    # a counterfactual outcome for exactly the declined applications
    assert (
        county.execute(
            """SELECT count(*) FROM synthetic_declined_outcomes o FULL JOIN
               (SELECT * FROM loan_applications WHERE decision = '拒绝') a USING (application_id)
           WHERE o.application_id IS NULL OR a.application_id IS NULL OR o.uscc <> a.uscc"""
        ).fetchone()[0]
        == 0
    )


def test_riskier_enterprises_are_declined_more_often(county) -> None:
    gap = county.execute(
        """SELECT avg(latent_risk) FILTER (WHERE decision = '拒绝') - avg(latent_risk) FILTER (WHERE decision = '批准')
           FROM loan_applications JOIN synthetic_truth USING (uscc)"""
    ).fetchone()[0]
    assert gap > 0.5
    by_quintile = county.execute(
        """SELECT q, avg(CAST(decision = '拒绝' AS DOUBLE)) FROM (
               SELECT a.decision, ntile(5) OVER (ORDER BY t.latent_risk) AS q
               FROM loan_applications a JOIN synthetic_truth t USING (uscc)) GROUP BY q ORDER BY q"""
    ).fetchall()
    shares = [share for _, share in by_quintile]
    assert shares == sorted(shares) and shares[-1] > 3 * shares[0]


# loans and declined applications decided at least 12 months before the data ends (2025-01-01)
OUTCOMES = """
    WITH funded AS (
        SELECT uscc, CAST(coalesce(dpd90_date < start_date + INTERVAL 12 MONTH, false) AS INTEGER) AS bad,
               false AS declined
        FROM loans WHERE start_date < DATE '2023-12-01'),
    declined AS (
        SELECT o.uscc, CAST(o.would_default_12m AS INTEGER), true
        FROM synthetic_declined_outcomes o JOIN loan_applications a USING (application_id)
        WHERE a.decision_date < DATE '2023-12-01'),
    rows AS (SELECT *, ntile(5) OVER (ORDER BY t.latent_risk) AS q
             FROM (SELECT * FROM funded UNION ALL SELECT * FROM declined) JOIN synthetic_truth t USING (uscc))
"""


def test_declined_applications_would_have_defaulted_more_often(county) -> None:
    declined, funded = county.execute(
        OUTCOMES + "SELECT avg(bad) FILTER (WHERE declined), avg(bad) FILTER (WHERE NOT declined) FROM rows"
    ).fetchone()
    assert declined > 1.5 * funded > 0


def test_at_the_same_latent_risk_a_declined_loan_would_have_defaulted_as_a_funded_one(county) -> None:
    # the bank's screen sees risk plus noise that does not drive outcomes: within a quintile of
    # latent risk, the counterfactual defaults are what the funded loans' default rate predicts
    observed, expected = county.execute(
        OUTCOMES
        + """, rates AS (SELECT q, avg(bad) FILTER (WHERE NOT declined) AS rate FROM rows GROUP BY q)
        SELECT sum(bad), sum(rate) FROM rows JOIN rates USING (q) WHERE declined"""
    ).fetchone()
    assert 0.75 < observed / expected < 1.33, (observed, expected)
