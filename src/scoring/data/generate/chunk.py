"""One chunk of enterprises: the state the generation steps fill in, and the helpers they share."""

from __future__ import annotations

import numpy as np

from scoring.data.generate.config import GeneratorConfig


class Chunk:
    """One chunk of enterprises: their attributes and every record they produce.

    The steps of :func:`scoring.data.generate.chunks.iter_chunks` fill it in, in order, all
    drawing from the chunk's own random stream ``rng``.
    """

    # the register: enterprises.draw_enterprises
    industry: np.ndarray
    size: np.ndarray
    entity: np.ndarray
    z: np.ndarray
    risk: np.ndarray
    hazard: np.ndarray
    risk_t: np.ndarray
    hazard_t: np.ndarray
    reg_month: np.ndarray
    dereg_month: np.ndarray
    alive: np.ndarray
    uscc: np.ndarray
    reg_date: np.ndarray
    pilot_codes: int
    # monthly behaviour: behaviour.draw_behaviour
    sales: np.ndarray
    tax_mask: np.ndarray
    tax: dict[str, np.ndarray]
    utility_mask: dict[str, np.ndarray]
    utility: dict[str, dict[str, np.ndarray]]
    si_mask: np.ndarray
    headcount: np.ndarray
    si_arrears: np.ndarray
    hf_mask: np.ndarray
    hf_payers: np.ndarray
    hf_paid: np.ndarray
    hf_arrears: np.ndarray
    # event records: events.draw_events
    penalty_parts: list[dict[str, np.ndarray]]
    commit: dict[str, np.ndarray]
    loan: dict[str, np.ndarray]
    events: dict[str, np.ndarray]
    list_events: dict[str, np.ndarray]
    # the tables: credit_tables.penalties (read again by credit_tables.objections)
    penalty_rows: dict[str, np.ndarray]

    def __init__(self, cfg: GeneratorConfig, index: int, offset: int, n: int, rng: np.random.Generator) -> None:
        self.cfg, self.index, self.offset, self.n, self.rng = cfg, index, offset, n, rng
        m = cfg.months
        self.month_start = (np.datetime64(cfg.start, "M") + np.arange(m + 1)).astype("datetime64[D]")
        self.extract_date = self.month_start[m]
        self.tables: dict[str, dict[str, np.ndarray]] = {}

    def day(self, month: np.ndarray, lo: int = 0, hi: int = 28) -> np.ndarray:
        """A date in each given month: its first day plus a random ``lo`` to ``hi - 1`` days."""
        return self.month_start[month] + self.rng.integers(lo, hi, month.size)

    def live_draws(self, rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:func:`poisson_draws` of an enterprise x month ``rate``, in the months each enterprise is alive."""
        return poisson_draws(self.rng, rate * self.alive)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def poisson_draws(rng: np.random.Generator, rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(enterprise, month) of every event of an enterprise x month Poisson rate, one pair per event."""
    counts = rng.poisson(rate)
    i, month = np.nonzero(counts)
    reps = counts[i, month]
    return np.repeat(i, reps), np.repeat(month, reps)


def ids(prefix: str, chunk: int, n: int) -> np.ndarray:
    """``n`` record identifiers unique across chunks: prefix, chunk number, serial."""
    return np.array([f"{prefix}{chunk:04d}{k:07d}" for k in range(n)], dtype=object)


def index_by(owner: np.ndarray) -> dict[int, list[int]]:
    """Positions of each owner's rows: owner -> [row, ...]."""
    out: dict[int, list[int]] = {}
    for k, i in enumerate(owner.tolist()):
        out.setdefault(i, []).append(k)
    return out
