"""The analysts' notebooks (jupytext percent format) run top to bottom on the small county."""

import runpy
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("[0-9][0-9]_*.py"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path: Path, county, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCORING_HOME", str(county.home))
    runpy.run_path(str(path), run_name="__main__")
