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
# # 03 Explain a decision
#
# What a regulator sees of a decision, read from the decision store (the audit log) rather than
# recomputed: the inputs with their labels and values, every TreeSHAP contribution and the base
# value, the reasons in Chinese, the policy steps of a pre-credit limit, the model versions, who
# asked under which consent, and the records that were excluded (信用修复) or disputed (异议).
# It also checks that the audit chain is intact. It only reads the store.
# Run it from the project folder (or set `SCORING_HOME`; `DECISION_ID` picks a decision).

# %%
import os

import matplotlib
import matplotlib.font_manager

matplotlib.use("Agg")  # no display needed: the figure is shown inline in Jupyter and saved here
import matplotlib.pyplot as plt
import pandas as pd

from scoring.settings import Settings
from scoring.store import DECISION_KINDS, engine_for, events, get_decision, verify_chain

settings = Settings()
engine = engine_for(settings.decision_url)

# %% [markdown]
# ## The audit chain
# Every decision, refusal, outcome and consent change is a row whose hash covers the row before it:
# a changed or deleted row shows up here (and in `scoring audit verify`).

# %%
chain = verify_chain(engine)
print(f"{chain.rows:,} rows, head at {chain.head_seq:,}: {'intact' if chain.intact else 'BROKEN'}")
assert chain.intact, chain.problems

# %% [markdown]
# ## Recent decisions

# %%
recent = events(engine, kinds=DECISION_KINDS, limit=20)
assert recent, "no decision in the store yet: make one through the API first"
pd.DataFrame(
    [
        {
            "decision_id": r["event_id"],
            "kind": r["kind"],
            "created_at": r["created_at"],
            "uscc": r["uscc"],
            "role": r["role"],
            "bank_id": r["bank_id"],
            "grade": r["payload"]["evaluation"]["grade"],
            "score": r["payload"]["evaluation"]["score"],
        }
        for r in recent
    ]
)

# %% [markdown]
# ## One decision in full
# The latest pre-credit decision when there is one, else the latest evaluation.

# %%
wanted = os.environ.get("DECISION_ID") or next(
    (r["event_id"] for r in recent if r["kind"] == "pre_credit"), recent[0]["event_id"]
)
stored = get_decision(engine, wanted)
assert stored is not None, f"no decision {wanted}"
p = stored["payload"]
ev = p["evaluation"]
print(f"{stored['kind']} {stored['event_id']} for {stored['uscc']} {p['name']}, features as of {p['as_of']}")
print(f"asked by a {stored['role']} key {stored['key_id']} (bank {stored['bank_id']}), consent {p.get('consent')}")
print(f"grade {ev['grade']} ({ev['grade_label_zh']}), score {ev['score']}, probability {ev['probability']:.4f}")
print(f"model {ev['model']['name']} v{ev['model']['version']} ({ev['model']['alias']})")
if ev["overrides"]:
    print("overrides:", ev["overrides"])

# %% [markdown]
# ### The SHAP waterfall of the score
# The base points plus every feature's points make the score (before clipping to 0–1000); negative
# points raise the risk. The ten largest are drawn, the rest summed.

# %%
# Chinese labels where a CJK font is installed (`make system-deps` brings one), feature names elsewhere;
# added by path, since matplotlib's font cache may predate the font
for font in ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"):
    if os.path.exists(font):
        matplotlib.font_manager.fontManager.addfont(font)
cjk = [f.name for f in matplotlib.font_manager.fontManager.ttflist if f.name in ("WenQuanYi Micro Hei", "Noto Sans CJK JP")]
if cjk:
    plt.rcParams["font.sans-serif"] = [cjk[0], "DejaVu Sans"]
labels = {i["feature"]: i["label_zh"] if cjk else i["feature"] for i in p["inputs"]}
values = {i["feature"]: i["value"] for i in p["inputs"]}
points = pd.Series(ev["shap_points"]).sort_values(key=abs, ascending=False)
top, rest = points.iloc[:10], points.iloc[10:].sum()
steps = [("base", ev["base_points"]), *top.items(), ("other features", rest)]
total = ev["base_points"] + points.sum()
assert abs(min(max(round(total), 0), 1000) - ev["score"]) <= 1, "the contributions add up to the score"
fig, ax = plt.subplots(figsize=(8, 5))
running, ends = 0.0, []
for i, (name, pts) in enumerate(steps):
    start = 0.0 if name == "base" else running
    ax.barh(i, pts, left=start, color="grey" if name == "base" else ("tab:red" if pts < 0 else "tab:green"))
    running = start + pts
    ends.append(running)
ax.set_xlim(min(ends) - 30, max(ends) + 30)  # around the score: the base bar runs in from the left
names = {"base": "基础分" if cjk else "base", "other features": "其他特征" if cjk else "other features"}
ax.set_yticks(range(len(steps)), [names.get(n, labels.get(n, n)) for n, _ in steps])
ax.invert_yaxis()
ax.axvline(total, color="black", linewidth=0.8)
ax.set_xlabel(f"score points (total {total:.0f})")
fig.tight_layout()
figures = settings.path(settings.var_dir) / "figures"
figures.mkdir(parents=True, exist_ok=True)
fig.savefig(figures / f"waterfall-{stored['event_id']}.png", dpi=100)
label_zh = {i["feature"]: i["label_zh"] for i in p["inputs"]}
pd.DataFrame(
    {"label_zh": [label_zh.get(n, n) for n in top.index], "value": [values.get(n) for n in top.index], "points": top}
)

# %% [markdown]
# ### Reasons, as the enterprise and the bank read them

# %%
pd.DataFrame(ev["reasons"])[["label_zh", "value", "points", "text_zh"]]

# %% [markdown]
# ### The pre-credit limit, step by step
# Each policy step with the limit before and after it, under the versioned policy stored with the decision.

# %%
pc = p.get("pre_credit")
if pc:
    print(
        f"limit {pc['pre_credit_limit']:,.0f} CNY, {pc['decision']} ({pc['decision_zh']}), "
        f"default probability {pc['default_probability']:.4f}, policy {pc['policy']['name']} v{pc['policy']['version']}"
    )
    assert pc["policy_steps"][-1]["after"] == pc["pre_credit_limit"]
    steps_table = pd.DataFrame(pc["policy_steps"])
else:
    steps_table = pd.DataFrame()
steps_table

# %% [markdown]
# ### Records that did not count, or were disputed
# A repaired penalty or list entry stops counting from its repair date; a disputed record is
# flagged on every decision made while the objection is open.

# %%
pd.DataFrame(p["excluded_records"] + p["disputed_records"])
