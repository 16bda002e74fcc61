import hashlib
from pathlib import Path

import duckdb
import pytest

from scoring.data.generate import GeneratorConfig, generate
from scoring.data.uscc import validate


def _digest(folder: Path) -> dict[str, str]:
    con = duckdb.connect()
    out = {}
    for f in sorted(folder.glob("*.parquet")):
        rows = con.execute(f"SELECT * FROM read_parquet('{f}')").fetchall()
        out[f.name] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return out


def test_same_seed_same_data_other_seed_other_data(tmp_path: Path) -> None:
    cfg = GeneratorConfig(enterprises=300, months=24, seed=3, chunk_size=128)
    generate(cfg, tmp_path / "a")
    generate(cfg, tmp_path / "b")
    generate(GeneratorConfig(enterprises=300, months=24, seed=4, chunk_size=128), tmp_path / "c")
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_codes_are_valid_unique_and_pilot_codes_are_rare(county) -> None:
    con = duckdb.connect()
    codes = [r[0] for r in con.execute(f"SELECT uscc FROM read_parquet('{county.raw}/enterprises.parquet')").fetchall()]
    assert len(set(codes)) == len(codes)
    failing = [c for c in codes if validate(c)]
    assert len(failing) == county.manifest["pilot_codes"]
    assert all(p.fault == "check" for c in failing for p in validate(c))


def test_micro_firms_often_lack_tax_records_and_risk_drives_events(county) -> None:
    con = duckdb.connect()
    raw = county.raw
    share = con.execute(
        f"""SELECT e.size_class, avg(CAST(t.uscc IS NULL AS DOUBLE))
            FROM read_parquet('{raw}/enterprises.parquet') e
            LEFT JOIN (SELECT DISTINCT uscc FROM read_parquet('{raw}/tax_monthly.parquet')) t USING (uscc)
            GROUP BY 1"""
    ).fetchall()
    no_tax = dict(share)
    assert no_tax["微型"] > 0.25 > no_tax["中型"]
    # the riskiest tenth has far more severe penalties than the safest tenth
    by_decile = con.execute(
        f"""WITH t AS (SELECT uscc, ntile(10) OVER (ORDER BY latent_risk) AS d
                       FROM read_parquet('{raw}/synthetic_truth.parquet'))
            SELECT d, count(p.uscc) FROM t LEFT JOIN read_parquet('{raw}/penalties.parquet') p
              ON p.uscc = t.uscc AND p.severity IN ('较重', '严重') GROUP BY d ORDER BY d"""
    ).fetchall()
    assert by_decile[-1][1] > 4 * max(by_decile[0][1], 1)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """A small generated county without injected errors, read straight from its files."""
    out = tmp_path_factory.mktemp("clean")
    manifest = generate(GeneratorConfig(enterprises=1500, months=30, seed=5, error_rate=0.0), out)
    con = duckdb.connect()
    for name in manifest["rows"]:
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{out}/{name}.parquet')")
    return con


CONSISTENCY = {
    "every record belongs to a registered enterprise": """
        SELECT count(*) FROM (
            SELECT uscc FROM penalties UNION ALL SELECT uscc FROM loans UNION ALL SELECT uscc FROM tax_monthly
            UNION ALL SELECT uscc FROM utility_monthly UNION ALL SELECT uscc FROM licenses
            UNION ALL SELECT uscc FROM objections UNION ALL SELECT uscc FROM real_estate)
        WHERE uscc NOT IN (SELECT uscc FROM enterprises)""",
    "no loan before registration": """
        SELECT count(*) FROM loans l JOIN enterprises e USING (uscc) WHERE l.start_date < e.registered_date""",
    "no record dated before registration": """
        SELECT count(*) FROM (
            SELECT uscc, decision_date AS d FROM penalties UNION ALL SELECT uscc, filed_date FROM tax_monthly
            UNION ALL SELECT uscc, issued_date FROM licenses UNION ALL SELECT uscc, registered_date FROM real_estate
            UNION ALL SELECT uscc, entry_date FROM executee_list UNION ALL SELECT uscc, granted_date FROM patents)
        JOIN enterprises e USING (uscc) WHERE d < e.registered_date""",
    "no utility bill, tax filing or insurance report after deregistration": """
        SELECT count(*) FROM (
            SELECT uscc, period AS d FROM utility_monthly UNION ALL SELECT uscc, period FROM tax_monthly
            UNION ALL SELECT uscc, period FROM social_insurance_monthly UNION ALL SELECT uscc, period FROM housing_fund_monthly)
        JOIN enterprises e USING (uscc) WHERE e.deregistered_date IS NOT NULL AND d > e.deregistered_date""",
    "status says deregistered exactly when there is a deregistration date": """
        SELECT count(*) FROM enterprises WHERE (status = '存续') = (deregistered_date IS NOT NULL)""",
    "list exits follow entries and name a reason": """
        SELECT count(*) FROM serious_dishonesty_list
        WHERE exit_date < entry_date OR (exit_date IS NULL) <> (exit_reason IS NULL)""",
    "objections name an existing record of the same enterprise": """
        SELECT count(*) FROM objections o WHERE NOT EXISTS (
            SELECT 1 FROM penalties p WHERE o.record_table = 'penalties' AND p.penalty_id = o.record_id AND p.uscc = o.uscc
            UNION ALL
            SELECT 1 FROM serious_dishonesty_list s WHERE o.record_table = 'serious_dishonesty_list'
                AND s.list_entry_id = o.record_id AND s.uscc = o.uscc)""",
    "a resolved objection has a result, an open one none": """
        SELECT count(*) FROM objections WHERE (resolved_date IS NULL) <> (result IS NULL)""",
    "adverse records are never deleted after objection": """
        SELECT count(*) FROM objections o JOIN penalties p ON p.penalty_id = o.record_id
        WHERE o.result = '删除' AND p.severity IN ('较重', '严重')""",
    "tax ratings only for enterprises that filed tax that year": """
        SELECT count(*) FROM tax_ratings r WHERE NOT EXISTS (
            SELECT 1 FROM tax_monthly t WHERE t.uscc = r.uscc AND year(t.filed_date) = r.year)""",
    "loans mature after they start and default only while outstanding": """
        SELECT count(*) FROM loans WHERE maturity_date <= start_date OR dpd90_date < start_date
            OR (status = '违约') <> (dpd90_date IS NOT NULL)""",
}


@pytest.mark.parametrize("rule", CONSISTENCY)
def test_generated_tables_are_consistent_with_each_other(clean, rule: str) -> None:
    assert clean.execute(CONSISTENCY[rule]).fetchone()[0] == 0, rule


def test_the_regime_shift_raises_risk_in_its_industry_only(clean) -> None:
    regime = clean.execute("SELECT industry, start_month, end_month FROM synthetic_regimes").fetchone()
    # adverse events of every kind, per enterprise, in the regime's months and in as many months before
    rates = clean.execute(
        f"""WITH events AS (
                SELECT uscc, decision_date AS d FROM penalties WHERE severity IN ('较重', '严重')
                UNION ALL SELECT uscc, entry_date FROM serious_dishonesty_list
                UNION ALL SELECT uscc, entry_date FROM executee_list
                UNION ALL SELECT uscc, dpd90_date FROM loans WHERE dpd90_date IS NOT NULL
                UNION ALL SELECT uscc, outcome_date FROM commitments WHERE outcome = '违诺'),
            firms AS (SELECT industry = '{regime[0]}' AS hit, count(*) AS n FROM enterprises GROUP BY 1)
            SELECT e.industry = '{regime[0]}' AS hit, v.d >= DATE '{regime[1]}' AS during, count(*) / any_value(f.n)
            FROM events v JOIN enterprises e USING (uscc) JOIN firms f ON f.hit = (e.industry = '{regime[0]}')
            WHERE v.d >= DATE '{regime[1]}' - (DATE '{regime[2]}' - DATE '{regime[1]}') * INTERVAL 1 DAY
              AND v.d < DATE '{regime[2]}'
            GROUP BY ALL"""
    ).fetchall()
    per = {(hit, during): n for hit, during, n in rates}
    # events per enterprise rise inside the industry during the regime, much more than outside it
    assert per[(True, True)] / per[(True, False)] > 1.3 * per[(False, True)] / per[(False, False)], per
