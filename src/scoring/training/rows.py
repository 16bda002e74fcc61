"""The rows the credit evaluation model is fitted and tested on, chosen out of time.

The test as-of date is the latest whose 12-month outcome window is complete; the training as-of
dates are the spec's offsets before it. A row is an enterprise's feature snapshot at an as-of date
(records dated before it) with the adverse-event label of the 12 months from it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scoring.features.build import ensure_snapshots, load_snapshot
from scoring.features.catalog import Catalog
from scoring.features.labels import LABEL_MONTHS, build_labels, labels_sql, oracle_probability, window_end
from scoring.training.errors import TrainingError
from scoring.training.spec import ModelSpec, SplitSpec


def add_months(d: dt.date, months: int) -> dt.date:
    y, m = divmod(d.month - 1 + months, 12)
    return dt.date(d.year + y, m + 1, 1)


def data_start(con: Any) -> dt.date:
    """The first month with records in the warehouse (the earliest tax, utility or insurance month)."""
    row = con.execute(
        "SELECT least((SELECT min(period) FROM tax_monthly), (SELECT min(period) FROM utility_monthly),"
        " (SELECT min(period) FROM social_insurance_monthly))"
    ).fetchone()
    if row is None or row[0] is None:
        raise TrainingError("the warehouse has no monthly records: run `scoring ingest` first")
    return dt.date(row[0].year, row[0].month, 1)


def choose_as_of_dates(spec: ModelSpec, *, start: dt.date, extract: dt.date) -> tuple[list[dt.date], dt.date]:
    """(train as-of dates, test as-of date): the test date is the latest with a complete window."""
    if not isinstance(spec.split, SplitSpec):
        raise TrainingError(f"{spec.name}: as-of dates need a snapshot split (train_offsets_months)")
    test = add_months(dt.date(extract.year, extract.month, 1), -LABEL_MONTHS)
    while window_end(test) > extract:
        test = add_months(test, -1)
    earliest = add_months(start, spec.split.min_history_months)
    train = sorted(d for d in (add_months(test, -k) for k in spec.split.train_offsets_months) if d >= earliest)
    if not train:
        raise TrainingError(
            f"no training as-of date has {spec.split.min_history_months} months of history before it and a "
            f"complete outcome window before the test date {test}: data from {start} to {extract} is too short"
        )
    return train, test


def evaluation_frame(con: Any, catalog: Catalog, as_of: dt.date) -> pd.DataFrame:
    """Features at ``as_of`` (records before it) with the adverse-event label of the 12 months from it."""
    features = load_snapshot(con, catalog, as_of=as_of)
    labels = build_labels(con, as_of=as_of)
    frame = features.merge(labels[["uscc", "adverse", "exposure_months"]], on="uscc", how="inner")
    frame["p_true"] = oracle_probability(con, frame)
    frame["p_asof"] = oracle_probability(con, frame, knowable=True)
    return frame


@dataclass
class TrainingRows:
    """Many snapshots' rows stacked for fitting: the encoded features, the label and the enterprise."""

    matrix: np.ndarray  # float64, rows x features in model order
    y: np.ndarray
    uscc: np.ndarray  # object: one enterprise's snapshots share it, so the holdout keeps them together

    def __len__(self) -> int:
        return len(self.y)


def training_rows(
    con: Any,
    catalog: Catalog,
    names: list[str],
    dates: list[dt.date],
    *,
    snapshots: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrainingRows:
    """The labelled snapshots at ``dates``, encoded as ``encode_matrix`` does, in one preallocated matrix.

    The snapshots and labels are the warehouse's (built when missing), or with ``snapshots`` the ones
    `scoring features --engine spark --labels` wrote into that folder (``feature_snapshots/`` and
    ``labels/``, checked to be of this catalog: :func:`spark_sources`).

    A city is 1,000,000 enterprises x 12 snapshots. Each snapshot is joined to its labels and
    encoded in the warehouse (numbers as DOUBLE, a category as its position in the catalog's list)
    and arrives as Arrow columns; going through per-snapshot DataFrames and concatenating them would
    hold several copies of 12 million rows and spend most of the time converting columns.
    """
    from scoring.features.build import SNAPSHOT_TABLE

    say = progress or (lambda _msg: None)
    if snapshots is None:
        ensure_snapshots(con, catalog, as_of_dates=dates)
        source = SNAPSHOT_TABLE

        def labels_of(d: dt.date) -> str:
            return labels_sql(con, as_of=d)
    else:
        source, labels_source = spark_sources(snapshots, catalog, dates)

        def labels_of(d: dt.date) -> str:  # the date is bound below, as $as_of
            return (
                f"SELECT uscc, adverse FROM {labels_source} "  # nosec B608 # read_parquet of a quoted folder
                "WHERE CAST(as_of AS DATE) = $as_of"
            )

    categories = catalog.categories_of(names)
    columns = []
    for n in names:
        cats = categories.get(n)
        if cats is None:
            columns.append(f'CAST(f."{n}" AS DOUBLE)')
        else:  # 0-based code; a value outside the list (or missing) is NULL, as in encode_matrix
            listed = ", ".join("'" + c.replace("'", "''") + "'" for c in cats)
            columns.append(f'CAST(list_position([{listed}], f."{n}") - 1 AS DOUBLE)')
    marks = ", ".join("?" for _ in dates)
    counts = dict(
        con.execute(
            f"SELECT CAST(as_of AS DATE), count(*) FROM {source} "  # nosec B608 # a table or a quoted folder
            f"WHERE CAST(as_of AS DATE) IN ({marks}) GROUP BY 1",
            dates,
        ).fetchall()
    )
    bound = sum(counts.get(d, 0) for d in dates)  # labels join inside the snapshot: an upper bound
    matrix = np.empty((bound, len(names)), dtype=np.float64)
    y = np.empty(bound, dtype=np.int8)
    uscc = np.empty(bound, dtype=object)
    at = 0
    for d in dates:
        say(f"features and labels as of {d}")
        labels = labels_of(d)
        # a cursor of its own: the query streams to Arrow without waiting on results open on ``con``
        table = (
            con.cursor()
            .sql(
                f"""
            WITH labels AS ({labels})
            SELECT f.uscc, l.adverse, {", ".join(columns)}
            FROM {source} f JOIN labels l USING (uscc)
            WHERE CAST(f.as_of AS DATE) = $as_of
            ORDER BY f.uscc
            """,  # nosec B608 # the labels' SQL (labels.py), catalog names, a table or a quoted folder
                params={"as_of": d},
            )
            .to_arrow_table()
        )
        n = table.num_rows
        for j in range(len(names)):
            matrix[at : at + n, j] = table.column(j + 2).to_numpy()  # nulls arrive as NaN
        y[at : at + n] = table.column(1).to_numpy()
        uscc[at : at + n] = table.column(0).to_numpy(zero_copy_only=False)
        at += n
        del table
    return TrainingRows(matrix=matrix[:at], y=y[:at], uscc=uscc[:at])


def spark_sources(folder: Path, catalog: Catalog, dates: list[dt.date]) -> tuple[str, str]:
    """(the snapshots, the labels) that Spark wrote into ``folder``, as DuckDB relations.

    Every date must have been built by this catalog (``feature_snapshots/_builds.json`` records the
    catalog digest of each date) and have its labels (``labels/as_of=<date>/``); else a TrainingError
    naming the folder, the date and the fault.
    """
    from scoring.features.on_spark import BUILDS, LABELS, SNAPSHOTS

    builds_path = folder / SNAPSHOTS / BUILDS
    if not builds_path.exists():
        raise TrainingError(f"{folder}: no {SNAPSHOTS}/{BUILDS}: not a folder `scoring features --engine spark` wrote")
    builds = json.loads(builds_path.read_text(encoding="utf-8"))
    for d in dates:
        built = builds.get(str(d))
        if built is None or not (folder / SNAPSHOTS / f"as_of={d}").is_dir():
            raise TrainingError(f"{folder}: no snapshot as of {d}: run `scoring features --engine spark --as-of {d}`")
        if built["catalog_digest"] != catalog.digest:
            raise TrainingError(
                f"{folder}: the snapshot as of {d} was built by another catalog (digest {built['catalog_digest'][:12]}, "
                f"this catalog {catalog.digest[:12]}): build it again"
            )
        if not (folder / LABELS / f"as_of={d}").is_dir():
            raise TrainingError(f"{folder}: no labels as of {d}: run `scoring features --engine spark --labels`")

    def relation(table: str) -> str:
        path = str(folder / table / "as_of=*" / "*.parquet").replace("'", "''")
        return f"read_parquet('{path}', hive_partitioning = true)"

    return relation(SNAPSHOTS), relation(LABELS)


def holdout_mask(frame: pd.DataFrame, fraction: float, seed: int) -> np.ndarray:
    """Rows of a random ``fraction`` of the enterprises: one enterprise's rows never sit on both sides."""
    return holdout_of(frame["uscc"].to_numpy(), fraction, seed)


def holdout_of(ids: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """True for the rows whose id is among a random ``fraction`` of the distinct ids (pandas' hashed
    look-ups, for the millions of rows of a city)."""
    series = pd.Series(ids)
    unique = np.sort(series.unique())
    rng = np.random.default_rng(seed)
    held = rng.choice(unique, size=int(len(unique) * fraction), replace=False)
    return series.isin(held).to_numpy()
