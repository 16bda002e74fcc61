"""`scoring monitor` on the test county: the generator's regime shift (industry F, last six months) is a
red flag naming the industry; a month after the champion's test date and before the regime raises no
flag at all, the features' included; a source that stopped sending records is a red flag on its own."""

from __future__ import annotations

import base64
import datetime as dt
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import mlflow
import pytest
from typer.testing import CliRunner

from scoring.cli import MONITOR_RED, app
from scoring.features.catalog import load_catalog
from scoring.registry.versions import configure
from tests.conftest import REPO, SMALL


def month_start(first: str, months: int) -> dt.date:
    y, m = divmod(int(first[5:7]) - 1 + months, 12)
    return dt.date(int(first[:4]) + y, m + 1, 1)


@dataclass
class Monitored:
    env: dict[str, str]
    out: Path
    shifted: dt.date
    unshifted: dt.date
    runs: dict[str, object]  # as-of -> click Result


def _home(county, root: Path) -> dict[str, str]:
    """A home holding a copy of the county's warehouse (the snapshots a run builds stay out of the other
    tests' warehouse), reading the county's MLflow store; the environment that points at it."""
    (root / "var").mkdir(parents=True)
    shutil.copy(county.settings.warehouse_path, root / "var" / "warehouse.duckdb")
    return {
        "SCORING_HOME": str(root),
        "SCORING_FEATURES_DIR": str(REPO / "features"),
        "SCORING_MODELS_DIR": str(REPO / "models"),
        "SCORING_MLFLOW_TRACKING_URI": county.settings.tracking_uri,
        "SCORING_MLFLOW_DIR": str(county.settings.path(county.settings.mlflow_dir)),
        "COLUMNS": "200",
    }


@pytest.fixture(scope="module")
def monitored(county, trained, tmp_path_factory: pytest.TempPathFactory) -> Monitored:
    """The monitor run at the end of the regime and at a month without a shift."""
    home = tmp_path_factory.mktemp("monitor")
    env = _home(county, home)
    lo, _ = SMALL.regime_window
    # a snapshot reads records dated before its as-of date: at the extraction date six months of the
    # regime. Three months after the champion's test date nothing has shifted: the county's enterprises
    # are older than in the training snapshots, by less than the red PSI (they pass it 18 months on)
    unshifted = month_start(trained.test_as_of.isoformat(), 3)
    shifted = dt.date.fromisoformat(county.manifest["extract_date"])
    assert trained.test_as_of < unshifted < month_start(SMALL.start, lo) < shifted
    runner = CliRunner()
    runs = {}
    for day in (shifted, unshifted):
        runs[str(day)] = runner.invoke(
            app, ["monitor", "--as-of", str(day), "--out", str(home / f"report-{day}.html")], env=env
        )
    return Monitored(env=env, out=home, shifted=shifted, unshifted=unshifted, runs=runs)


def _run(county, as_of: dt.date) -> mlflow.entities.Run:
    client = configure(county.settings)
    experiment = client.get_experiment_by_name(county.settings.monitoring_experiment)
    assert experiment is not None
    found = client.search_runs(
        [experiment.experiment_id], f"tags.as_of = '{as_of}'", order_by=["attributes.start_time DESC"], max_results=1
    )
    assert found, f"no monitoring run for {as_of}"
    return found[0]


def test_the_regime_shift_is_a_red_flag_naming_industry_f(monitored, county) -> None:
    done = monitored.runs[str(monitored.shifted)]
    assert done.exit_code == MONITOR_RED, done.output
    red = done.output[done.output.index("red flag:") :]
    assert "industry=F" in red
    tags = _run(county, monitored.shifted).data.tags
    assert tags["alert"] == "true" and tags["score_status"] == "red"
    assert tags["red_segments"] == "industry=F"  # and no other segment


def test_one_industry_shifting_hardly_moves_the_whole_population(monitored, county) -> None:
    """Why segments are measured: the whole county's score PSI stays green while industry F is red."""
    metrics = _run(county, monitored.shifted).data.metrics
    assert metrics["score_psi"] < 0.1
    assert metrics["segment_psi.industry.F"] > 2 * metrics["score_psi"]
    assert metrics["segment_shift_sd.industry.F"] <= -0.25


def test_a_month_without_a_shift_raises_no_flag_features_included(monitored, county) -> None:
    done = monitored.runs[str(monitored.unshifted)]
    assert done.exit_code == 0, done.output
    assert "red flag:" not in done.output and "no red flag (score" in done.output
    run = _run(county, monitored.unshifted)
    tags, metrics = run.data.tags, run.data.metrics
    assert tags["alert"] == "false" and tags["alert_on"] == "score and features"
    assert tags["red_segments"] == "" and tags["red_features"] == ""
    assert metrics["n_red"] == 0 and metrics["n_red_features"] == 0 and metrics["n_red_missing"] == 0
    assert abs(metrics["segment_shift_sd.industry.F"]) < 0.25
    # the year-on-year growths: complete in the training snapshot of 2024-01, compared on it alone
    assert metrics["feature_psi.tax_sales_yoy"] < 0.1 and metrics["feature_psi.elec_usage_yoy"] < 0.1
    # 36-month windows reach before the data in every training snapshot: not compared, and said so
    assert "penalty_count_36m" in tags["not_compared"] and "feature_psi.penalty_count_36m" not in metrics
    assert "features not compared" in done.output


def test_a_source_that_stopped_is_a_red_flag_of_its_own(monitored, county, tmp_path: Path) -> None:
    """The water utility sent no bill for a year: the score barely moves, the features' missing rates do."""
    env = _home(county, tmp_path / "home")
    with duckdb.connect(str(tmp_path / "home" / "var" / "warehouse.duckdb")) as con:
        con.execute(
            "DELETE FROM utility_monthly WHERE utility = 'water' AND bill_date >= ?",
            [month_start(monitored.unshifted.isoformat(), -12)],
        )
    runner = CliRunner()
    done = runner.invoke(
        app, ["monitor", "--as-of", str(monitored.unshifted), "--out", str(tmp_path / "a.html")], env=env
    )
    assert done.exit_code == MONITOR_RED, done.output
    red = done.output[done.output.index("red flag:") :]
    assert "whose missing rate moved" in red and "water_usage_yoy" in red
    assert "industry=" not in red and "score PSI" not in red  # the score did not raise it
    quiet = runner.invoke(
        app,
        ["monitor", "--as-of", str(monitored.unshifted), "--score-only", "--out", str(tmp_path / "b.html")],
        env=env,
    )
    assert quiet.exit_code == 0, quiet.output
    assert "features not counted" in quiet.output
    assert "Red features (no alert with --score-only)" in (tmp_path / "b.html").read_text(encoding="utf-8")


def test_the_report_holds_the_plots_and_the_red_segment(monitored) -> None:
    html = (monitored.out / f"report-{monitored.shifted}.html").read_text(encoding="utf-8")
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    # score distribution, segments, features, migration, and the red segment's own distribution
    assert len(images) == 5
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    assert "<h3>industry=F</h3>" in html and "ALERT" in html
    quiet = (monitored.out / f"report-{monitored.unshifted}.html").read_text(encoding="utf-8")
    assert "ALERT" not in quiet and len(re.findall("data:image/png;base64,", quiet)) == 4


def test_the_run_is_logged_with_every_feature_the_champion_and_the_report(monitored, county, trained) -> None:
    run = _run(county, monitored.shifted)
    tags, metrics = run.data.tags, run.data.metrics
    assert tags["champion_version"] == trained.version and tags["model_name"] == trained.model_name
    assert tags["reference_as_of"] == ",".join(map(str, trained.train_as_of))
    client = configure(county.settings)
    feature_metrics = [k for k in metrics if k.startswith("feature_psi.")]
    compared = len(load_catalog(REPO / "features" / "catalog.yaml").model_features) - len(
        tags["not_compared"].split(", ")
    )
    assert len(feature_metrics) == len([k for k in metrics if k.startswith("missing_change.")]) == compared > 80
    assert metrics["n_red"] >= 1 and metrics["alert"] == 1.0
    artifacts = [a.path for a in client.list_artifacts(run.info.run_id, "report")]
    assert artifacts == [f"report/report-{monitored.shifted}.html"]


def test_bad_input_fails_with_a_clear_message(monitored, tmp_path: Path) -> None:
    runner = CliRunner()
    wrong = runner.invoke(app, ["monitor", "--as-of", "2026-13-01"], env=monitored.env)
    assert wrong.exit_code == 1 and "not a date" in wrong.output
    late = runner.invoke(app, ["monitor", "--as-of", "2027-01-01"], env=monitored.env)
    assert late.exit_code == 1 and "after the data's extraction date" in late.output
    backwards = runner.invoke(
        app, ["monitor", "--as-of", "2025-07-01", "--reference-as-of", "2025-09-01"], env=monitored.env
    )
    assert backwards.exit_code == 1 and "must come before" in backwards.output
    empty = {
        **monitored.env,
        "SCORING_HOME": str(tmp_path),
        "SCORING_MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/m.db",
    }
    none = runner.invoke(app, ["monitor", "--as-of", "2025-07-01"], env=empty)
    assert none.exit_code == 1 and "run `scoring train` first" in none.output
