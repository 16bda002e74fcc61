"""The served explanations are TreeSHAP: the booster's contributions are the shap library's, and the
training runs log a SHAP summary plot of the test set with the catalog's Chinese labels."""

from __future__ import annotations

import duckdb
import matplotlib.text
import mlflow
import numpy as np
import pandas as pd
import pytest
import shap
from matplotlib.collections import PathCollection

from scoring.data.ingest import extract_date_of
from scoring.domain.models import AMOUNT, DEFAULT, EVALUATION, ModelSet
from scoring.domain.scorer import AmountScorer, Scorer
from scoring.explain.fonts import cjk_font
from scoring.explain.summary import summary_figure
from scoring.features.build import load_snapshot
from scoring.features.catalog import load_catalog
from scoring.registry.champions import Registry
from scoring.registry.versions import configure

MODELS = (EVALUATION, DEFAULT, AMOUNT)
# shap says its output for LightGBM binary models changed in 0.45; the tests read the array it gives
pytestmark = pytest.mark.filterwarnings("ignore:LightGBM binary classifier:UserWarning")


@pytest.fixture(scope="module")
def models(served) -> ModelSet:
    """The champions as the service loads them (explicit versions, serving threads)."""
    configure(served.settings)
    registry = Registry(policy_path=served.settings.model_spec_path("pre_credit_policy"))
    return registry.load_set(registry.champions())


@pytest.fixture(scope="module")
def rows(served) -> pd.DataFrame:
    """Enterprises of the serving snapshot, missing values and categories included."""
    catalog = load_catalog(served.settings.catalog_path)
    with duckdb.connect(str(served.settings.warehouse_path)) as con:
        snapshot = load_snapshot(con, catalog, as_of=extract_date_of(con))
    return snapshot.sample(400, random_state=0).reset_index(drop=True)


def _scorer(models: ModelSet, name: str) -> Scorer | AmountScorer:
    model = {EVALUATION: models.evaluation, DEFAULT: models.default, AMOUNT: models.amount}[name]
    assert model is not None, f"{name} is not served"
    return model.scorer


def _tree_explainer(scorer: Scorer | AmountScorer, x: np.ndarray) -> tuple[np.ndarray, float]:
    """(SHAP values, expected value) of shap's TreeExplainer on the raw margin."""
    explainer = shap.TreeExplainer(scorer.booster, feature_perturbation="tree_path_dependent", model_output="raw")
    values = np.asarray(explainer.shap_values(x))
    return values, float(np.ravel(explainer.expected_value)[0])


def _expected_from_trees(booster) -> float:
    """The model's mean raw output over its training data: each tree's leaf values weighted by the
    rows that reached them (what TreeSHAP's expected value is, read from the trees themselves)."""
    total = 0.0
    for tree in booster.dump_model()["tree_info"]:
        leaves, stack = [], [tree["tree_structure"]]
        while stack:
            node = stack.pop()
            if "leaf_value" in node:
                leaves.append((node["leaf_value"], node.get("leaf_count", 0)))
            else:
                stack += [node["left_child"], node["right_child"]]
        values, counts = np.array(leaves).T
        total += float(values @ counts / counts.sum()) if counts.sum() else float(values[0])
    return total


@pytest.mark.parametrize("name", MODELS)
def test_booster_contributions_are_the_shap_librarys_tree_shap(models, rows, name) -> None:
    scorer = _scorer(models, name)
    x = scorer.matrix(rows)
    assert np.isnan(x).any(), "the rows must exercise missing values"
    ours = np.asarray(scorer.booster.predict(x, pred_contrib=True))
    values, expected = _tree_explainer(scorer, x)
    assert values.shape == (len(x), len(scorer.config.features))
    np.testing.assert_allclose(ours[:, :-1], values, atol=1e-6)
    np.testing.assert_allclose(ours[:, -1], expected, atol=1e-6)
    # local accuracy: the expected value and the contributions add up to the raw margin
    margin = np.asarray(scorer.booster.predict(x, raw_score=True))
    np.testing.assert_allclose(expected + values.sum(axis=1), margin, atol=1e-6)
    assert expected == pytest.approx(_expected_from_trees(scorer.booster), abs=1e-6)
    # a feature the trees never split on contributes nothing
    used = np.asarray(scorer.booster.feature_importance("split")) > 0
    assert (values[:, ~used] == 0).all()


@pytest.mark.parametrize("name", [EVALUATION, DEFAULT])
def test_the_served_points_are_tree_shap_in_score_points(models, rows, name) -> None:
    scorer = _scorer(models, name)
    assert isinstance(scorer, Scorer)
    x = scorer.matrix(rows)
    values, expected = _tree_explainer(scorer, x)
    c, s = scorer.config.calibration, scorer.config.score
    prob, score, _, _, points, base = scorer.explained(x)
    np.testing.assert_allclose(points, -s.factor * c.slope * values, atol=1e-6)
    np.testing.assert_allclose(base, s.offset - s.factor * (c.intercept + c.slope * expected), atol=1e-6)
    logit = c.intercept + c.slope * (expected + values.sum(axis=1))
    np.testing.assert_allclose(prob, 1 / (1 + np.exp(-logit)), atol=1e-9)
    np.testing.assert_array_equal(score, scorer.score_from_logit(logit))
    contributions, contribution_base = scorer.contributions(x)
    np.testing.assert_allclose(contributions, points, atol=1e-9)
    np.testing.assert_allclose(contribution_base, base, atol=1e-9)


def test_the_served_amount_explanation_is_tree_shap_of_the_log_amount(models, rows) -> None:
    scorer = _scorer(models, AMOUNT)
    assert isinstance(scorer, AmountScorer)
    x = scorer.matrix(rows)
    values, expected = _tree_explainer(scorer, x)
    amount, contributions, base = scorer.explained(x)
    np.testing.assert_allclose(contributions, values, atol=1e-6)
    np.testing.assert_allclose(base, expected, atol=1e-6)
    np.testing.assert_allclose(np.log(amount), expected + values.sum(axis=1), atol=1e-6)
    np.testing.assert_allclose(amount, scorer.amount(x), rtol=1e-9)


def test_every_training_run_logs_a_shap_summary_plot(county, trained, pre_credit_trained) -> None:
    configure(county.settings)
    client = mlflow.MlflowClient()
    for result in (trained, pre_credit_trained.default, pre_credit_trained.amount):
        paths = {a.path for a in client.list_artifacts(result.run_id, "plots")}
        assert "plots/shap_summary.png" in paths, (result.model_name, sorted(paths))
        local = mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path="plots/shap_summary.png")
        with open(local, "rb") as f:
            png = f.read()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20_000, result.model_name


def test_the_summary_plot_labels_features_in_chinese(models, rows) -> None:
    scorer = _scorer(models, EVALUATION)
    assert isinstance(scorer, Scorer)
    config = scorer.config
    x = scorer.matrix(rows)
    contrib = np.asarray(scorer.booster.predict(x, pred_contrib=True))
    fig = summary_figure(contrib, x, names=config.features, labels_zh=config.labels_zh, title="test", max_display=10)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]  # from the bottom up
    assert len(labels) == 10
    top = config.features[int(np.abs(contrib[:, :-1]).mean(axis=0).argmax())]
    font = cjk_font()
    if font is None:  # no CJK font installed: feature names, never boxes for missing glyphs
        assert labels[-1] == top
        return
    assert labels[-1] == f"{config.labels_zh[top]} ({top})"
    assert labels[0] == f"其余{len(config.features) - 9}个特征之和"
    assert all(font in t.get_fontfamily() for t in fig.findobj(matplotlib.text.Text) if t.get_text())


def test_the_summary_plot_draws_a_sample_and_leaves_the_global_generator_alone(models, rows) -> None:
    scorer = _scorer(models, EVALUATION)
    config = scorer.config
    x = scorer.matrix(pd.concat([rows] * 3, ignore_index=True))  # 1,200 rows
    contrib = np.asarray(scorer.booster.predict(x, pred_contrib=True))
    before = np.random.get_state()
    fig = summary_figure(
        contrib, x, names=config.features, labels_zh=config.labels_zh, title="test", max_display=10, rows=500
    )
    after = np.random.get_state()
    assert after[2] == before[2] and (after[1] == before[1]).all()  # the beeswarm's jitter is its own
    points = [len(c.get_offsets()) for c in fig.axes[0].collections if isinstance(c, PathCollection)]
    assert sum(points) == 500 * 10  # each of the 10 rows of the plot draws the 500 sampled enterprises
