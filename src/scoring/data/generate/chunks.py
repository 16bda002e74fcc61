"""The generation of one chunk, step by step, and the chunks of a whole county.

The order of the steps is the order of the random draws, so it is part of the output: changing
it changes the data for every seed. The order of :data:`TABLE_STEPS` is also the order in which
the tables are written and corrupted (:mod:`scoring.data.generate.writer`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from scoring.data.generate import admin_tables, applications, credit_tables, monthly_tables
from scoring.data.generate.behaviour import draw_behaviour
from scoring.data.generate.chunk import Chunk
from scoring.data.generate.config import GeneratorConfig
from scoring.data.generate.enterprises import draw_enterprises, truth
from scoring.data.generate.events import draw_events

# after the enterprises table (written by draw_enterprises), in this order
TABLE_STEPS: tuple[Callable[[Chunk], None], ...] = (
    monthly_tables.tax_monthly,
    monthly_tables.utility_monthly,
    monthly_tables.social_insurance_monthly,
    credit_tables.penalties,
    credit_tables.commitments,
    credit_tables.dishonesty_lists,
    credit_tables.loans,
    admin_tables.licenses,
    admin_tables.admin_actions,
    monthly_tables.tax_ratings,
    monthly_tables.housing_fund_monthly,
    admin_tables.real_estate,
    admin_tables.research,
    credit_tables.objections,
    truth,
)
# after every table above, each from streams of its own (never ``Chunk.rng``), so that adding them
# changed none of the tables above
OWN_STREAM_STEPS: tuple[Callable[[Chunk], None], ...] = (applications.loan_applications,)


def build_chunk(cfg: GeneratorConfig, index: int, offset: int, n: int, rng: np.random.Generator) -> Chunk:
    """One chunk of ``n`` enterprises with every table filled, drawn from ``rng`` (and the own streams of
    :data:`OWN_STREAM_STEPS`)."""
    chunk = Chunk(cfg, index, offset, n, rng)
    draw_enterprises(chunk)
    draw_behaviour(chunk)
    draw_events(chunk)
    for step in (*TABLE_STEPS, *OWN_STREAM_STEPS):
        step(chunk)
    return chunk


def iter_chunks(cfg: GeneratorConfig) -> Iterator[Chunk]:
    """Generate the enterprises chunk by chunk; each chunk has its own seeded random stream."""
    streams = np.random.SeedSequence(cfg.seed).spawn((cfg.enterprises + cfg.chunk_size - 1) // cfg.chunk_size)
    for index, stream in enumerate(streams):
        offset = index * cfg.chunk_size
        n = min(cfg.chunk_size, cfg.enterprises - offset)
        yield build_chunk(cfg, index, offset, n, np.random.default_rng(stream))
