"""An independent implementation agrees with the SQL pipeline.

benchmarks/pandas_features.py computes a subset of the catalog in plain pandas, written apart from
the SQL compiler (it is the benchmark's side-by-side). On the county, at a month start and mid-month,
both give the same value for every enterprise: two implementations of one definition.
"""

import datetime as dt
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoring.data.ingest import connect
from scoring.features.build import feature_sql
from scoring.features.catalog import Catalog, load_catalog

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
import pandas_features  # noqa: E402


# mid-month in the county's third year: every window of the subset is complete (24 months of data)
@pytest.mark.parametrize("as_of", [dt.date(2024, 7, 1), dt.date(2024, 11, 17)])
def test_pandas_and_sql_give_the_same_features(warehouse_copy: Path, as_of: dt.date) -> None:
    catalog = load_catalog(REPO / "features" / "catalog.yaml")
    features = [catalog.feature(n) for n in pandas_features.FEATURES]
    subset = Catalog.model_construct(**{**dict(catalog), "features": features})  # templates may name others
    with connect(warehouse_copy, read_only=True) as con:
        sql = con.execute(feature_sql(subset, as_of)).df().drop(columns="as_of").set_index("uscc")
        tables = {t: con.execute(f"SELECT {', '.join(c)} FROM {t}").df() for t, c in pandas_features.COLUMNS.items()}
    by_pandas = pandas_features.features(tables, pd.Timestamp(as_of))

    assert sorted(by_pandas.index) == sorted(sql.index)
    by_pandas = by_pandas.loc[sql.index]
    for name in pandas_features.FEATURES:
        x, y = sql[name].to_numpy(float), by_pandas[name].to_numpy(float)
        same = np.isclose(x, y, rtol=1e-9, atol=1e-9) | (np.isnan(x) & np.isnan(y))
        assert same.all(), f"{name}: {int((~same).sum())} enterprises differ"
        assert np.isfinite(x).any(), f"{name}: no enterprise has a value, the comparison would prove nothing"
