"""The monitoring report: one self-contained HTML page (plots embedded as base64 PNG).

Plots carry Chinese labels when a CJK font is installed (`make system-deps` brings WenQuanYi Micro
Hei; :func:`scoring.explain.fonts.cjk_font` finds it), feature names otherwise: the page must render
on a machine without the font.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, select_autoescape

from scoring.explain.fonts import cjk_font
from scoring.monitor.drift import Flag
from scoring.monitor.result import MonitorResult

COLOURS = {Flag.GREEN.value: "#2e7d32", Flag.AMBER.value: "#f9a825", Flag.RED.value: "#c62828"}
UNFLAGGED = "#9e9e9e"
TOP_FEATURES = 20


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _score_plot(result: MonitorResult, plt: Any, zh: bool) -> str:
    fig, ax = plt.subplots(figsize=(7, 3.5))
    edges = np.linspace(0, 1000, 51)
    for side, label in (("reference", "参考（训练）" if zh else "reference"), ("current", "当前" if zh else "current")):
        scores = result.scores.loc[result.scores["side"] == side, "score"]
        ax.hist(scores, bins=edges, density=True, histtype="step", linewidth=1.8, label=f"{label} (n={len(scores):,})")
    ax.set(xlabel="评分" if zh else "score", ylabel="density", title=f"score PSI {result.score_psi:.3f}")
    ax.legend()
    return _png(fig)


def _segment_plot(result: MonitorResult, plt: Any, zh: bool) -> str:
    seg = result.segments.dropna(subset=["psi"]).sort_values(["segment", "value"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 0.25 * len(seg) + 1.4), sharey=True)
    labels = [f"{r.segment}={r.value} (n={r.n_current})" for r in seg.itertuples()]
    left.barh(labels, seg["psi"].clip(upper=1.0), color=[COLOURS.get(f, UNFLAGGED) for f in seg["psi_flag"]])
    right.barh(labels, seg["shift_sd"].clip(-1, 1), color=[COLOURS.get(f, UNFLAGGED) for f in seg["shift_flag"]])
    limits = result.thresholds
    for x, style in ((limits.psi_amber, ":"), (limits.psi_red, "--")):
        left.axvline(x, color="black", linestyle=style, linewidth=1)
        for sign in (-1, 1):
            right.axvline(sign * x, color="black", linestyle=style, linewidth=1)
    left.invert_yaxis()
    left.set(xlabel="score PSI (capped at 1)", title="分段评分PSI" if zh else "score PSI by segment")
    right.set(xlabel="mean score shift (reference sd)", title="分段均值变化" if zh else "mean shift by segment")
    fig.suptitle("grey: too few enterprises to flag", fontsize=9)
    return _png(fig)


def _feature_plot(result: MonitorResult, plt: Any, zh: bool) -> str:
    compared = result.features[result.features["compared"].astype(bool)]
    head = compared.head(TOP_FEATURES).iloc[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(head) + 1.2))
    names = [f"{r.label_zh} ({r.feature})" if zh else r.feature for r in head.itertuples()]
    ax.barh(names, head["psi"].clip(upper=2.0), color=[COLOURS.get(f, UNFLAGGED) for f in head["psi_flag"]])
    for x, style in ((result.thresholds.psi_amber, ":"), (result.thresholds.psi_red, "--")):
        ax.axvline(x, color="black", linestyle=style, linewidth=1)
    ax.set(xlabel="PSI (capped at 2)", title=f"特征PSI前{len(head)}名" if zh else f"top {len(head)} features by PSI")
    return _png(fig)


def _migration_plot(result: MonitorResult, plt: Any, zh: bool) -> str:
    table = result.migration
    share = table.div(table.sum(axis=1).replace(0, 1), axis=0)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(share.to_numpy(), cmap="Blues", vmin=0, vmax=1)
    for i in range(len(table.index)):
        for j in range(len(table.columns)):
            ax.text(j, i, f"{table.iat[i, j]:,}\n{share.iat[i, j]:.0%}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(table.columns)), table.columns)
    ax.set_yticks(range(len(table.index)), table.index)
    ax.set(
        xlabel=f"{'当前等级' if zh else 'grade'} {result.as_of}",
        ylabel=f"{'参考等级' if zh else 'grade'} {result.migration_as_of}",
        title="等级迁移" if zh else "grade migration",
    )
    return _png(fig)


def _red_segment_plots(result: MonitorResult, plt: Any, zh: bool) -> list[tuple[str, str]]:
    out = []
    edges = np.linspace(0, 1000, 41)
    for row in result.flagged_segments(Flag.RED).itertuples():
        scores = result.scores[result.scores[row.segment].astype(str) == row.value]
        fig, ax = plt.subplots(figsize=(6, 3))
        for side in ("reference", "current"):
            s = scores.loc[scores["side"] == side, "score"]
            ax.hist(s, bins=edges, density=True, histtype="step", linewidth=1.8, label=f"{side} (n={len(s):,})")
        ax.set(xlabel="score", title=f"{row.segment}={row.value}: score PSI {row.psi:.3f}")
        ax.legend()
        out.append((f"{row.segment}={row.value}", _png(fig)))
    return out


def figures(result: MonitorResult) -> dict[str, Any]:
    """Every plot of the report as base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    font = cjk_font()
    style: dict[str, Any] = {"font.sans-serif": [font, "DejaVu Sans"]} if font else {}
    with matplotlib.rc_context(style):  # type: ignore[arg-type]
        zh = font is not None
        return {
            "score": _score_plot(result, plt, zh),
            "segments": _segment_plot(result, plt, zh),
            "features": _feature_plot(result, plt, zh),
            "migration": _migration_plot(result, plt, zh),
            "red_segments": _red_segment_plots(result, plt, zh),
        }


TEMPLATE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>模型监测 {{ r.model_name }} v{{ r.model_version }} — {{ r.as_of }}</title>
<style>
body { font-family: sans-serif; margin: 2em; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }
th { background: #f3f3f3; } td.text { text-align: left; }
.green { background: #e8f5e9; } .amber { background: #fff8e1; } .red { background: #ffebee; font-weight: bold; }
.banner { padding: 0.8em 1em; border-radius: 4px; margin: 1em 0; }
img { max-width: 100%; }
</style></head><body>
<h1>模型监测报告 · Monitoring report</h1>
<p>Model <b>{{ r.model_name }} v{{ r.model_version }}</b> ({{ alias }}), current snapshot <b>{{ r.as_of }}</b>
({{ "{:,}".format(r.n_current) }} enterprises) against
{% if r.reference_is_training %}the champion's training snapshots{% else %}the snapshot{% endif %}
{{ r.reference_as_of | join(", ") }} ({{ "{:,}".format(r.n_reference) }} enterprise-snapshots).
Flags: PSI amber from {{ t.psi_amber }}, red from {{ t.psi_red }}; missing rate amber from a change of
{{ "{:.0%}".format(t.missing_amber) }}, red from {{ "{:.0%}".format(t.missing_red) }}; a segment is flagged with at least
{{ t.min_segment_rows }} enterprises on both sides.</p>
<div class="banner {{ 'red' if r.alert else r.score_status.value }}">
{% if r.alert %}<b>ALERT</b>: {{ r.reasons | join("; ") }}
{% else %}No alert: the score is {{ r.score_status.value }}{% if not r.score_only %}, the features
{{ r.feature_status.value }}{% endif %}.{% endif %}
{% if r.score_only and r.feature_reasons %}<br>Red features (no alert with --score-only): {{ r.feature_reasons | join("; ") }}.{% endif %}
</div>
{% for n in r.notes %}<p><i>{{ n }}</i></p>{% endfor %}

<h2>评分分布 · Score distribution</h2>
<p>Score PSI <b>{{ "%.4f" | format(r.score_psi) }}</b>, mean shift <b>{{ "%+.3f" | format(r.score_shift) }}</b> reference
standard deviations (z {{ "%+.1f" | format(r.score_shift_z) }}): <span class="{{ r.score_flag.value }}">{{ r.score_flag.value }}</span>.
A segment's mean shift is flagged at the same thresholds read in standard deviations, once it is
{{ t.min_shift_z }} standard errors from zero.</p>
<img alt="score distribution" src="data:image/png;base64,{{ f.score }}">
<table><tr><th>grade</th><th>reference share</th><th>current share</th></tr>
{% for g, row in r.grade_shares.iterrows() %}<tr><td class="text">{{ g }}</td><td>{{ "%.1f%%" | format(100 * row.reference) }}</td>
<td>{{ "%.1f%%" | format(100 * row.current) }}</td></tr>{% endfor %}</table>

<h2>分段评分PSI · Score PSI by segment</h2>
<img alt="score PSI by segment" src="data:image/png;base64,{{ f.segments }}">
<table><tr><th>segment</th><th>value</th><th>n reference</th><th>n current</th><th>mean score reference</th>
<th>mean score current</th><th>PSI</th><th>mean shift (sd)</th><th>z</th><th>flag</th></tr>
{% for s in segments %}<tr class="{{ s.flag or '' }}"><td class="text">{{ s.segment }}</td><td class="text">{{ s.value }}</td>
<td>{{ s.n_reference }}</td><td>{{ s.n_current }}</td><td>{{ "%.1f" | format(s.mean_reference) }}</td>
<td>{{ "%.1f" | format(s.mean_current) }}</td><td class="{{ s.psi_flag or '' }}">{{ "%.4f" | format(s.psi) }}</td>
<td class="{{ s.shift_flag or '' }}">{{ "%+.3f" | format(s.shift_sd) }}</td><td>{{ "%+.1f" | format(s.shift_z) }}</td>
<td class="text">{{ s.flag or "too few" }}</td></tr>{% endfor %}</table>
{% for name, png in f.red_segments %}<h3>{{ name }}</h3>
<img alt="score distribution of {{ name }}" src="data:image/png;base64,{{ png }}">{% endfor %}

<h2>等级迁移 · Grade migration</h2>
<p>The same enterprises graded at {{ r.migration_as_of }} (rows) and at {{ r.as_of }} (columns).</p>
<img alt="grade migration" src="data:image/png;base64,{{ f.migration }}">
<table><tr><th>segment</th><th>value</th><th>n</th><th>mean score change</th><th>downgraded</th><th>upgraded</th></tr>
{% for m in moved %}<tr><td class="text">{{ m.segment }}</td><td class="text">{{ m.value }}</td><td>{{ m.n }}</td>
<td>{{ "%+.1f" | format(m.mean_score_change) }}</td><td>{{ "%.1f%%" | format(100 * m.downgraded) }}</td>
<td>{{ "%.1f%%" | format(100 * m.upgraded) }}</td></tr>{% endfor %}</table>

<h2>特征稳定性 · Feature stability</h2>
<p>PSI of each of the model's {{ r.features | length }} features (missing values in a bin of their own) and the
change of its missing rate. {% if r.score_only %}With --score-only these are diagnostics: the alert follows the
score.{% else %}A red one raises the alert, as a red score does.{% endif %} A feature is compared on the reference
snapshots whose window of it was complete (a window reaching before its source's first records is missing, not
partial); one missing in every reference snapshot is not compared ("—").</p>
<img alt="feature PSI" src="data:image/png;base64,{{ f.features }}">
<table><tr><th>feature</th><th>名称</th><th>PSI</th><th>flag</th><th>missing reference</th><th>missing current</th>
<th>change</th><th>flag</th></tr>
{% for x in features %}<tr><td class="text">{{ x.feature }}</td><td class="text">{{ x.label_zh }}</td>
{% if x.compared %}<td class="{{ x.psi_flag }}">{{ "%.4f" | format(x.psi) }}</td><td class="text {{ x.psi_flag }}">{{ x.psi_flag }}</td>
<td>{{ "%.1f%%" | format(100 * x.missing_reference) }}</td><td>{{ "%.1f%%" | format(100 * x.missing_current) }}</td>
<td class="{{ x.missing_flag }}">{{ "%+.1f" | format(100 * x.missing_change) }} pp</td>
<td class="text {{ x.missing_flag }}">{{ x.missing_flag }}</td>
{% else %}<td>—</td><td class="text">not compared</td><td>—</td><td>{{ "%.1f%%" | format(100 * x.missing_current) }}</td>
<td>—</td><td class="text">—</td>{% endif %}</tr>{% endfor %}</table>
</body></html>
"""


def render(result: MonitorResult, alias: str = "champion") -> str:
    """The report as HTML text."""
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    segments = result.segments.sort_values(["segment", "value"])
    return env.from_string(TEMPLATE).render(
        r=result,
        t=result.thresholds,
        f=figures(result),
        alias=alias,
        segments=[_row(s) for s in segments.to_dict("records")],
        moved=result.migration_segments.to_dict("records"),
        features=result.features.to_dict("records"),
    )


def _row(record: dict[str, Any]) -> dict[str, Any]:
    # pandas may give NaN for a segment with no flag; the template tests for a falsy value
    return {k: (None if k.endswith("flag") and isinstance(v, float) else v) for k, v in record.items()}


def write_report(result: MonitorResult, path: Path) -> Path:
    """Write the report to ``path`` (creating its folder); return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(result), encoding="utf-8")
    return path
