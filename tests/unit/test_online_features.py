"""The online feature table read directly from a tiny warehouse file.

The snapshot table is given the layout the feature build stores (``feature_sql`` over empty
contract tables, ``LIMIT 0``: the same columns and types as ``store_snapshot`` writes), and a few
rows are written into it by hand, so no county is generated.
"""

import datetime as dt
import math
from pathlib import Path

import duckdb
import pytest

from scoring.data import schema
from scoring.features.build import SNAPSHOT_TABLE, feature_sql
from scoring.features.catalog import Catalog, load_catalog
from scoring.features.online import OnlineFeaturesError, load_online

REPO = Path(__file__).resolve().parents[2]
OLD, NEW = dt.date(2023, 12, 1), dt.date(2024, 6, 1)
NANJING, CHANGSHA, GONE = "91320100748204660Q", "91430122707233692A", "91110000100000000A"  # the last made up
# (uscc, as_of, ent_age_months, tax_sales_12m, industry, serious_list_active)
ROWS = [
    (NANJING, OLD, 114, 1_500_000.0, "C", 0.0),
    (NANJING, NEW, 120, 2_000_000.0, "C", 0.0),
    (CHANGSHA, NEW, 30, None, None, 1.0),
    (GONE, OLD, 7, 80_000.0, "F", 0.0),  # only in the older snapshot
]
NAMES = {NANJING: "南京某科技有限公司", CHANGSHA: "长沙某建材有限公司", GONE: "北京某已注销企业"}


def _missing(value: object) -> bool:
    """Missing as the reason texts read it (scoring.domain.reasons): None or a float NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(REPO / "features" / "catalog.yaml")


def _contract_tables(con: duckdb.DuckDBPyConnection) -> None:
    for table in schema.TABLES.values():
        con.execute(f"CREATE TABLE {table.name} ({', '.join(f'{c.name} {c.dtype}' for c in table.columns)})")
    con.executemany("INSERT INTO enterprises (uscc, name) VALUES (?, ?)", list(NAMES.items()))


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory, catalog: Catalog) -> Path:
    path = tmp_path_factory.mktemp("online") / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        _contract_tables(con)
        con.execute(f"CREATE TABLE {SNAPSHOT_TABLE} AS {feature_sql(catalog, NEW)} LIMIT 0")
        con.executemany(
            f"INSERT INTO {SNAPSHOT_TABLE} (uscc, as_of, ent_age_months, tax_sales_12m, industry, serious_list_active) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            ROWS,
        )
    return path


def test_the_latest_snapshot_is_loaded_by_default(warehouse: Path, catalog: Catalog) -> None:
    online = load_online(warehouse, catalog)
    assert online.as_of == NEW
    assert len(online) == 2 and sorted(online.usccs) == sorted([NANJING, CHANGSHA])
    assert online.values(NANJING)["tax_sales_12m"] == 2_000_000.0
    assert online.values(GONE) is None  # in the older snapshot only


def test_an_explicit_as_of_picks_that_snapshot(warehouse: Path, catalog: Catalog) -> None:
    online = load_online(warehouse, catalog, as_of=OLD)
    assert online.as_of == OLD
    assert len(online) == 2 and sorted(online.usccs) == sorted([NANJING, GONE])
    assert online.values(NANJING)["tax_sales_12m"] == 1_500_000.0
    assert online.values(NANJING)["ent_age_months"] == 114
    assert online.values(CHANGSHA) is None


def test_values_give_every_catalog_feature_with_nan_or_none_for_missing(warehouse: Path, catalog: Catalog) -> None:
    online = load_online(warehouse, catalog)
    values = online.values(CHANGSHA)
    assert values is not None
    assert list(values) == ["name", *(f.name for f in catalog.features)]
    assert values["name"] == NAMES[CHANGSHA]
    assert values["serious_list_active"] == 1.0
    assert math.isnan(values["tax_sales_12m"])  # a missing number is NaN
    assert _missing(values["industry"])  # a missing category: None, or NaN as pandas 3 reads a NULL string
    assert math.isnan(values["penalty_count_12m"])  # a column never written is missing too
    # integers and text keep their Python types, for the reason templates that print them
    age = values["ent_age_months"]
    assert type(age) is int and age == 30
    assert online.values(NANJING)["industry"] == "C"


def test_an_unknown_uscc_has_no_values(warehouse: Path, catalog: Catalog) -> None:
    online = load_online(warehouse, catalog)
    assert online.values("91000000000000000X") is None
    assert online.values("") is None


def test_usccs_and_columns_are_in_the_same_order(warehouse: Path, catalog: Catalog) -> None:
    online = load_online(warehouse, catalog)
    sales = online.column("tax_sales_12m")
    ages = online.column("ent_age_months")
    assert len(sales) == len(ages) == len(online.usccs) == len(online)
    by_uscc = dict(zip(online.usccs, ages, strict=True))
    assert by_uscc == {NANJING: 120, CHANGSHA: 30}
    industry = dict(zip(online.usccs, online.column("industry"), strict=True))
    assert industry[NANJING] == "C" and _missing(industry[CHANGSHA])
    assert sales[online.usccs.index(NANJING)] == 2_000_000.0


def test_a_warehouse_without_the_snapshot_table_is_an_error_that_says_so(tmp_path: Path, catalog: Catalog) -> None:
    path = tmp_path / "empty.duckdb"
    with duckdb.connect(str(path)) as con:
        _contract_tables(con)
    with pytest.raises(OnlineFeaturesError, match="holds no feature snapshot") as err:
        load_online(path, catalog)
    assert "scoring features" in str(err.value)  # and says what to run


def test_a_missing_warehouse_file_is_an_error_that_names_it(tmp_path: Path, catalog: Catalog) -> None:
    path = tmp_path / "nowhere.duckdb"
    with pytest.raises(OnlineFeaturesError, match="no warehouse at") as err:
        load_online(path, catalog)
    assert str(path) in str(err.value)
    assert not path.exists()  # reading never creates the file


def test_a_snapshot_from_another_catalog_is_an_error(warehouse: Path, catalog: Catalog) -> None:
    extra = catalog.features[0].model_copy(update={"name": "no_such_feature"})
    other = catalog.model_copy(update={"features": [*catalog.features, extra]})
    with pytest.raises(OnlineFeaturesError, match="another feature catalog"):
        load_online(warehouse, other)
