"""Parity is the contract: the catalog's snapshots and the labels built on a real Spark equal DuckDB's.

On the generated county at two as-of dates (a month start and mid-month): the same (uscc, as_of)
rows, every count equal, every number within a relative 1e-9, the same NULLs, feature by feature;
the same for the labels of both models. Then a table of edge cases on a warehouse written here,
run on both engines with disputed records counted and excluded.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pandas as pd
import pytest

from scoring.batch.run import champions, score_on_duckdb, score_on_spark
from scoring.data.ingest import connect, extract_date_of
from scoring.data.ingest.warehouse import ensure_tables
from scoring.data.lake import export_lake
from scoring.domain.batch import SCORES_TABLE, SHAP
from scoring.features.build import feature_sql
from scoring.features.catalog import Catalog, load_catalog
from scoring.features.labels import build_loan_labels, labels_sql, window_end
from scoring.features.on_spark import LABELS, LOAN_LABELS, SNAPSHOTS, spark_labels, spark_snapshots
from scoring.features.parity import compare
from scoring.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def _read(path: Path) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    if "as_of" in frame:
        frame["as_of"] = pd.to_datetime(frame["as_of"].astype(str)).dt.date
    return frame


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(REPO / "features" / "catalog.yaml")


@pytest.fixture(scope="module")
def dates(county) -> list[dt.date]:
    """A month start and a mid-month date whose 12-month outcome windows are complete."""
    with connect(county.settings.warehouse_path, read_only=True) as con:
        extract = extract_date_of(con)
    start = (pd.Timestamp(extract) - pd.DateOffset(months=13)).to_period("M").to_timestamp().date()
    return [start, start - dt.timedelta(days=start.day + 15) + dt.timedelta(days=1)]


@pytest.fixture(scope="module")
def built(county, spark, catalog, dates, tmp_path_factory) -> Path:
    lake = tmp_path_factory.mktemp("lake")
    with connect(county.settings.warehouse_path, read_only=True) as con:
        export_lake(con, lake, buckets=4)
    out = tmp_path_factory.mktemp("on_spark")
    spark_snapshots(spark, catalog, lake=lake, out=out, as_of_dates=dates)
    spark_labels(spark, lake=lake, out=out, as_of_dates=dates)
    return out


def test_the_snapshots_are_equal_feature_by_feature(county, catalog, dates, built) -> None:
    with connect(county.settings.warehouse_path, read_only=True) as con:
        duck = con.execute(feature_sql(catalog, dates)).df()
    spark = _read(built / SNAPSHOTS)
    assert sorted(set(spark["as_of"])) == sorted(dates)
    assert set(spark.columns) == set(duck.columns)
    assert compare(duck, spark, keys=["uscc", "as_of"]) == []
    # not an empty agreement: both dates have every enterprise, and most features have values (the
    # others are windows longer than the county's history at these dates)
    assert len(duck) > 4000
    filled = [f.name for f in catalog.features if duck[f.name].notna().any()]
    assert len(filled) >= 0.8 * len(catalog.features)


def test_the_champions_grade_both_snapshots_alike(
    county, trained, pre_credit_trained, spark, catalog, dates, built, tmp_path
) -> None:
    """Scores, grades, limits, decisions, reasons and every SHAP value: DuckDB's batch (written to a
    copy of the warehouse) against the tasks of Spark grading the Spark-built snapshot."""
    shutil.copy(county.settings.warehouse_path, tmp_path / "warehouse.duckdb")
    settings = Settings(
        **{**county.settings.model_dump(), "warehouse": tmp_path / "warehouse.duckdb", "var_dir": tmp_path / "var"}
    )
    scored = score_on_duckdb(settings, catalog, as_of=dates[0], out=tmp_path / "var")
    models = champions(settings)
    rows = score_on_spark(spark, models, catalog, snapshots=built / SNAPSHOTS, out=tmp_path / "spark", as_of=dates[0])
    on_duck = pd.read_parquet(scored.path).assign(as_of=dates[0])
    on_spark = _read(tmp_path / "spark" / SCORES_TABLE)
    assert rows == scored.rows == len(on_duck) > 2000
    assert {"pre_credit_limit", "decision", "reasons_zh"} <= set(on_spark.columns)
    assert sum(c.startswith(SHAP) for c in on_spark.columns) == len(models.evaluation_scorer.config.features)
    assert compare(on_duck, on_spark, keys=["uscc", "as_of"]) == []
    with connect(settings.warehouse_path, read_only=True) as con:
        stored = con.execute(f"SELECT * FROM {SCORES_TABLE}").df()
    assert compare(stored, on_duck, keys=["uscc", "as_of"]) == []
    assert set(on_duck["grade"]) >= {"A", "B", "C"}  # the batch grades, not one grade for all


def test_the_labels_of_both_models_are_equal(county, dates, built) -> None:
    with connect(county.settings.warehouse_path, read_only=True) as con:
        duck = pd.concat([con.execute(labels_sql(con, as_of=d)).df() for d in dates])
        first = min(dates).replace(day=1)
        after = (pd.Timestamp(max(dates)).to_period("M") + 1).to_timestamp().date()
        loans = build_loan_labels(con, start_from=first, start_before=after)
    assert duck["adverse"].sum() > 0 and len(loans) > 0
    assert compare(duck, _read(built / LABELS), keys=["uscc", "as_of"]) == []
    assert compare(loans, _read(built / LOAN_LABELS), keys=["loan_id"]) == []


# ---------------------------------------------------------------- the edge cases, on both engines

AS_OF = [dt.date(2024, 2, 1), dt.date(2024, 2, 29), dt.date(2024, 3, 1), dt.date(2025, 1, 1)]
FIRST = dt.date(2021, 1, 1)  # the platform's records begin: every window of 2024 is complete
E = [f"91330100MA00000{k:02d}X" for k in range(1, 9)]


def _edge_warehouse(path: Path) -> None:
    """Eight enterprises, each showing one edge case (the comments say which)."""
    with connect(path) as con:
        ensure_tables(con)
        con.execute("INSERT OR REPLACE INTO meta VALUES ('extract_date', '2026-01-01')")
        for k, uscc in enumerate(E):
            registered = dt.date(2024, 1, 31) if k == 0 else FIRST  # E1: registered on a month end
            con.execute(
                "INSERT INTO enterprises (uscc, name, entity_type, industry, division, registered_capital, size_class, "
                "status, registered_date) VALUES (?, ?, '有限责任公司', 'C', '制造业', 100.0, '小型', '存续', ?)",
                [uscc, f"企业{k}", registered],
            )
        ratings = [
            (E[1], "A", dt.date(2023, 4, 1)),
            (E[1], None, dt.date(2023, 10, 1)),  # E2: the latest rating is NULL: the one before it stands
            (E[2], "B", dt.date(2023, 6, 1)),
            (E[2], "D", dt.date(2023, 6, 1)),  # E3: two ratings on one date
        ]
        ratings.append((E[7], "A", FIRST))  # the ratings' records begin
        con.executemany(
            "INSERT INTO tax_ratings (uscc, year, rating, rated_date) VALUES (?, 2023, ?, ?)",
            [[u, r, d] for u, r, d in ratings],
        )
        penalties = [
            ("P1", E[3], dt.date(2023, 2, 28), None),  # E4: month ends, inside the 12 months before 2024-02-29
            ("P2", E[3], dt.date(2023, 3, 1), None),
            ("P3", E[3], dt.date(2023, 1, 31), None),
            ("P4", E[4], dt.date(2023, 9, 1), dt.date(2024, 3, 1)),  # E5: repaired on an as-of date: counts then
            ("P5", E[4], dt.date(2023, 9, 2), dt.date(2024, 2, 29)),  # and one repaired the day before
            ("P6", E[5], dt.date(2023, 9, 1), None),  # E6: deleted after an objection resolved on 2024-03-01
            ("P7", E[5], dt.date(2023, 9, 3), None),  # and one under an objection still open
            ("P0", E[0], FIRST, None),  # the penalties' records begin (E1 is registered later: not counted)
        ]
        con.executemany(
            "INSERT INTO penalties (penalty_id, uscc, domain, severity, amount, decision_date, repair_date) "
            "VALUES (?, ?, '市场监管', '较重', 1000.0, ?, ?)",
            [[i, u, d, r] for i, u, d, r in penalties],
        )
        con.executemany(
            "INSERT INTO objections (objection_id, uscc, record_table, record_id, raised_date, resolved_date, result) "
            "VALUES (?, ?, 'penalties', ?, ?, ?, ?)",
            [
                ["O1", E[5], "P6", dt.date(2023, 10, 1), dt.date(2024, 3, 1), "删除"],
                ["O2", E[5], "P7", dt.date(2023, 10, 1), None, None],
            ],
        )
        bills = []
        for m in range(36):  # E7: nothing billed and nothing paid (zero denominators); E8 has no penalty
            period = (pd.Timestamp(FIRST) + pd.DateOffset(months=m + 12)).date()
            bills.append([E[6], "electricity", period, period + dt.timedelta(days=5), 0.0, 0.0, 0.0, 0.0])
        bills.append([E[7], "water", FIRST, FIRST, 1.0, 1.0, 1.0, 0.0])  # the utilities' records begin
        con.executemany(
            "INSERT INTO utility_monthly (uscc, utility, period, bill_date, usage, billed, paid, arrears) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            bills,
        )


@pytest.fixture(scope="module")
def edges(tmp_path_factory) -> tuple[Path, Path]:
    home = tmp_path_factory.mktemp("edges")
    _edge_warehouse(home / "warehouse.duckdb")
    with connect(home / "warehouse.duckdb", read_only=True) as con:
        export_lake(con, home / "lake", buckets=2)
    return home / "warehouse.duckdb", home / "lake"


@pytest.mark.parametrize("disputed", ["count", "exclude"])
def test_the_edge_cases_are_equal_on_both_engines(spark, catalog, edges, disputed, tmp_path) -> None:
    warehouse, lake = edges
    chosen = catalog.model_copy(update={"disputed_records": disputed})
    with connect(warehouse, read_only=True) as con:
        duck = con.execute(feature_sql(chosen, AS_OF)).df()
    spark_snapshots(spark, chosen, lake=lake, out=tmp_path, as_of_dates=AS_OF)
    assert compare(duck, _read(tmp_path / SNAPSHOTS), keys=["uscc", "as_of"]) == []
    at = duck.assign(as_of=pd.to_datetime(duck["as_of"]).dt.date).set_index(["uscc", "as_of"])
    # what each case shows, so that the agreement is about the edge and not about an empty table
    assert at.loc[(E[0], dt.date(2024, 2, 1)), "ent_age_months"] == 1  # 01-31 to 02-01: one month boundary
    assert at.loc[(E[1], dt.date(2024, 3, 1)), "tax_rating_latest"] == 1  # 'A': the NULL after it skipped
    assert at.loc[(E[2], dt.date(2024, 3, 1)), "tax_rating_latest"] == 5  # 'D', the greater of the tie
    assert at.loc[(E[3], dt.date(2024, 2, 29)), "penalty_severe_count_12m"] == 2  # 02-28 and 03-01 of 2023
    assert at.loc[(E[3], dt.date(2024, 3, 1)), "penalty_severe_count_12m"] == 1
    assert at.loc[(E[4], dt.date(2024, 2, 29)), "penalty_severe_count_12m"] == 2  # no repair before 02-29
    assert at.loc[(E[4], dt.date(2024, 3, 1)), "penalty_severe_count_12m"] == 1  # P5 repaired on 02-29
    open_counts = 1 if disputed == "count" else 0
    # P6's objection is resolved on 2024-03-01, so it is still open then: both P6 and P7 are disputed
    assert at.loc[(E[5], dt.date(2024, 3, 1)), "penalty_severe_count_12m"] == 2 * open_counts
    assert at.loc[(E[5], dt.date(2025, 1, 1)), "penalty_severe_count_24m"] == open_counts  # P6 deleted by then
    assert pd.isna(at.loc[(E[6], dt.date(2025, 1, 1)), "utility_paid_ratio_12m"])  # 0 / 0
    assert pd.isna(at.loc[(E[6], dt.date(2025, 1, 1)), "elec_usage_yoy"])  # growth from 0
    assert at.loc[(E[7], dt.date(2025, 1, 1)), "penalty_severe_count_12m"] == 0  # an empty window


def test_labels_on_an_as_of_date_with_an_incomplete_window_fail_on_spark_as_on_duckdb(spark, edges, tmp_path) -> None:
    from scoring.features.labels import LabelWindowError

    _, lake = edges
    assert window_end(dt.date(2025, 3, 1)) > dt.date(2026, 1, 1)  # the extraction date of the edge warehouse
    with pytest.raises(LabelWindowError, match="after the data ends"):
        spark_labels(spark, lake=lake, out=tmp_path, as_of_dates=[dt.date(2025, 3, 1)])


def test_training_reads_the_rows_spark_wrote(catalog, dates, built, warehouse_copy) -> None:
    """The stacked training rows (encoded features and labels) from Spark's folder are the warehouse's."""
    import numpy as np

    from scoring.training.fit import feature_names
    from scoring.training.rows import training_rows
    from scoring.training.spec import load_spec

    names = feature_names(load_spec(REPO / "models" / "credit_evaluation.yaml"), catalog)
    with connect(warehouse_copy) as con:
        here = training_rows(con, catalog, names, dates)
        there = training_rows(con, catalog, names, dates, snapshots=built)
    assert len(there) == len(here) > 4000
    np.testing.assert_array_equal(there.uscc, here.uscc)
    np.testing.assert_array_equal(there.y, here.y)
    np.testing.assert_allclose(there.matrix, here.matrix, rtol=1e-9, atol=0)  # NaNs where DuckDB has them
