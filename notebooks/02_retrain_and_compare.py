# ---
# jupyter:
#   jupytext:
#     formats: py:percent,ipynb
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 Retrain and compare
#
# What `scoring retrain` does, step by step, for the credit evaluation (公共信用综合评价): train a
# challenger on the newest data, put it next to the champion in MLflow, and run the promotion gate on
# the same current test data for both. A training run never replaces the served model by itself:
# only the gate (or a forced promotion with a recorded reason) moves the `champion` alias.
# Run it from the project folder (or set `SCORING_HOME`); it trains one model and registers it.

# %%
import pandas as pd
from mlflow import MlflowClient

from scoring.registry.versions import configure
from scoring.settings import Settings
from scoring.training.promote import evaluate_gate, promote
from scoring.training.train import train_evaluation

settings = Settings()
client: MlflowClient = configure(settings)
name = settings.model_name
print(f"MLflow store {settings.tracking_uri}")

# %% [markdown]
# ## The champion being served
# A first training makes one; afterwards each training adds a challenger.

# %%
try:
    champion = client.get_model_version_by_alias(name, settings.model_alias)
except Exception:
    champion = None
if champion is None:
    first = train_evaluation(settings)
    print(f"no champion yet: trained {name} v{first.version}, which became {first.alias}")
    champion = client.get_model_version_by_alias(name, settings.model_alias)
print(f"champion: {name} v{champion.version} (run {champion.run_id})")

# %% [markdown]
# ## Train a challenger
# Out of time, as the champion was: earlier as-of dates for training, the latest complete 12-month
# window for the test. The run logs its validation report and model card to MLflow.

# %%
result = train_evaluation(settings)
assert result.alias == settings.challenger_alias, "a second version must not become champion by itself"
print(f"challenger: {name} v{result.version} (run {result.run_id}), tested at {result.test_as_of}")
result.grades

# %% [markdown]
# ## Champion and challenger side by side, from MLflow
# The test figures each run logged (`test_*` metrics) and its lineage tags.

# %%
runs = {"champion": champion.run_id, "challenger": result.run_id}
side = pd.DataFrame(
    {
        role: {k: v for k, v in client.get_run(run_id).data.metrics.items() if k.startswith("test_")}
        for role, run_id in runs.items()
    }
)
side["change"] = side["challenger"] - side["champion"]
assert "test_auc" in side.index
side

# %%
pd.DataFrame(
    {
        role: {k: v for k, v in client.get_run(run_id).data.tags.items() if k.startswith("lineage.")}
        for role, run_id in runs.items()
    }
)

# %% [markdown]
# ## The promotion gate
# Both versions scored on the same current test data: AUC not below the champion's, bad rate rising
# from A to D, score PSI against the champion below 0.1. The figures are tagged on the challenger.

# %%
gate = evaluate_gate(settings, name)
print(f"gate for {name} v{gate.challenger} against v{gate.champion} on {gate.data}")
pd.DataFrame({"figure": pd.Series(gate.figures)}).join(pd.DataFrame({"passed": pd.Series(gate.checks)}), how="outer")

# %% [markdown]
# ## Promote through the gate
# `promote` moves `champion` only when every check passes; a forced promotion needs a reason, which is
# recorded with the user. The service picks up the new champion without a restart.

# %%
gate, moved = promote(settings, name)
now = client.get_model_version_by_alias(name, settings.model_alias)
print(f"gate {'passed' if gate.passed else 'failed'}; champion is now v{now.version}")
assert moved == gate.passed and (str(now.version) == str(gate.challenger)) == moved
{k: v for k, v in client.get_model_version(name, gate.challenger).tags.items() if k.startswith("gate")}
