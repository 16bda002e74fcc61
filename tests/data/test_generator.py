import hashlib
from pathlib import Path

import duckdb

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
