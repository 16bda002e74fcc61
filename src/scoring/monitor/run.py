"""One monitoring run: the snapshot at an as-of date against the champion's training population.

The champion (``settings.model_alias`` of ``settings.model_name``) says in its lineage which
snapshots it was trained on (``train_as_of``). Those snapshots, scored by the champion's own scorer,
are the reference; the snapshot at the as-of date, scored the same way, is the current population.
Scores and grades are therefore exactly those the service gives (overrides included).

The alert (``MonitorResult.alert``) is raised by any red flag: the score's PSI or mean shift,
overall or in a segment large enough to flag, a feature's PSI or the change of its missing rate.
A segment's score catches a shift in one industry that the whole population's score averages
away; a feature's flag catches a change of the data (a source that stopped, a definition that
moved) before the score shows it. ``score_only`` is the rule of the time when a window reaching
before its source's first records was a partial count (the first two years of a platform's data gave
year-on-year growths a PSI above 1 in every later month): the score's flags alone alert, the
features' are diagnostics. It still serves a champion trained on such snapshots, until it is retrained.

A feature is compared on the reference snapshots whose window of it was complete: a 24-month count
built 18 months into the data is missing in that snapshot (``scoring.features.build``), so its
missing rate there says nothing about the population. A feature missing in every reference
snapshot is reported as not compared; the champion never saw a value of it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scoring.errors import ScoringError
from scoring.monitor.drift import (
    Flag,
    Thresholds,
    feature_drift,
    mean_shift,
    migration_by_segment,
    migration_matrix,
    psi,
    segment_psi,
)
from scoring.monitor.report import write_report
from scoring.monitor.result import MonitorResult
from scoring.settings import Settings

log = logging.getLogger(__name__)

SEGMENTS = ("industry", "size_class")  # categorical catalog features every snapshot carries
MAX_REFERENCE_ROWS = 1_000_000  # above this the reference is a sample of enterprises (a city x 12 snapshots)


class MonitorError(ScoringError, RuntimeError):
    """Monitoring cannot run: no champion, no data at that date, a champion without lineage, ..."""

    code = "monitor_failed"
    status = None
    title_zh = "无法运行监测"


def _champion(settings: Settings) -> Any:
    """The champion's loaded version (scorer and lineage), or a MonitorError saying what to run."""
    import mlflow

    from scoring.registry.versions import configure, load_version

    client = configure(settings)
    try:
        mv = client.get_model_version_by_alias(settings.model_name, settings.model_alias)
    except mlflow.exceptions.MlflowException as exc:
        raise MonitorError(
            f"no {settings.model_alias!r} version of {settings.model_name} in {settings.tracking_uri}: "
            "run `scoring train` first"
        ) from exc
    return load_version(settings.model_name, str(mv.version), alias=settings.model_alias)


def _dates(values: Any) -> list[dt.date]:
    if isinstance(values, str):  # a lineage tag written as text
        values = json.loads(values.replace("'", '"')) if values.startswith("[") else values.split(",")
    return sorted(dt.date.fromisoformat(str(v).strip()) for v in values)


def _load(con: Any, columns: list[str], dates: list[dt.date], *, sample: float | None = None) -> pd.DataFrame:
    """The stored snapshots at ``dates`` (only ``columns``); with ``sample`` the enterprises whose
    hashed code falls in that share, the same enterprises at every date (so grades still pair up)."""
    from scoring.features.build import SNAPSHOT_TABLE

    names = ", ".join(f'"{c}"' for c in ["uscc", "as_of", *columns])
    where = "as_of IN (SELECT unnest(?))"
    params: list[Any] = [dates]
    if sample is not None:
        where += " AND hash(uscc) % 1000000 < ?"
        params.append(int(sample * 1_000_000))
    return con.execute(
        f"SELECT {names} FROM {SNAPSHOT_TABLE} WHERE {where} ORDER BY as_of, uscc",  # nosec B608 # stored column names
        params,
    ).df()


def compute(
    settings: Settings,
    *,
    as_of: dt.date,
    reference_as_of: dt.date | None = None,
    thresholds: Thresholds | None = None,
    segments: tuple[str, ...] = SEGMENTS,
    score_only: bool = False,
    max_reference_rows: int = MAX_REFERENCE_ROWS,
) -> MonitorResult:
    """Compare the snapshot at ``as_of`` with the champion's training snapshots (or the one at
    ``reference_as_of``), both scored by the champion.

    Reads the feature snapshots at those dates, building (as ``scoring features`` would) any that
    is missing or was built from other data or another catalog: a snapshot reads only records
    dated before its date, so a late build gives what an on-time one would have. The migration
    pairs the enterprises of the latest reference date with those at ``as_of``. Every red flag
    raises the alert, the score's only with ``score_only``.
    """
    from scoring.domain.scorer import Scorer

    limits = thresholds or Thresholds()
    champion = _champion(settings)
    scorer = champion.scorer
    assert isinstance(scorer, Scorer)
    reference = _reference_dates(champion, as_of=as_of, reference_as_of=reference_as_of)
    features = list(scorer.config.features)
    order = [g.grade for g in sorted(scorer.config.grades, key=lambda g: -g.min_score)]
    read = _read(settings, champion, as_of=as_of, reference=reference, segments=segments, limit=max_reference_rows)
    ref_frame, cur_frame, kept = read.reference, read.current, read.segments
    decided = scorer.decide(scorer.matrix(ref_frame))
    ref_frame["score"], ref_frame["grade"] = decided["score"].to_numpy(), decided["grade"].to_numpy()
    if read.stored is not None and len(read.stored) == len(cur_frame):  # graded by `scoring score`
        graded = cur_frame[["uscc"]].merge(read.stored, on="uscc", how="left")
        cur_frame["score"], cur_frame["grade"] = graded["score"].to_numpy(), graded["grade"].to_numpy()
    else:
        decided = scorer.decide(scorer.matrix(cur_frame))
        cur_frame["score"], cur_frame["grade"] = decided["score"].to_numpy(), decided["grade"].to_numpy()

    score_psi = psi(ref_frame["score"], cur_frame["score"], bins=limits.bins, epsilon=limits.epsilon)
    score_shift, score_shift_z = mean_shift(ref_frame["score"], cur_frame["score"])
    categorical = set(scorer.config.categories)
    drift = feature_drift(
        ref_frame,
        cur_frame,
        features,
        categorical=categorical,
        labels_zh=scorer.config.labels_zh,
        thresholds=limits,
        comparable=read.comparable,
    )
    by_segment = segment_psi(ref_frame, cur_frame, segments=kept, value="score", thresholds=limits)
    latest = reference[-1]
    migration, moved = _migration(ref_frame, cur_frame, latest=latest, order=order, segments=kept)
    result = MonitorResult(
        as_of=as_of,
        reference_as_of=reference,
        migration_as_of=latest,
        reference_is_training=reference_as_of is None,
        model_name=champion.name,
        model_version=champion.version,
        model_run_id=champion.run_id,
        thresholds=limits,
        score_psi=score_psi,
        score_shift=score_shift,
        score_shift_z=score_shift_z,
        features=drift,
        segments=by_segment,
        migration=migration,
        migration_segments=moved,
        grade_shares=_grade_shares(ref_frame, cur_frame, order),
        scores=pd.concat(
            [ref_frame[["score", *kept]].assign(side="reference"), cur_frame[["score", *kept]].assign(side="current")],
            ignore_index=True,
        ),
        n_reference=len(ref_frame),
        n_current=len(cur_frame),
        reference_sampled=read.sample is not None,
        built=read.built,
        data_matches_training=read.matches,
        score_only=score_only,
        notes=_notes(read, drift),
    )
    log.info("monitor %s: score PSI %.4f, %s", as_of, score_psi, result.counts())
    return result


def _grade_shares(reference: pd.DataFrame, current: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """The share of each grade on both sides, in grade order."""
    return pd.DataFrame(
        {
            side: frame["grade"].value_counts(normalize=True).reindex(order, fill_value=0.0)
            for side, frame in (("reference", reference), ("current", current))
        }
    )


def _reference_dates(champion: Any, *, as_of: dt.date, reference_as_of: dt.date | None) -> list[dt.date]:
    """``reference_as_of`` when given, else the champion's training as-of dates; all before ``as_of``."""
    if reference_as_of is not None:
        reference = [reference_as_of]
    elif champion.lineage.get("train_as_of"):
        reference = _dates(champion.lineage["train_as_of"])
    else:
        raise MonitorError(
            f"{champion.name} v{champion.version} records no training as-of dates (lineage train_as_of): "
            "give --reference-as-of"
        )
    if reference[-1] >= as_of:
        raise MonitorError(f"the reference ({reference[-1]}) must come before --as-of {as_of}")
    return reference


@dataclass
class _Populations:
    """The two populations as read from the warehouse, before scoring."""

    reference: pd.DataFrame
    current: pd.DataFrame
    segments: list[str]  # the segment columns the snapshots carry
    built: list[dt.date]  # snapshots built for this run (missing or stale)
    matches: bool  # the warehouse is the one the champion was trained on
    sample: float | None  # the share of enterprises in the reference, when it is a sample
    n_total: int  # enterprise-snapshots at the reference dates
    comparable: dict[str, np.ndarray]  # feature -> the reference rows whose window of it was complete
    same_catalog: bool  # the catalog is the one the champion was trained on
    stored: pd.DataFrame | None = None  # the grades `scoring score` stored at as_of, when current


def _read(
    settings: Settings,
    champion: Any,
    *,
    as_of: dt.date,
    reference: list[dt.date],
    segments: tuple[str, ...],
    limit: int,
) -> _Populations:
    """The champion's features and the segments at the reference dates and at ``as_of``, building the
    snapshots that are missing or stale; the reference is a sample of enterprises above ``limit`` rows."""
    from scoring.batch.stored import current_grades
    from scoring.data.ingest import IngestError, connect, data_fingerprint, extract_date_of
    from scoring.features.build import SNAPSHOT_TABLE, ensure_snapshots, source_starts
    from scoring.features.catalog import catalog_hash, load_catalog

    catalog = load_catalog(settings.catalog_path)
    features = list(champion.scorer.config.features)
    try:
        with connect(settings.warehouse_path, memory_limit=settings.duckdb_memory_limit) as con:
            extract = extract_date_of(con)
            if as_of > extract:
                raise MonitorError(
                    f"--as-of {as_of} is after the data's extraction date {extract}: the warehouse holds no "
                    "records after it (run `scoring ingest` with newer files)"
                )
            built = ensure_snapshots(con, catalog, as_of_dates=[*reference, as_of])
            stored = {r[0] for r in con.execute(f"DESCRIBE {SNAPSHOT_TABLE}").fetchall()}
            absent = [c for c in features if c not in stored]
            if absent:
                raise MonitorError(
                    f"the feature catalog no longer has {', '.join(absent)}, which {champion.name} "
                    f"v{champion.version} uses: monitor with the catalog it was trained on"
                )
            kept = [s for s in segments if s in stored]
            columns = list(dict.fromkeys([*features, *kept]))
            total = con.execute(
                f"SELECT count(*) FROM {SNAPSHOT_TABLE} "  # nosec B608 # SNAPSHOT_TABLE
                "WHERE as_of IN (SELECT unnest(?))",
                [reference],
            ).fetchone()
            n_total = int(total[0]) if total else 0
            sample = limit / n_total if n_total > limit else None
            ref_frame = _load(con, columns, reference, sample=sample)
            cur_frame = _load(con, columns, [as_of])
            graded = current_grades(con, version=champion.version, as_of=as_of)
            matches = champion.lineage.get("data_fingerprint") == data_fingerprint(con)
            starts = source_starts(con, catalog, as_of_dates=[*reference, as_of])
    except IngestError as exc:
        raise MonitorError(str(exc)) from exc
    if cur_frame.empty:
        raise MonitorError(f"no enterprise is in the snapshot at {as_of}: is it before the data starts?")
    if ref_frame.empty:
        raise MonitorError(f"the reference snapshots at {', '.join(map(str, reference))} hold no enterprise")
    return _Populations(
        reference=ref_frame,
        current=cur_frame,
        segments=kept,
        built=built,
        matches=matches,
        sample=sample,
        n_total=n_total,
        comparable=_comparable(catalog, starts, ref_frame, features, reference=reference, as_of=as_of),
        same_catalog=champion.lineage.get("catalog_hash") in (None, catalog_hash(settings.catalog_path)),
        stored=graded,
    )


def _comparable(
    catalog: Any,
    starts: dict[dt.date, dict[str, dt.date | None]],
    frame: pd.DataFrame,
    features: list[str],
    *,
    reference: list[dt.date],
    as_of: dt.date,
) -> dict[str, np.ndarray]:
    """For each feature whose window reached before its source's first records at some reference date
    (or at ``as_of``), the reference rows at the other dates (none when ``as_of`` is one of them)."""
    from scoring.features.build import truncated_features

    truncated = {d: truncated_features(catalog, starts[d], as_of=d) for d in [*reference, as_of]}
    out = {}
    for name in features:
        if not any(name in truncated[d] for d in truncated):
            continue
        kept = [] if name in truncated[as_of] else [pd.Timestamp(d) for d in reference if name not in truncated[d]]
        out[name] = frame["as_of"].isin(kept).to_numpy()
    return out


def _migration(
    ref_frame: pd.DataFrame, cur_frame: pd.DataFrame, *, latest: dt.date, order: list[str], segments: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(grade migration matrix, migration by segment) of the enterprises graded at ``latest`` and now."""
    base = ref_frame[ref_frame["as_of"] == pd.Timestamp(latest)].set_index("uscc")
    now = cur_frame.set_index("uscc")
    migration = migration_matrix(base["grade"], now["grade"], order)
    paired = base[["score", "grade", *segments]].merge(
        now[["score", "grade"]], left_index=True, right_index=True, how="inner", suffixes=("_reference", "_current")
    )
    moved = pd.concat(
        [
            migration_by_segment(paired, segment=s, order=order).rename(columns={s: "value"}).assign(segment=s)
            for s in segments
        ]
        or [pd.DataFrame(columns=["value", "n", "mean_score_change", "downgraded", "upgraded", "segment"])],
        ignore_index=True,
    )
    return migration, moved


def _notes(read: _Populations, drift: pd.DataFrame) -> list[str]:
    """What a reader of the report should know about how the populations were read."""
    notes = []
    if not read.same_catalog:
        notes.append(
            "the feature catalog changed since the champion was trained: its reference snapshots are built "
            "from today's definitions, which may not be those it was trained on (train a new version)"
        )
    partial = sorted(n for n, mask in read.comparable.items() if mask.any() and not mask.all())
    if partial:
        notes.append(
            f"{len(partial)} feature(s) compared on the reference snapshots whose window was complete only: "
            + ", ".join(partial)
        )
    absent = sorted(drift.loc[~drift["compared"].astype(bool), "feature"])
    if absent:
        notes.append(
            f"{len(absent)} feature(s) not compared: their window reached before their source's first records "
            "in every reference snapshot, where they are missing: " + ", ".join(absent)
        )
    if read.sample is not None:
        notes.append(
            f"the reference is a sample of {len(read.reference):,} of its {read.n_total:,} enterprise-snapshots"
        )
    if not read.matches:
        notes.append(
            "the warehouse changed since the champion was trained: its reference snapshots are rebuilt from "
            "today's data, which late records dated before them may have changed"
        )
    if read.built:
        notes.append(f"snapshots built for this run (missing or stale): {', '.join(map(str, read.built))}")
    return notes


def log_run(settings: Settings, result: MonitorResult, report: Path) -> str:
    """Log the figures to the monitoring experiment: metrics per feature and segment, the flag
    counts, tags naming the champion and the dates, the HTML report and the tables; return the run id."""
    import mlflow

    from scoring.registry.versions import configure, ensure_experiment

    configure(settings)
    experiment = ensure_experiment(settings, settings.monitoring_experiment)
    metrics: dict[str, float] = {
        "score_psi": result.score_psi,
        "score_shift_sd": result.score_shift,
        "alert": float(result.alert),
    }
    metrics.update({k: float(v) for k, v in result.counts().items()})
    metrics.update({"n_reference": float(result.n_reference), "n_current": float(result.n_current)})
    for row in result.features[result.features["compared"].astype(bool)].itertuples():
        metrics[f"feature_psi.{row.feature}"] = float(row.psi)
        metrics[f"missing_change.{row.feature}"] = float(row.missing_change)
    for row in result.segments.dropna(subset=["psi"]).itertuples():
        metrics[f"segment_psi.{row.segment}.{_key(row.value)}"] = float(row.psi)
        metrics[f"segment_shift_sd.{row.segment}.{_key(row.value)}"] = float(row.shift_sd)
    for grade, row in result.grade_shares.iterrows():
        metrics[f"grade_share_{grade}"] = float(row["current"])
    red = result.flagged_segments(Flag.RED)
    tags = {
        "model_name": result.model_name,
        "champion_version": result.model_version,
        "champion_run_id": result.model_run_id or "",
        "as_of": str(result.as_of),
        "reference_as_of": ",".join(map(str, result.reference_as_of)),
        "reference": "champion training snapshots" if result.reference_is_training else "explicit date",
        "migration_as_of": str(result.migration_as_of),
        "score_status": result.score_status.value,
        "feature_status": result.feature_status.value,
        "alert": str(result.alert).lower(),
        "alert_on": "score" if result.score_only else "score and features",
        "red_features": ", ".join(result.features.loc[result.features["psi_flag"] == Flag.RED.value, "feature"]),
        "not_compared": ", ".join(result.not_compared),
        "red_segments": ", ".join(f"{r.segment}={r.value}" for r in red.itertuples()),
    }
    with mlflow.start_run(experiment_id=experiment, run_name=f"monitor-{result.as_of}") as run:
        mlflow.set_tags(tags)
        mlflow.log_params(
            {
                "psi_amber": result.thresholds.psi_amber,
                "psi_red": result.thresholds.psi_red,
                "bins": result.thresholds.bins,
                "min_segment_rows": result.thresholds.min_segment_rows,
            }
        )
        mlflow.log_metrics(metrics)
        mlflow.log_artifact(str(report), "report")
        mlflow.log_text(result.features.to_csv(index=False), "tables/features.csv")
        mlflow.log_text(result.segments.to_csv(index=False), "tables/segments.csv")
        mlflow.log_text(result.migration.to_csv(), "tables/grade_migration.csv")
        mlflow.log_text(result.migration_segments.to_csv(index=False), "tables/migration_by_segment.csv")
    return run.info.run_id


def _key(value: str) -> str:
    """A segment value as an MLflow metric name part (letters, digits and ``_`` only; others by code)."""
    return "".join(c if c.isascii() and (c.isalnum() or c == "_") else f"u{ord(c):04x}" for c in value)


def run_monitor(
    settings: Settings,
    *,
    as_of: dt.date,
    out: Path | None = None,
    reference_as_of: dt.date | None = None,
    score_only: bool = False,
    thresholds: Thresholds | None = None,
) -> MonitorResult:
    """Compute, write the HTML report (default ``var/monitor/monitor-AS_OF.html``) and log the run."""
    result = compute(
        settings, as_of=as_of, reference_as_of=reference_as_of, thresholds=thresholds, score_only=score_only
    )
    path = out or settings.path(settings.var_dir) / "monitor" / f"monitor-{as_of}.html"
    write_report(result, path)
    result.report_path = path
    result.run_id = log_run(settings, result, path)
    return result
