"""The output of a generation: every table as Parquet, written chunk by chunk, and ``manifest.json``."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from scoring import __version__
from scoring.data import schema
from scoring.data.generate import applications
from scoring.data.generate.chunk import Chunk
from scoring.data.generate.chunks import iter_chunks
from scoring.data.generate.config import GeneratorConfig
from scoring.data.generate.corruption import corrupt

log = logging.getLogger(__name__)

_ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "DOUBLE": pa.float64(),
    "INTEGER": pa.int32(),
    "DATE": pa.date32(),
    "BOOLEAN": pa.bool_(),
}


def generate(cfg: GeneratorConfig, out: Path, progress: Callable[[int], None] | None = None) -> dict:
    """Write every table as Parquet under ``out`` plus ``manifest.json``; return the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    writers: dict[str, pq.ParquetWriter] = {}
    rows: dict[str, int] = {name: 0 for name in schema.TABLES}
    injected: dict[str, dict[str, int]] = {}
    pilot = 0
    events = 0
    extract_date = None
    error_rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 1]))
    try:
        for chunk in iter_chunks(cfg):
            extract_date = chunk.extract_date
            pilot += chunk.pilot_codes
            events += int(chunk.events["i"].size)
            _write_chunk(chunk, out=out, writers=writers, rows=rows, error_rng=error_rng, injected=injected)
            if progress:
                progress(chunk.n)
        pq.write_table(_arrow(schema.TABLES["synthetic_regimes"], _regimes(cfg)), out / "synthetic_regimes.parquet")
        rows["synthetic_regimes"] = 1
    finally:
        for w in writers.values():
            w.close()
    manifest = {
        "version": __version__,
        "generator": asdict(cfg),
        "data_start": str(np.datetime64(cfg.start, "M").astype("datetime64[D]")),
        "extract_date": str(extract_date),
        "rows": rows,
        "adverse_events": events,
        "pilot_codes": pilot,
        "injected_errors": injected,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2))
    log.info("generated %s enterprises into %s", cfg.enterprises, out)
    return manifest


def _write_chunk(
    chunk: Chunk,
    *,
    out: Path,
    writers: dict[str, pq.ParquetWriter],
    rows: dict[str, int],
    error_rng: np.random.Generator,
    injected: dict[str, dict[str, int]],
) -> None:
    """Append the chunk's tables to their Parquet files, corrupting the record tables first.

    Tables go in the chunk's order, which is also the order of the draws from ``error_rng``; the
    applications draw their errors from a stream of their own, so the other tables' errors are the same.
    """
    corrupted: set[str] = set()
    for name, data in chunk.tables.items():
        table = schema.TABLES[name]
        if name in schema.RECORD_TABLES and chunk.cfg.error_rate > 0:
            corrupt(
                name,
                data,
                rng=applications.error_stream(chunk) if name in applications.TABLES else error_rng,
                rate=chunk.cfg.error_rate,
                extract_date=chunk.extract_date,
                corrupted=corrupted,
                injected=injected,
            )
        arrow = _arrow(table, data)
        if name not in writers:
            writers[name] = pq.ParquetWriter(out / f"{name}.parquet", arrow.schema, compression="zstd")
        writers[name].write_table(arrow)
        rows[name] += arrow.num_rows


def _regimes(cfg: GeneratorConfig) -> dict[str, np.ndarray]:
    """The ``synthetic_regimes`` row: the industry's bad spell and its shift of the log-odds."""
    lo, hi = cfg.regime_window
    base = np.datetime64(cfg.start, "M")
    return {
        "industry": np.array([cfg.regime_industry], dtype=object),
        "start_month": np.array([base + lo]).astype("datetime64[D]"),
        "end_month": np.array([base + hi]).astype("datetime64[D]"),
        "risk_shift": np.array([cfg.regime_shift]),
        "logit_shift": np.array([cfg.regime_shift * cfg.hazard_slope]),
    }


def _arrow(table: schema.Table, data: dict[str, np.ndarray]) -> pa.Table:
    arrays = []
    for col in table.columns:
        values = data[col.name]
        if col.dtype == "DATE":
            values = values.astype("datetime64[D]")
            arrays.append(pa.array(values, type=pa.date32(), mask=np.isnat(values)))
        else:
            arrays.append(pa.array(values, type=_ARROW_TYPES[col.dtype]))
    return pa.Table.from_arrays(arrays, names=table.column_names)
