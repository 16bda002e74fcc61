"""`scoring monitor` on the test county: the generator's regime shift (industry F, last six months) is a
red flag naming the industry; the month before it, after the champion's training and test dates, is not."""

from __future__ import annotations

import base64
import datetime as dt
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
from typer.testing import CliRunner

from scoring.cli import MONITOR_RED, app
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


@pytest.fixture(scope="module")
def monitored(county, trained, tmp_path_factory: pytest.TempPathFactory) -> Monitored:
    """The monitor run at the end of the regime and just before it, on a copy of the county's
    warehouse (the snapshots it builds stay out of the other tests' warehouse)."""
    home = tmp_path_factory.mktemp("monitor")
    (home / "var").mkdir()
    shutil.copy(county.settings.warehouse_path, home / "var" / "warehouse.duckdb")
    env = {
        "SCORING_HOME": str(home),
        "SCORING_FEATURES_DIR": str(REPO / "features"),
        "SCORING_MODELS_DIR": str(REPO / "models"),
        "SCORING_MLFLOW_TRACKING_URI": county.settings.tracking_uri,
        "SCORING_MLFLOW_DIR": str(county.settings.path(county.settings.mlflow_dir)),
        "COLUMNS": "200",
    }
    lo, _ = SMALL.regime_window
    # a snapshot reads records dated before its as-of date: at the regime's first month it has none of
    # them, at the extraction date six months of them
    unshifted = month_start(SMALL.start, lo)
    shifted = dt.date.fromisoformat(county.manifest["extract_date"])
    assert trained.test_as_of < unshifted < shifted
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


def test_the_month_before_the_regime_raises_no_red_flag(monitored, county) -> None:
    done = monitored.runs[str(monitored.unshifted)]
    assert done.exit_code == 0, done.output
    assert "red flag" not in done.output and "no red score flag" in done.output
    run = _run(county, monitored.unshifted)
    assert run.data.tags["alert"] == "false" and run.data.tags["red_segments"] == ""
    assert run.data.metrics["n_red_segments"] == 0
    assert abs(run.data.metrics["segment_shift_sd.industry.F"]) < 0.25


def test_strict_alerts_on_the_features_that_differ_from_the_training_snapshots(monitored) -> None:
    """The training snapshots come from the data's first two years, so some features (year-on-year
    growth, months since a first event) are red in any later month: only --strict alerts on them."""
    done = CliRunner().invoke(
        app,
        ["monitor", "--as-of", str(monitored.unshifted), "--strict", "--out", str(monitored.out / "strict.html")],
        env=monitored.env,
    )
    assert done.exit_code == MONITOR_RED, done.output
    assert "feature(s) with PSI ≥ 0.25" in done.output


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
    assert len(feature_metrics) == len([k for k in metrics if k.startswith("missing_change.")]) > 100
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
