"""Training from a large snapshot: every positive and a weighted, seeded sample of the negatives above
the spec's row count, calibrated on the unsampled holdout; and the training rows read from the folder
that `scoring features --engine spark --labels` writes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from scoring.data.ingest import connect, extract_date_of
from scoring.features.build import SNAPSHOT_TABLE
from scoring.features.catalog import load_catalog
from scoring.features.labels import labels_sql
from scoring.features.on_spark import BUILDS, LABELS, SNAPSHOTS
from scoring.training.errors import TrainingError
from scoring.training.fit import feature_names, fit_rows
from scoring.training.rows import choose_as_of_dates, data_start, holdout_of, training_rows
from scoring.training.spec import LargeData, ModelSpec, load_spec
from scoring.training.train import sampling_line


@pytest.fixture(scope="module")
def setting(county, tmp_path_factory):
    """(spec, catalog, warehouse copy, the spec's training dates) of the county."""
    import shutil

    warehouse = tmp_path_factory.mktemp("large") / "warehouse.duckdb"
    shutil.copy(county.settings.warehouse_path, warehouse)
    spec = load_spec(county.settings.model_spec_path("credit_evaluation"))
    catalog = load_catalog(county.settings.catalog_path)
    with connect(warehouse) as con:
        dates, _ = choose_as_of_dates(spec, start=data_start(con), extract=extract_date_of(con))
    return spec, catalog, warehouse, dates


def _sampling(spec: ModelSpec, *, above: int, rows: int) -> ModelSpec:
    large = LargeData(above_rows=10**9, rows_per_tree=10**9, sample_above_rows=above, sample_rows=rows)
    lightgbm = {**spec.lightgbm, "num_boost_round": 80, "early_stopping_rounds": 20}
    return spec.model_copy(update={"large_data": large, "lightgbm": lightgbm})


def test_every_positive_and_a_weighted_sample_of_negatives_the_holdout_whole(setting) -> None:
    spec, catalog, warehouse, dates = setting
    names = feature_names(spec, catalog)
    with connect(warehouse) as con:
        rows = training_rows(con, catalog, names, dates)
    seed = 7
    held = holdout_of(rows.uscc, spec.split.holdout_fraction, seed)
    fit_side = ~held
    positives, negatives = int(rows.y[fit_side].sum()), int((rows.y[fit_side] == 0).sum())
    target = positives + negatives // 3
    sampled = _sampling(spec, above=target + 1, rows=target)
    booster, calibration, info = fit_rows(sampled, catalog, rows, seed=seed)
    assert info["positives_kept"] == positives
    assert info["n_fit_before_sampling"] == positives + negatives
    assert info["n_fit"] == target
    assert info["negative_rate"] == pytest.approx((target - positives) / negatives)
    assert info["negative_weight"] == pytest.approx(1 / info["negative_rate"])
    assert info["n_holdout"] == int(held.sum())  # the holdout is never sampled

    line = sampling_line(info)["sampling"]  # the model card's
    assert f"every positive ({positives:,})" in line and f"unsampled holdout of {info['n_holdout']:,} rows" in line
    assert sampling_line({"n_fit": 10, "n_holdout": 5}) == {}

    again, _, _ = fit_rows(sampled, catalog, rows, seed=seed)
    assert again.model_to_string() == booster.model_to_string()
    other, _, other_info = fit_rows(sampled, catalog, rows, seed=seed + 1)
    assert other_info["n_holdout"] != info["n_holdout"] or other.model_to_string() != booster.model_to_string()

    # calibrated on the unsampled holdout: its mean probability is its base rate, not the sample's
    margin = booster.predict(rows.matrix[held], raw_score=True)
    p = 1 / (1 + np.exp(-(calibration.intercept + calibration.slope * margin)))
    base = rows.y[held].mean()
    assert abs(p.mean() - base) < 0.01 * base  # Platt on the sample would give its share, 0.23 here
    sample_rate = positives / target  # the positives' share of the fitted sample: about 3x the base rate
    assert sample_rate > 2 * base


def test_below_the_threshold_nothing_is_sampled(setting) -> None:
    spec, catalog, warehouse, dates = setting
    names = feature_names(spec, catalog)
    with connect(warehouse) as con:
        rows = training_rows(con, catalog, names, dates[-1:])
    _, _, info = fit_rows(_sampling(spec, above=len(rows) + 1, rows=len(rows)), catalog, rows, seed=7)
    assert "negative_rate" not in info and info["n_fit"] + info["n_holdout"] == len(rows)


def test_sampling_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="set together"):
        LargeData(above_rows=1, rows_per_tree=1, sample_above_rows=10)
    with pytest.raises(ValueError, match="must be below"):
        LargeData(above_rows=1, rows_per_tree=1, sample_above_rows=10, sample_rows=10)


def _spark_folder(con, catalog, dates: list[dt.date], folder: Path) -> None:
    """The layout `scoring features --engine spark --labels` writes, written here by DuckDB."""
    marks = ", ".join(f"DATE '{d}'" for d in dates)
    con.execute(
        f"COPY (SELECT * FROM {SNAPSHOT_TABLE} WHERE as_of IN ({marks})) TO '{folder / SNAPSHOTS}' "
        "(FORMAT parquet, PARTITION_BY (as_of))"
    )
    labels = " UNION ALL ".join(f"({labels_sql(con, as_of=d)})" for d in dates)  # each with its as_of
    con.execute(f"COPY ({labels}) TO '{folder / LABELS}' (FORMAT parquet, PARTITION_BY (as_of))")
    builds = {str(d): {"catalog_digest": catalog.digest} for d in dates}
    (folder / SNAPSHOTS / BUILDS).write_text(json.dumps(builds), encoding="utf-8")


def test_training_rows_from_a_spark_folder_equal_the_warehouse_s(setting, tmp_path) -> None:
    spec, catalog, warehouse, dates = setting
    names = feature_names(spec, catalog)
    with connect(warehouse) as con:
        here = training_rows(con, catalog, names, dates)
        _spark_folder(con, catalog, dates, tmp_path)
        there = training_rows(con, catalog, names, dates, snapshots=tmp_path)
    assert len(there) == len(here) > 0
    np.testing.assert_array_equal(there.uscc, here.uscc)
    np.testing.assert_array_equal(there.y, here.y)
    np.testing.assert_array_equal(there.matrix, here.matrix)  # NaNs in the same places count as equal

    with (
        connect(warehouse) as con,
        pytest.raises(TrainingError, match=f"no snapshot as of {dates[0] - dt.timedelta(days=1)}"),
    ):
        training_rows(con, catalog, names, [dates[0] - dt.timedelta(days=1)], snapshots=tmp_path)
    builds = json.loads((tmp_path / SNAPSHOTS / BUILDS).read_text())
    builds[str(dates[0])]["catalog_digest"] = "0" * 64
    (tmp_path / SNAPSHOTS / BUILDS).write_text(json.dumps(builds))
    with connect(warehouse) as con, pytest.raises(TrainingError, match="built by another catalog"):
        training_rows(con, catalog, names, dates, snapshots=tmp_path)
