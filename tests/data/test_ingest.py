import shutil
from pathlib import Path

import duckdb
import pytest

from scoring.data.ingest import IngestError, ingest_directory


def test_every_injected_fault_is_quarantined_and_nothing_is_lost(county) -> None:
    con = duckdb.connect(str(county.settings.warehouse_path), read_only=True)
    loads = con.execute(
        "SELECT table_name, rows_read, loaded, quarantined FROM loads "
        "WHERE load_id = (SELECT arg_max(load_id, loaded_at) FROM loads)"
    ).fetchall()
    for table, read, loaded, quarantined in loads:
        assert loaded + quarantined == read, table
        expected = sum(county.manifest["injected_errors"].get(table, {}).values())
        assert quarantined == expected, table
        assert read == county.manifest["rows"][table]
    reasons = dict(con.execute("SELECT reason, count(*) FROM quarantine GROUP BY 1").fetchall())
    joined = " ".join(reasons)
    for fault in ("malformed USCC", "unknown enterprise", "negative amount", "impossible date"):
        assert fault in joined
    row = con.execute("SELECT table_name, source_file, source_row, field, record FROM quarantine LIMIT 1").fetchone()
    assert row[1].endswith(".parquet") and row[2] >= 0 and row[3] and row[4].startswith("{")


def test_pilot_codes_are_kept_with_a_warning(county) -> None:
    con = duckdb.connect(str(county.settings.warehouse_path), read_only=True)
    kept = con.execute("SELECT count(*) FROM enterprises WHERE NOT uscc_check_ok").fetchone()[0]
    assert kept == county.manifest["pilot_codes"]


def test_loading_twice_gives_the_same_warehouse(county, tmp_path: Path) -> None:
    wh = tmp_path / "w.duckdb"
    ingest_directory(county.raw, wh)
    first = _counts(wh)
    ingest_directory(county.raw, wh)
    assert _counts(wh) == first


def _counts(path: Path) -> dict[str, int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = ["enterprises", "tax_monthly", "penalties", "quarantine", "loans"]
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    finally:
        con.close()


def test_an_unreadable_file_is_an_error_that_says_why(county, tmp_path: Path) -> None:
    folder = tmp_path / "raw"
    shutil.copytree(county.raw, folder)
    (folder / "penalties.parquet").write_bytes(b"not a parquet file")
    with pytest.raises(IngestError, match=r"penalties\.parquet"):
        ingest_directory(folder, tmp_path / "w.duckdb")


def test_a_missing_column_is_an_error_that_names_it(county, tmp_path: Path) -> None:
    folder = tmp_path / "raw"
    shutil.copytree(county.raw, folder)
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT * EXCLUDE (severity) FROM read_parquet('{county.raw}/penalties.parquet')) "
        f"TO '{folder}/penalties.parquet' (FORMAT parquet)"
    )
    with pytest.raises(IngestError, match="severity"):
        ingest_directory(folder, tmp_path / "w.duckdb")
