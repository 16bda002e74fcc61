"""What the console's pages show: values as a person reads them, SHAP waterfalls, rows, headings, charts."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from pathlib import Path
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from scoring.data.schema import TABLES
from scoring.serve.refusals import ROLE_ZH
from scoring.store import DECISION_KINDS, ApiKey, Role

KIND_ZH = {"evaluation": "公共信用综合评价", "pre_credit": "信易贷预授信"}
TABLE_ZH = {name: table.label_zh for name, table in TABLES.items()}
PURPOSE_ZH = {"pre_credit": "信易贷预授信", "evaluation": "查询公共信用综合评价"}
BEIJING = dt.timezone(dt.timedelta(hours=8), "北京时间")  # the users' clock (China keeps no summer time)
TEMPLATES = Jinja2Templates(directory=Path(__file__).resolve().parents[1] / "templates")


def _value(v: Any) -> str:
    """A feature value as a person reads it."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "缺失"
    if isinstance(v, bool):
        return "是" if v else "否"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}" if v != int(v) else f"{int(v)}"
    return str(v)


TEMPLATES.env.filters["value"] = _value
TEMPLATES.env.filters["pct"] = lambda x: "" if x is None else f"{x:.0%}" if x >= 0.1 else f"{x:.1%}"
TEMPLATES.env.filters["yuan"] = lambda x: "" if x is None else f"{x / 10000:,.0f}万元" if x >= 10000 else f"{x:,.0f}元"


def waterfall(
    base: float, points: dict[str, float], labels: dict[str, tuple[str, Any]], *, top: int = 12
) -> dict[str, Any]:
    """The geometry of a SHAP waterfall in score points: base, the largest contributions, the rest, the total.

    Drawn as SVG by the template (no JavaScript, nothing to build). ``labels`` maps a feature to
    its Chinese label and the enterprise's value. Bars run from the running total before a
    feature to the total after it; the last bar's end is base + every contribution.
    """
    ranked = sorted(points.items(), key=lambda kv: -abs(kv[1]))
    shown, rest = ranked[:top], ranked[top:]
    steps: list[dict[str, Any]] = []
    total = base
    for name, p in shown:
        label, value = labels.get(name, (name, None))
        steps.append({"feature": name, "label": label, "value": _value(value), "points": p, "start": total})
        total += p
    if rest:
        p = sum(v for _, v in rest)
        steps.append({"feature": "", "label": f"其余{len(rest)}项", "value": "", "points": p, "start": total})
        total += p
    lo = min([base, total, *(s["start"] for s in steps), *(s["start"] + s["points"] for s in steps)])
    hi = max([base, total, *(s["start"] for s in steps), *(s["start"] + s["points"] for s in steps)])
    span = (hi - lo) or 1.0
    width, left, row = 420.0, 330.0, 24

    def x(v: float) -> float:
        return round(left + (v - lo) / span * width, 1)

    for i, s in enumerate(steps):
        a, b = x(s["start"]), x(s["start"] + s["points"])
        s |= {"x": min(a, b), "w": max(abs(b - a), 1.0), "y": 30 + i * row, "up": s["points"] >= 0}
    return {
        "base": base,
        "total": total,
        "steps": steps,
        "base_x": x(base),
        "total_x": x(total),
        "height": 30 + len(steps) * row + 30,
        "width": left + width + 90,
        "left": left,
    }


def page(request: Request, template: str, key: ApiKey | None, status: int = 200, **context: Any) -> HTMLResponse:
    """A console page, never cached, with the signed-in key and its role in Chinese."""
    return no_store(
        TEMPLATES.TemplateResponse(
            request,
            template,
            {"key": key, "role_zh": ROLE_ZH.get(key.role) if key else "", **context},
            status_code=status,
        )
    )


def safe_next(target: str) -> str:
    """Only a console path: a sign-in link cannot send the browser elsewhere."""
    return (
        target if target.startswith("/console/") and "//" not in target and "\\" not in target else "/console/decisions"
    )


def as_uuid(text: str) -> str | None:
    """The decision id as stored (lower case, hyphenated), or None when ``text`` is not a UUID."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


_R = TypeVar("_R", bound=Response)


def no_store(response: _R) -> _R:
    """Decisions and keys stay out of shared and browser caches."""
    response.headers["Cache-Control"] = "no-store"
    return response


def beijing_time(utc_text: str) -> str:
    """An audit time (UTC ISO text) on the users' clock."""
    return dt.datetime.fromisoformat(utc_text).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def kinds_for(key: ApiKey) -> tuple[str, ...]:
    return DECISION_KINDS if key.role == Role.REGULATOR else ("evaluation",)


def listed(row: dict[str, Any]) -> dict[str, Any]:
    """A row of the decision search (``decision_index``) as the tables show it."""
    return {
        **row,
        "decision_id": row["event_id"],
        "kind_zh": KIND_ZH.get(row["kind"], row["kind"]),
        "created_at": beijing_time(str(row["created_at"])),
        "bank_id": row["bank_id"] or "",
        "limit": row["pre_credit_limit"],
        "decision_zh": row["decision_zh"] or "",
        "model": row["model"] or "",
    }


def _head(stored: dict[str, Any]) -> dict[str, Any]:
    """The heading figures of one stored decision."""
    p = stored["payload"]
    return {
        "decision_id": stored["event_id"],
        "kind_zh": KIND_ZH.get(stored["kind"], stored["kind"]),
        "created_at": beijing_time(str(stored["created_at"])),
        "uscc": stored["uscc"],
        "name": p.get("name", ""),
    }


def decision_view(key: ApiKey, stored: dict[str, Any]) -> dict[str, Any]:
    p = stored["payload"]
    labels = {i["feature"]: (i["label_zh"], i["value"]) for i in p["inputs"]}
    ev, pc = p["evaluation"], p.get("pre_credit")
    charts = [("公共信用综合评价：各项特征对评分的贡献（分）", waterfall(ev["base_points"], ev["shap_points"], labels))]
    if pc:
        dm = pc["default_model"]
        charts.append(
            ("违约模型：各项特征对违约风险评分的贡献（分）", waterfall(dm["base_points"], dm["shap_points"], labels))
        )
    return {
        "d": _head(stored),
        "stored": stored,
        "p": p,
        "ev": ev,
        "pc": pc,
        "charts": charts,
        "excluded": p.get("excluded_records", []) if key.role == Role.REGULATOR else None,
        "disputed": p.get("disputed_records", []),
        "table_zh": TABLE_ZH,
        "requester_zh": ROLE_ZH.get(Role(stored["role"]), stored["role"]) if stored["role"] else "",
        "purpose_zh": PURPOSE_ZH,
    }


def history_chart(history: Any) -> dict[str, Any] | None:
    """A line of the score over the snapshot dates (SVG points), with the grade bands' floors."""
    if len(history) < 1:
        return None
    scores = [int(s) for s in history["score"]]
    width, height, pad = 640.0, 180.0, 30.0
    lo, hi = 0.0, 1000.0
    n = len(scores)

    def xy(i: int, s: float) -> tuple[float, float]:
        x = pad + (i / max(n - 1, 1)) * (width - 2 * pad)
        return round(x, 1), round(height - pad - (s - lo) / (hi - lo) * (height - 2 * pad), 1)

    pts = [xy(i, s) for i, s in enumerate(scores)]
    return {
        "points": " ".join(f"{x},{y}" for x, y in pts),
        "dots": [
            {"x": x, "y": y, "score": s, "grade": g, "as_of": str(d)}
            for (x, y), s, g, d in zip(pts, scores, history["grade"], history["as_of"], strict=True)
        ],
        "width": width,
        "height": height,
    }
