"""`scoring features` builds the whole catalog at an as-of date, or at several month starts in one pass."""

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd

from scoring.features.build import build_features, feature_sql, store_snapshots
from scoring.features.catalog import load_catalog

REPO = Path(__file__).resolve().parents[2]


def _scoring(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SCORING_HOME": str(home), "SCORING_FEATURES_DIR": str(REPO / "features"), "COLUMNS": "400"}
    return subprocess.run(
        [sys.executable, "-m", "scoring.cli", "features", *args], env=env, capture_output=True, text=True, cwd=home
    )


def test_features_builds_the_catalog_at_each_date(warehouse_copy: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "var").mkdir(parents=True)
    shutil.move(warehouse_copy, home / "var" / "warehouse.duckdb")
    catalog = load_catalog(REPO / "features" / "catalog.yaml")
    with duckdb.connect(str(home / "var" / "warehouse.duckdb")) as con:  # snapshots other tests built
        con.execute("DROP TABLE IF EXISTS feature_snapshots")

    done = _scoring(home, "--as-of", "2024-07-15", "--months", "3")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"built {len(catalog.features)} features" in done.stdout and "from 2024-06-01 to 2024-07-15" in done.stdout

    with duckdb.connect(str(home / "var" / "warehouse.duckdb")) as con:
        dates = [r[0] for r in con.execute("SELECT DISTINCT as_of FROM feature_snapshots ORDER BY 1").fetchall()]
        assert dates == [dt.date(2024, 6, 1), dt.date(2024, 7, 1), dt.date(2024, 7, 15)]
        stored = con.execute("SELECT * FROM feature_snapshots WHERE as_of = DATE '2024-07-15' ORDER BY uscc").df()
        fresh = build_features(con, catalog, as_of=dt.date(2024, 7, 15))
    assert list(stored.columns) == ["uscc", "as_of", *(f.name for f in catalog.features)]
    pd.testing.assert_frame_equal(stored.drop(columns="as_of"), fresh.drop(columns="as_of"), check_dtype=False)


def test_a_bad_date_is_an_error_naming_the_option(warehouse_copy: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "var").mkdir(parents=True)
    shutil.move(warehouse_copy, home / "var" / "warehouse.duckdb")
    done = _scoring(home, "--as-of", "2024-13-01")
    assert done.returncode != 0 and "--as-of" in done.stdout + done.stderr


def test_dates_built_in_separate_passes_equal_one_pass(warehouse_copy: Path) -> None:
    catalog = load_catalog(REPO / "features" / "catalog.yaml")
    dates = [dt.date(2024, 3, 1), dt.date(2024, 5, 1), dt.date(2024, 6, 20)]
    with duckdb.connect(str(warehouse_copy)) as con:
        con.execute("DROP TABLE IF EXISTS feature_snapshots")
        one_pass = con.execute(feature_sql(catalog, dates)).df()
        rows = store_snapshots(con, catalog, as_of_dates=dates, rows_per_pass=1)  # one date per pass
        stored = con.execute("SELECT * FROM feature_snapshots ORDER BY as_of, uscc").df()
    assert rows == len(one_pass) and sorted(stored.as_of.dt.date.unique()) == dates
    pd.testing.assert_frame_equal(stored, one_pass, check_dtype=False)
