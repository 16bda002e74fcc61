"""The generator's two oracles: knowing the whole outcome window, or only what the as-of date knows."""

import duckdb
import numpy as np
import pandas as pd

from scoring.features.labels import oracle_probability


def _warehouse() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE TABLE enterprises AS SELECT * FROM (VALUES ('u1', 'F'), ('u2', 'C')) t(uscc, industry)")
    con.execute(
        "CREATE TABLE synthetic_truth AS SELECT * FROM (VALUES ('u1', 0.01), ('u2', 0.01)) t(uscc, monthly_hazard)"
    )
    con.execute(
        "CREATE TABLE synthetic_regimes AS SELECT * FROM (VALUES ('F', '2025-07', '2026-01', 0.8)) "
        "t(industry, start_month, end_month, logit_shift)"
    )
    return con


def test_a_bad_spell_after_the_as_of_date_is_unknowable_and_one_under_way_is_known() -> None:
    con = _warehouse()
    labels = pd.DataFrame(
        {
            "uscc": ["u1", "u2", "u1"],
            "as_of": pd.to_datetime(["2025-01-01", "2025-01-01", "2025-08-01"]),
            "exposure_months": [12, 12, 12],
        }
    )
    full = oracle_probability(con, labels)
    known = oracle_probability(con, labels, knowable=True)
    assert full is not None and known is not None and known.name == "p_asof"
    calm = 1 - 0.99**12
    assert np.isclose(known.iloc[0], calm) and full.iloc[0] > calm + 0.02  # the spell begins after 2025-01
    assert np.isclose(full.iloc[1], calm) and np.isclose(known.iloc[1], calm)  # another industry
    assert np.isclose(known.iloc[2], full.iloc[2]) and known.iloc[2] > calm  # under way on 2025-08-01


def test_no_truth_tables_means_no_oracle() -> None:
    labels = pd.DataFrame({"uscc": ["u1"], "as_of": pd.to_datetime(["2025-01-01"]), "exposure_months": [12]})
    assert oracle_probability(duckdb.connect(), labels, knowable=True) is None
