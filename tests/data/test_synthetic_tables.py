"""The table families of the scorecard benchmark (scoring.data.synthetic_tables)."""

import numpy as np
import pandas as pd
import pytest

from scoring.data.synthetic_tables import BAD_RATES, FAMILIES, bank_table, flat_table

NEW_FAMILIES = [f for f in FAMILIES if f not in ("additive", "mixed")]


def _bad(table: pd.DataFrame) -> np.ndarray:
    return (table["status"] == "违约").to_numpy()


def test_flat_table_is_unchanged() -> None:
    """Past figures and tests rely on flat_table's output for given arguments."""
    table = flat_table(rows=200, columns=20, bad_rate=0.3, seed=100, shape="additive")
    assert table["borrower_id"].iloc[0] == "B100000000"
    assert int(_bad(table).sum()) == 58
    assert round(float(table["tax_sales_growth"].sum()), 3) == 9728.683
    assert table["industry"].iloc[:3].tolist() == ["交通运输", "交通运输", "制造业"]


@pytest.mark.parametrize("shape", ["additive", "mixed"])
def test_the_first_two_families_are_flat_tables(shape: str) -> None:
    expected = flat_table(rows=300, columns=20, bad_rate=0.3, seed=7, shape=shape)  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(bank_table(shape, rows=300, seed=7), expected)  # type: ignore[arg-type]


@pytest.mark.parametrize("family", NEW_FAMILIES)
def test_a_seed_gives_the_same_table_and_another_seed_another(family: str) -> None:
    first = bank_table(family, rows=400, seed=3)  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(first, bank_table(family, rows=400, seed=3))  # type: ignore[arg-type]
    other = bank_table(family, rows=400, seed=4)  # type: ignore[arg-type]
    assert not first.drop(columns="borrower_id").equals(other.drop(columns="borrower_id"))


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("asked", [None, 0.1])
def test_the_bad_rate_is_the_asked_one(family: str, asked: float | None) -> None:
    rows = 20_000
    rate = BAD_RATES[family] if asked is None else asked
    bad = _bad(bank_table(family, rows=rows, seed=11, bad_rate=asked))  # type: ignore[arg-type]
    assert abs(bad.mean() - rate) < 4 * np.sqrt(rate * (1 - rate) / rows)


@pytest.mark.parametrize("levels", [200, 300, 500])
def test_the_township_code_has_the_asked_levels(levels: int) -> None:
    table = bank_table("high_cardinality", rows=2_000, seed=1, levels=levels)
    assert table["township_code"].nunique() == levels
    assert table["township_code"].str.fullmatch(r"330106\d{3}").all()
    # the company name is free text, one value per row
    assert table["company_name"].nunique() == len(table)


def test_the_township_codes_carry_effects() -> None:
    """The levels' bad rates spread more than sampling alone would spread them."""
    table = bank_table("high_cardinality", rows=30_000, seed=2)
    bad = pd.Series(_bad(table)).groupby(table["township_code"])
    rates, counts = bad.mean(), bad.size()
    large = counts >= 100
    p = _bad(table).mean()
    chance = np.sqrt(p * (1 - p) / counts[large])
    assert (rates[large] - p).std() > 2 * chance.mean()


@pytest.mark.parametrize(
    ("family", "column", "riskier_when_missing"),
    [
        ("mnar", "tax_paid_12m", True),
        ("mnar", "sales_cny", True),
        ("mnar", "months_since_overdue", False),
        ("imbalanced", "tax_paid_12m", True),
    ],
)
def test_missing_values_are_informative(family: str, column: str, riskier_when_missing: bool) -> None:
    table = bank_table(family, rows=30_000, seed=5)  # type: ignore[arg-type]
    bad, missing = _bad(table), table[column].isna().to_numpy()
    assert 0.05 < missing.mean() < 0.95
    when_missing, when_present = bad[missing].mean(), bad[~missing].mean()
    if riskier_when_missing:
        assert when_missing > 1.3 * when_present
    else:
        assert when_missing < when_present


def test_amounts_are_skewed_like_sales_in_cny() -> None:
    sales = bank_table("mnar", rows=5_000, seed=1)["sales_cny"].dropna()
    assert sales.min() > 0
    assert sales.mean() > 1.5 * sales.median()  # a lognormal's long right tail


def test_an_unknown_family_is_refused() -> None:
    with pytest.raises(ValueError, match="family must be one of"):
        bank_table("retail", rows=100)  # type: ignore[arg-type]
