"""The models' numbers of every enterprise of the served snapshot, as `scoring score` stored them.

A pre-credit decision's three TreeSHAP passes are a third of its CPU. They depend only on the
enterprise's features in the snapshot and on the three model versions, and the batch scorer computes
them for every enterprise of the snapshot anyway (the monthly grading that supervision reads). When
the warehouse holds them for the very snapshot build and champion versions being served, the service
takes them from there (:class:`Precomputed`); the limit policy, the reasons, the consent, the
requester and the audit row are still each request's own, and a replay recomputes the numbers from
the stored inputs and gets the same ones.

Loading checks that: a handful of enterprises, spread over the snapshot, are computed here as a
request would and compared bit for bit with what is stored. On any difference (another LightGBM
build, say) nothing is taken from the store and every decision is computed, as without it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import numpy as np

from scoring.batch.stored import stored_outputs
from scoring.domain.models import ModelSet
from scoring.domain.outputs import Outputs, explain
from scoring.features.online import OnlineFeatures

log = logging.getLogger(__name__)

CHECKED = 16  # enterprises recomputed when loading: a few milliseconds


@dataclass(frozen=True)
class Precomputed:
    """The stored outputs of one snapshot build under one set of model versions."""

    as_of: dt.date
    versions: dict[str, str]
    rows: dict[str, int]
    outputs: Outputs

    def serves(self, models: ModelSet, online: OnlineFeatures) -> bool:
        return self.as_of == online.as_of and self.versions == models.versions()

    def outputs_of(self, usccs: Sequence[str]) -> Outputs | None:
        """The outputs of these enterprises, in this order; None unless every one is stored."""
        index = [self.rows.get(u) for u in usccs]
        if any(i is None for i in index):
            return None
        return self.outputs.take(index)  # type: ignore[arg-type]


def load_precomputed(warehouse: str, models: ModelSet, online: OnlineFeatures) -> Precomputed | None:
    """The stored outputs for ``models`` and the served snapshot, checked; None when there are none,
    they are stale, the warehouse is busy, or the check finds a difference (each said in the log)."""
    if online.build is None:  # features of a warehouse that does not say which build they are
        return None
    try:
        with duckdb.connect(warehouse, read_only=True) as con:
            found = stored_outputs(con, models, as_of=online.as_of, build=online.build)
    except duckdb.Error as exc:  # a writer holds the warehouse: decisions are computed, as without
        log.warning("stored model outputs not read (%s): every decision is computed", exc)
        return None
    if found is None:
        log.info(
            "no current stored model outputs for %s at %s: decisions are computed", models.versions(), online.as_of
        )
        return None
    usccs, outputs = found
    rows = {u: i for i, u in enumerate(usccs)}
    known = [u for u in online.usccs if u in rows]
    if not known:
        return None
    sample = [known[int(i)] for i in np.unique(np.linspace(0, len(known) - 1, min(CHECKED, len(known))).round())]
    here = explain(models, [online.values(u) or {} for u in sample], pre_credit=True)  # each in the snapshot
    if not here.same_as(outputs.take([rows[u] for u in sample])):
        log.error(
            "the stored model outputs at %s differ from those computed here for the same enterprises: "
            "not used, every decision is computed",
            online.as_of,
        )
        return None
    log.info("taking the models' outputs of %d enterprises at %s from the stored scores", len(rows), online.as_of)
    return Precomputed(as_of=online.as_of, versions=models.versions(), rows=rows, outputs=outputs)
