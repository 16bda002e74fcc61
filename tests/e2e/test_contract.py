"""The OpenAPI document is the contract: schemathesis against the real server, a key of each role and none.

Every check (`--checks all`: status codes, content types, headers and bodies as documented, invalid
input refused, valid input accepted, the `Allow` of a 405, authorization that is not ignored, …) and
every phase (the schema's examples, coverage, fuzzing, stateful sequences through the response links),
bounded in examples and time. The runs' figures are printed at the end of the session and quoted in
docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

HERE = Path(__file__).parent
SECONDS = 30  # per key: fuzzing and the stateful phase repeat until this is spent
EXAMPLES = 15  # per operation and phase
FIGURES: list[str] = []  # each run's figures, printed at the end of the session (tests/e2e/conftest.py)


def schemathesis(base: str, key: str | None, report: Path) -> dict:
    """One schemathesis run against ``base`` with ``key`` (None: no Authorization header); its JSON report."""
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(HERE / "schemathesis.toml"),
        "run",
        f"{base}/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(EXAMPLES),
        "--max-time",
        str(SECONDS),
        "--seed",
        "17",
        "--workers",
        "1",
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    if key is not None:
        command += ["--header", f"Authorization: Bearer {key}"]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "contract_hooks", "PYTHONPATH": str(HERE), "NO_COLOR": "1"}
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=SECONDS * 10)
    assert report.exists(), f"schemathesis wrote no report (exit {run.returncode}):\n{run.stdout}\n{run.stderr}"
    return {**json.loads(report.read_text()), "output": run.stdout, "returncode": run.returncode}


@pytest.mark.parametrize("role", ["bank", "analyst", "regulator", "admin", "enterprise", "none"])
def test_the_api_answers_as_its_openapi_document_says(server, keys, role, tmp_path) -> None:
    key = {
        "bank": keys.bank_a,
        "analyst": keys.analyst,
        "regulator": keys.regulator,
        "admin": keys.admin,
        "enterprise": keys.enterprise,
    }.get(role)
    result = schemathesis(server, key, tmp_path / "report.json")
    ops, cases = result["operations"], result["test_cases"]
    phases = ", ".join(f"{name} {p['status']}" for name, p in result["phases"].items())
    FIGURES.append(
        f"key {role}: {ops['tested']} of {ops['total']} operations, {cases['generated']} cases generated, "
        f"{len(result['failures'])} failures, {len(result['errors'])} errors ({phases})"
    )
    assert ops["tested"] == ops["total"] > 0
    assert cases["generated"] > 0
    assert result["failures"] == [] and result["errors"] == [], failures_of(result["output"])
    assert result["returncode"] == 0, failures_of(result["output"])


def failures_of(output: str) -> str:
    """The FAILURES section of a run's output, each line cut to 400 characters (a fuzzed body may be megabytes)."""
    section = output.split("= FAILURES =", 1)[-1].split("= WARNINGS =", 1)[0]
    return "\n".join(line[:400] for line in section.splitlines())[-12000:]
