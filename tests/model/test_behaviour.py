"""Behaviour a model-risk reviewer relies on, checked on the county's champion.

Monotone directions hold on random inputs; more penalties or arrears never improve the grade;
columns the model does not use change nothing; the same data and seed give the same model.
"""

import duckdb
import numpy as np
import pandas as pd
import pytest

from scoring.features.build import load_snapshot
from scoring.features.catalog import load_catalog
from scoring.registry.versions import configure, load_version
from scoring.training.spec import load_spec
from scoring.training.train import evaluation_frame, fit


@pytest.fixture(scope="module")
def scorer(county, trained):
    configure(county.settings)
    return load_version("credit_evaluation", trained.version).scorer


@pytest.fixture(scope="module")
def rows(county, trained):
    catalog = load_catalog(county.settings.catalog_path)
    with duckdb.connect(str(county.settings.warehouse_path)) as con:
        return load_snapshot(con, catalog, as_of=trained.test_as_of)


def _random_inputs(scorer, rows: pd.DataFrame, n: int, seed: int) -> np.ndarray:
    """Rows drawn column by column from the observed range (and NaN), ignoring how columns co-vary."""
    rng = np.random.default_rng(seed)
    observed = scorer.matrix(rows)
    x = np.empty((n, observed.shape[1]))
    for j in range(observed.shape[1]):
        col = observed[:, j][~np.isnan(observed[:, j])]
        lo, hi = (col.min(), col.max()) if col.size else (0.0, 1.0)
        x[:, j] = rng.uniform(lo, hi, n) if hi > lo else lo
        if scorer.config.features[j] in scorer.config.categories:
            x[:, j] = np.round(x[:, j])
        x[rng.random(n) < 0.1, j] = np.nan
    return x


def test_monotone_directions_hold_on_random_inputs(scorer, rows) -> None:
    x = _random_inputs(scorer, rows, 300, seed=3)
    rng = np.random.default_rng(4)
    checked = 0
    for j, name in enumerate(scorer.config.features):
        direction = scorer.config.monotone[name]
        if direction == 0:
            continue
        low, high = x.copy(), x.copy()
        a, b = rng.normal(0, 5, len(x)), rng.normal(0, 5, len(x))
        low[:, j], high[:, j] = np.minimum(a, b), np.maximum(a, b) + rng.exponential(5, len(x))
        moved = (scorer.margin(high) - scorer.margin(low)) * direction
        assert (moved >= -1e-9).all(), f"{name}: a higher value moved the risk against its direction"
        checked += 1
    assert checked >= 15


GRADE_RANK = {"A": 0, "B": 1, "C": 2, "D": 3}


@pytest.mark.parametrize("kind", ["penalty", "arrears"])
def test_more_penalties_or_arrears_never_improve_the_grade(scorer, rows, kind: str) -> None:
    names = [n for n in scorer.config.features if kind in n and scorer.config.monotone[n] == 1]
    assert len(names) >= 3, names
    frame = rows.sample(400, random_state=1).reset_index(drop=True)
    before = scorer.decide(scorer.matrix(frame))
    for name in names:
        worse = frame.copy()
        worse[name] = worse[name] + 1 + np.arange(len(worse)) % 4  # a known count grows; missing stays missing
        after = scorer.decide(scorer.matrix(worse))
        assert (after["score"] <= before["score"]).all(), name
        assert (after["grade"].map(GRADE_RANK) >= before["grade"].map(GRADE_RANK)).all(), name


def test_columns_the_model_does_not_use_change_nothing(scorer, rows) -> None:
    frame = rows.sample(300, random_state=2).reset_index(drop=True)
    unused = [c for c in frame.columns if c not in scorer.config.features and c not in ("uscc", "as_of")]
    assert "tax_sales_prev_12m" in unused  # a helper feature (in_model: false)
    changed = frame.copy()
    rng = np.random.default_rng(5)
    for c in unused:
        changed[c] = rng.permutation(changed[c].to_numpy())
    changed["uscc"] = changed["uscc"].iloc[::-1].to_numpy()
    changed["a_column_from_somewhere_else"] = rng.normal(size=len(changed))
    pd.testing.assert_frame_equal(scorer.decide(scorer.matrix(frame)), scorer.decide(scorer.matrix(changed)))


def test_the_same_data_and_seed_give_the_same_model(county, trained) -> None:
    spec = load_spec(county.settings.model_spec_path("credit_evaluation"))
    catalog = load_catalog(county.settings.catalog_path)
    with duckdb.connect(str(county.settings.warehouse_path)) as con:
        frame = pd.concat([evaluation_frame(con, catalog, d) for d in trained.train_as_of[:2]], ignore_index=True)
    first, cal_a, _ = fit(spec, catalog, frame, seed=7)
    second, cal_b, _ = fit(spec, catalog, frame, seed=7)
    assert first.model_to_string() == second.model_to_string() and cal_a == cal_b
    other, _, _ = fit(spec, catalog, frame, seed=8)
    assert other.model_to_string() != first.model_to_string()  # the seed matters: the check can fail


def test_large_data_settings_apply_only_above_their_row_count(county, trained) -> None:
    """A city's fit samples rows per tree and takes the larger learning rate; a county's does not."""
    from scoring.training.spec import LargeData

    spec = load_spec(county.settings.model_spec_path("credit_evaluation"))
    assert spec.large_data is not None and spec.large_data.above_rows > 100_000  # the county stays below
    catalog = load_catalog(county.settings.catalog_path)
    with duckdb.connect(str(county.settings.warehouse_path)) as con:
        frame = pd.concat([evaluation_frame(con, catalog, d) for d in trained.train_as_of[:2]], ignore_index=True)
    _, _, as_county = fit(spec, catalog, frame, seed=7)
    assert as_county["bagging_fraction"] == spec.lightgbm["bagging_fraction"]
    assert as_county["learning_rate"] == spec.lightgbm["learning_rate"]
    small = LargeData(above_rows=1000, rows_per_tree=1500, lightgbm={"learning_rate": 0.2})
    booster, _, as_city = fit(spec.model_copy(update={"large_data": small}), catalog, frame, seed=7)
    assert as_city["n_fit"] > 1000
    assert as_city["bagging_fraction"] == 1500 / as_city["n_fit"] and as_city["learning_rate"] == 0.2
    assert "[learning_rate: 0.2]" in booster.model_to_string()  # the booster was trained with it
