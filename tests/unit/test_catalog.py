from pathlib import Path

import pytest
import yaml

from scoring.features.catalog import CatalogError, load_catalog

REPO = Path(__file__).resolve().parents[2]
CATALOG = REPO / "features" / "catalog.yaml"


def test_catalog_has_at_least_25_model_features_from_every_source() -> None:
    catalog = load_catalog(CATALOG)
    assert len(catalog.model_features) >= 25
    used = {f.source for f in catalog.model_features}
    assert used == set(catalog.sources)


def _write(tmp_path: Path, mutate) -> Path:
    raw = yaml.safe_load(CATALOG.read_text(encoding="utf-8"))
    mutate(raw)
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def test_a_typo_names_file_entry_and_field(tmp_path: Path) -> None:
    def typo(raw: dict) -> None:
        raw["features"][1]["windw_months"] = 12

    path = _write(tmp_path, typo)
    with pytest.raises(CatalogError) as err:
        load_catalog(path)
    message = str(err.value)
    assert str(path) in message and "registered_capital" in message and "windw_months" in message


def test_a_template_naming_a_missing_value_is_an_error(tmp_path: Path) -> None:
    def bad_template(raw: dict) -> None:
        raw["features"][0]["reason_template"] = "成立{no_such_feature}个月"

    with pytest.raises(CatalogError, match="no_such_feature"):
        load_catalog(_write(tmp_path, bad_template))


def test_a_category_cannot_be_monotone(tmp_path: Path) -> None:
    def monotone_category(raw: dict) -> None:
        for f in raw["features"]:
            if f["name"] == "industry":
                f["monotone"] = "increasing"

    with pytest.raises(CatalogError, match="industry"):
        load_catalog(_write(tmp_path, monotone_category))


def test_the_feature_dictionary_is_current() -> None:
    from scoring.features.dictionary import render_dictionary

    current = (REPO / "docs" / "feature-dictionary.md").read_text(encoding="utf-8")
    assert current == render_dictionary(load_catalog(CATALOG)), (
        "docs/feature-dictionary.md is stale: run `scoring dictionary`"
    )


def test_at_least_100_features_with_every_field() -> None:
    catalog = load_catalog(CATALOG)
    assert len(catalog.features) >= 100
    for f in catalog.features:
        assert f.description and f.owner and f.monotone_reason and f.reason_template, f.name


def test_which_windows_must_be_complete() -> None:
    """A count, sum or ratio over a window reaching before its source's records is missing; a latest
    value is kept; a feature without a window reads all the history there is."""
    catalog = load_catalog(CATALOG)
    full = {f.name for f in catalog.features if f.needs_full_window}
    assert {"penalty_count_24m", "tax_sales_prev_12m", "utility_paid_ratio_12m", "tax_max_arrears_days_12m"} <= full
    kept = {"tax_rating_latest", "si_headcount_latest", "si_headcount_12m_ago", "months_since_last_penalty"}
    assert not kept & full
    assert not {"loans_active", "ent_age_months", "tax_sales_yoy", "tax_sales_12m_peer_pct"} & full
    assert catalog.feature("tax_sales_prev_12m").reach_months == 24


def test_partial_window_needs_a_window_and_ties_a_peer_percentile(tmp_path: Path) -> None:
    def on_age(raw: dict) -> None:
        raw["features"][0]["partial_window"] = "kept"

    with pytest.raises(CatalogError, match="partial_window"):
        load_catalog(_write(tmp_path, on_age))

    def ties_on_a_count(raw: dict) -> None:
        next(f for f in raw["features"] if f["name"] == "penalty_count_12m")["ties"] = "high"

    with pytest.raises(CatalogError, match="ties"):
        load_catalog(_write(tmp_path, ties_on_a_count))
