"""A load stopped half-way leaves the warehouse exactly as it was: killed with SIGKILL, or out of disk.

Real processes (``python -m scoring.cli ingest``), a real kill and a real full file system (a small
tmpfs); the warehouse's fingerprint, its loads and its quarantine are compared before and after.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from scoring.data.generate.messy import write_messy_penalties
from scoring.data.ingest import data_fingerprint


def _state(warehouse: Path) -> tuple[str, int, int, int]:
    """(fingerprint, loads, quarantined rows, penalties) of the warehouse."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        counts = con.execute(
            "SELECT (SELECT count(*) FROM loads), (SELECT count(*) FROM quarantine), (SELECT count(*) FROM penalties)"
        ).fetchone()
        assert counts is not None
        return (data_fingerprint(con), *counts)


def _env(home: Path, **extra: str) -> dict[str, str]:
    return {"SCORING_HOME": str(home), "PATH": os.environ["PATH"], "COLUMNS": "400", **extra}


def _codes(warehouse: Path) -> list[str]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "SELECT uscc FROM enterprises WHERE registered_date < DATE '2020-01-01' AND deregistered_date IS NULL "
            "AND uscc_check_ok ORDER BY uscc LIMIT 50"
        ).fetchall()
    return [r[0] for r in rows]


@pytest.fixture()
def home(county, tmp_path: Path) -> Path:
    """A home whose warehouse is a copy of the county's."""
    (tmp_path / "home" / "var").mkdir(parents=True)
    shutil.copy(county.settings.warehouse_path, tmp_path / "home" / "var" / "warehouse.duckdb")
    return tmp_path / "home"


def test_a_load_killed_half_way_leaves_the_warehouse_as_it_was_and_a_rerun_completes(
    home: Path, tmp_path: Path
) -> None:
    warehouse = home / "var" / "warehouse.duckdb"
    before = _state(warehouse)
    drop = tmp_path / "drop"
    drop.mkdir()
    # two large files of one table: the kill comes once the first is in the (uncommitted) load
    write_messy_penalties(drop / "penalties.csv", _codes(warehouse), 300_000)
    write_messy_penalties(drop / "行政处罚.csv", _codes(warehouse)[::-1], 300_000)
    proc = subprocess.Popen(
        [sys.executable, "-m", "scoring.cli", "--verbose", "ingest", str(drop), "--extract-date", "2026-01-01"],
        env=_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "rows read into penalties" in line:
            proc.send_signal(signal.SIGKILL)
            break
    assert proc.wait() == -signal.SIGKILL, "".join(seen)
    assert (home / "var" / "warehouse.duckdb.loading").exists()

    assert _state(warehouse) == before

    rerun = subprocess.run(
        [sys.executable, "-m", "scoring.cli", "ingest", str(drop), "--extract-date", "2026-01-01"],
        env=_env(home),
        capture_output=True,
        text=True,
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "was interrupted before it finished; nothing of it was kept" in rerun.stdout
    after = _state(warehouse)
    assert after[0] != before[0] and after[1] == before[1] + 2
    assert after[2] == before[2] + 60_000 and after[3] == before[3] + 270_000
    assert not (home / "var" / "warehouse.duckdb.loading").exists()


@pytest.fixture()
def small_disk(home: Path, tmp_path: Path):
    """The home's var/ on a tmpfs with 2 MB free beyond the warehouse (a mount needs root)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    var = home / "var"
    held = tmp_path / "held"
    shutil.move(var, held)
    var.mkdir()
    size = (held / "warehouse.duckdb").stat().st_size + 2 * 1024 * 1024
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(var)], check=True)
    try:
        shutil.copy(held / "warehouse.duckdb", var / "warehouse.duckdb")
        yield var
    finally:
        subprocess.run(["umount", "-l", str(var)], check=False)


def test_a_load_out_of_disk_says_so_leaves_the_warehouse_as_it_was_and_a_rerun_completes(
    home: Path, small_disk: Path, tmp_path: Path
) -> None:
    warehouse = small_disk / "warehouse.duckdb"
    before = _state(warehouse)
    drop = tmp_path / "drop"
    drop.mkdir()
    write_messy_penalties(drop / "penalties.csv", _codes(warehouse), 300_000)
    command = [sys.executable, "-m", "scoring.cli", "ingest", str(drop), "--extract-date", "2026-01-01"]

    full = subprocess.run(command, env=_env(home, TMPDIR=str(tmp_path)), capture_output=True, text=True)

    assert full.returncode == 3, full.stdout + full.stderr
    said = " ".join(full.stdout.split())
    assert "out of disk space" in said and "Nothing of this load was kept" in said and "Free disk space" in said
    assert _state(warehouse) == before
    subprocess.run(["mount", "-o", "remount,size=512m", str(small_disk)], check=True)
    rerun = subprocess.run(command, env=_env(home, TMPDIR=str(tmp_path)), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    after = _state(warehouse)
    assert after[1] == before[1] + 1 and after[2] == before[2] + 30_000 and after[3] == before[3] + 270_000
