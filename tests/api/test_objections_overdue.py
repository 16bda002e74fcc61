"""Objections answered on time (issue 19, item 6): those open more than 20 days are overdue, listed by
`scoring objections overdue`, counted on /metrics and flagged on the console's alert page."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from fastapi.testclient import TestClient

from scoring.data.ingest import extract_date_of
from scoring.features.records import overdue_objections
from scoring.serve.app import create_app


@pytest.fixture(scope="module")
def home(served, tmp_path_factory) -> tuple[Path, dt.date]:
    """A copy of the served county with three open objections (raised 30, 21 and 20 days before the
    extraction date) and one raised 40 days before but resolved: only the first two are overdue."""
    home = tmp_path_factory.mktemp("objections")
    (home / "var").mkdir()
    target = home / "var" / "warehouse.duckdb"
    shutil.copy(served.settings.warehouse_path, target)
    with duckdb.connect(str(target)) as con:
        day = extract_date_of(con)
        penalties = con.execute("SELECT penalty_id, uscc FROM penalties ORDER BY penalty_id LIMIT 4").fetchall()
        for i, ((record, uscc), ago, resolved) in enumerate(
            zip(penalties, (30, 21, 20, 40), (None, None, None, 5), strict=True)
        ):
            raised = day - dt.timedelta(days=ago)
            con.execute(
                "INSERT INTO objections BY NAME SELECT ? AS objection_id, ? AS uscc, 'penalties' AS record_table, "
                "? AS record_id, ?::DATE AS raised_date, ?::DATE AS resolved_date, "
                "CASE WHEN ? IS NULL THEN NULL ELSE '维持' END AS result, 'tests' AS _load_id, "
                "'tests' AS _source_file, ? AS _line, now() AS _loaded_at",
                [
                    f"OBJ-T{i}",
                    uscc,
                    record,
                    raised,
                    None if resolved is None else raised + dt.timedelta(days=resolved),
                    resolved,
                    i + 1,
                ],
            )
    return home, day


def test_open_more_than_20_days_is_overdue(home) -> None:
    folder, day = home
    with duckdb.connect(str(folder / "var" / "warehouse.duckdb"), read_only=True) as con:
        rows = overdue_objections(con, as_of=day)
    ours = [r for r in rows if str(r["objection_id"]).startswith("OBJ-T")]
    assert [(r["objection_id"], r["days_open"], r["days_overdue"]) for r in ours] == [
        ("OBJ-T0", 30, 10),
        ("OBJ-T1", 21, 1),
    ]


def test_the_command_lists_them_and_exits_1(home) -> None:
    folder, _ = home
    cli = subprocess.run(
        [sys.executable, "-m", "scoring.cli", "objections", "overdue"],
        env={"SCORING_HOME": str(folder), "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 1, cli.stdout + cli.stderr
    assert "OBJ-T0" in cli.stdout and "OBJ-T1" in cli.stdout and "OBJ-T2" not in cli.stdout
    assert "逾期未办结的异议" in cli.stdout


def test_metrics_count_them_and_the_alert_page_flags_them(served, home, keys) -> None:
    folder, _ = home
    settings = served.settings.model_copy(update={"warehouse": folder / "var" / "warehouse.duckdb"})
    with TestClient(create_app(settings)) as client:
        metrics = client.get("/metrics").text
        total = int(
            float(
                next(line for line in metrics.splitlines() if line.startswith("scoring_objections_overdue ")).split()[1]
            )
        )
        assert total >= 2
        client.post("/console/login", data={"api_key": keys.regulator}, follow_redirects=False)
        page = client.get("/console/alerts")
        assert page.status_code == 200
        assert "逾期未办结的异议" in page.text and "OBJ-T0" in page.text and "OBJ-T1" in page.text
        assert "OBJ-T2" not in page.text and "OBJ-T3" not in page.text
        assert f'<b id="overdue-total">{total}</b>' in page.text
