"""`scoring score` on DuckDB: every enterprise graded as the service grades it, stored, and read back by
the console's supervision population and the monitor while it is current."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from scoring.batch.run import champions, score_on_duckdb
from scoring.data.ingest import connect, extract_date_of
from scoring.domain.batch import SCORES_TABLE, SHAP
from scoring.domain.decide import evaluation_result, pre_credit_result
from scoring.domain.policy import load_supervision_policy
from scoring.features.build import load_snapshot, store_snapshot
from scoring.features.catalog import load_catalog
from scoring.features.online import load_online
from scoring.serve.supervision import build_population
from scoring.settings import Settings


@pytest.fixture()
def home(county, trained, pre_credit_trained, tmp_path) -> Settings:
    """The county's settings on a private copy of its warehouse."""
    shutil.copy(county.settings.warehouse_path, tmp_path / "warehouse.duckdb")
    return Settings(
        **{**county.settings.model_dump(), "warehouse": tmp_path / "warehouse.duckdb", "var_dir": tmp_path / "var"}
    )


def test_every_row_is_the_decision_the_service_makes(home) -> None:
    catalog = load_catalog(home.catalog_path)
    with connect(home.warehouse_path, read_only=True) as con:
        as_of = extract_date_of(con)
    scored = score_on_duckdb(home, catalog, as_of=as_of, out=home.path(Path("var")))
    frame = pd.read_parquet(scored.path)
    assert len(frame) == scored.rows > 2000
    models = champions(home)
    with connect(home.warehouse_path) as con:
        snapshot = load_snapshot(con, catalog, as_of=as_of).set_index("uscc")
    names = models.evaluation_scorer.config.features
    for row in frame.sample(25, random_state=3).itertuples(index=False):
        values = {k: (None if pd.isna(v) else v) for k, v in snapshot.loc[row.uscc].items()}
        one = evaluation_result(models.evaluation, values)
        assert (row.score, row.grade) == (one.score, one.grade)
        assert row.probability == pytest.approx(one.probability, rel=1e-12)
        row_points = [getattr(row, f"{SHAP}{n}") for n in names]
        assert row_points == pytest.approx([one.points[n] for n in names], rel=1e-9, abs=1e-9)
        assert json.loads(row.reasons_zh) == [r.text_zh for r in one.reasons(catalog, values)]
        limit = pre_credit_result(models, values)
        assert (row.pre_credit_limit, row.decision) == (limit.limit, limit.limit_decision.decision)


def test_supervision_reads_the_stored_grades_while_they_are_current(home) -> None:
    catalog = load_catalog(home.catalog_path)
    with connect(home.warehouse_path) as con:
        as_of = extract_date_of(con)
    score_on_duckdb(home, catalog, as_of=as_of, out=home.path(Path("var")))
    models = champions(home)
    policy = load_supervision_policy(home.model_spec_path("supervision_policy"))
    graded_here = build_population(home.warehouse_path, models.evaluation, policy, as_of=as_of, not_counted=set())
    with connect(home.warehouse_path) as con:
        uscc = con.execute(f"SELECT uscc FROM {SCORES_TABLE} WHERE grade <> 'D' LIMIT 1").fetchone()[0]  # type: ignore[index]
        con.execute(f"UPDATE {SCORES_TABLE} SET grade = 'D' WHERE uscc = ?", [uscc])  # a mark only the table has
    read = build_population(home.warehouse_path, models.evaluation, policy, as_of=as_of, not_counted=set())
    assert read.frame.set_index("uscc").loc[uscc, "grade"] == "D"
    others = read.frame[read.frame["uscc"] != uscc].reset_index(drop=True)
    assert others["grade"].tolist() == graded_here.frame[graded_here.frame["uscc"] != uscc]["grade"].tolist()
    with connect(home.warehouse_path) as con:  # new data, and the snapshot rebuilt: the stored grades are stale
        other = read.frame[read.frame["uscc"] != uscc]["uscc"].iloc[0]
        con.execute(
            "INSERT INTO penalties (penalty_id, uscc, domain, severity, amount, decision_date) "
            "VALUES ('T-NEW', ?, '税务', '一般', 100, ?)",
            [other, as_of - dt.timedelta(days=3)],
        )
        store_snapshot(con, catalog, as_of=as_of)
    again = build_population(home.warehouse_path, models.evaluation, policy, as_of=as_of, not_counted=set())
    assert again.frame.set_index("uscc").loc[uscc, "grade"] == graded_here.frame.set_index("uscc").loc[uscc, "grade"]


def test_grading_processes_give_the_rows_of_one(home, monkeypatch) -> None:
    """Two grading processes (each rebuilding the champions from their model strings) give exactly the
    rows that grading in this process gives, in the same order."""
    import scoring.batch.run as batch_run

    catalog = load_catalog(home.catalog_path)
    models = champions(home)
    with connect(home.warehouse_path) as con:
        frame = load_snapshot(con, catalog, as_of=extract_date_of(con)).iloc[:1500]
    monkeypatch.setattr(batch_run, "CHUNK", 400)  # four chunks over two processes
    alone = batch_run._graded(models, catalog, frame, workers=1)
    pooled = batch_run._graded(models, catalog, frame, workers=2)
    pd.testing.assert_frame_equal(pooled, alone, check_exact=True)


def _fields(result) -> dict:
    """A pre-credit result's numbers and words, without the model objects it points to."""
    evaluation = {k: v for k, v in vars(result.evaluation).items() if k != "model"}
    return {**{k: v for k, v in vars(result).items() if k not in ("evaluation", "models")}, "evaluation": evaluation}


def test_the_service_decides_from_the_stored_outputs_only_while_they_are_current(home) -> None:
    """Stored by `scoring score` for the served models and snapshot build, the three models' outputs are
    what the service takes instead of three TreeSHAP passes: every enterprise's pre-credit result is
    the computed one exactly. A tampered store fails the check when loaded; a rebuilt snapshot is stale."""
    from scoring.domain.decide import pre_credit_results
    from scoring.serve.flow import stored_of
    from scoring.serve.precomputed import load_precomputed
    from scoring.serve.state import Service

    catalog = load_catalog(home.catalog_path)
    service = Service.open(home)
    as_of = service.ready().as_of  # the served snapshot
    try:
        assert service.precomputed is None  # nothing stored yet: every decision is computed
        score_on_duckdb(home, catalog, as_of=as_of, out=home.path(Path("var")))
        service.take_stored_outputs()
        ready = service.ready()
        assert ready.precomputed is not None and len(ready.precomputed.rows) == len(ready.online.usccs)
        usccs = list(ready.online.usccs)
        rows = [ready.online.values(u) for u in usccs]
        stored = stored_of(ready, usccs)
        assert stored is not None
        taken = pre_credit_results(ready.models, rows, outputs=stored)
        computed = pre_credit_results(ready.models, rows)
        assert [_fields(t) for t in taken] == [_fields(c) for c in computed]
        models, online = ready.models, ready.online
    finally:
        service.stop()
    with connect(home.warehouse_path) as con:  # a stored number off by a rounding: the check refuses them all
        con.execute(f"UPDATE {SCORES_TABLE} SET amount_estimate = amount_estimate * (1 + 1e-15)")
    assert load_precomputed(str(home.warehouse_path), models, online) is None
    score_on_duckdb(home, catalog, as_of=as_of, out=home.path(Path("var")))
    assert load_precomputed(str(home.warehouse_path), models, online) is not None
    with connect(home.warehouse_path) as con:  # the snapshot built again from new data: the stored rows are stale
        con.execute(
            "INSERT INTO penalties (penalty_id, uscc, domain, severity, amount, decision_date) "
            "VALUES ('T-NEWER', ?, '税务', '一般', 100, ?)",
            [usccs[0], as_of - dt.timedelta(days=3)],
        )
        store_snapshot(con, catalog, as_of=as_of)
    assert load_precomputed(str(home.warehouse_path), models, online) is None
    # graded again, the stored rows are those of the new build: not of the features this service read before
    score_on_duckdb(home, catalog, as_of=as_of, out=home.path(Path("var")))
    assert load_precomputed(str(home.warehouse_path), models, online) is None
    assert load_precomputed(str(home.warehouse_path), models, load_online(home.warehouse_path, catalog)) is not None
