"""No interface changes unseen: the OpenAPI document and every command's help are the ones in
tests/snapshots (taken before the restructure of issue 14; a deliberate change of the API updates the
snapshot in the same commit, so that the review sees it: issue 18's contract fixes did)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import click
import typer
from typer.testing import CliRunner

from scoring.cli import app
from scoring.serve.app import create_app
from scoring.settings import Settings

SNAPSHOTS = Path(__file__).resolve().parents[1] / "snapshots"
PLAIN = {"COLUMNS": "120", "TERM": "dumb", "NO_COLOR": "1"}


def _commands(command: click.Command, path: list[str]) -> Iterator[list[str]]:
    yield path
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _commands(sub, [*path, name])


def test_the_openapi_document_is_the_one_before_the_move() -> None:
    before = json.loads((SNAPSHOTS / "openapi.json").read_text(encoding="utf-8"))
    now = json.loads(json.dumps(create_app(Settings()).openapi(), ensure_ascii=False))
    assert sorted(now["paths"]) == sorted(before["paths"])
    for path, operations in before["paths"].items():
        assert now["paths"][path] == operations, path
    assert now == before


def test_every_commands_help_is_the_one_before_the_move() -> None:
    before = json.loads((SNAPSHOTS / "cli_help.json").read_text(encoding="utf-8"))
    runner = CliRunner()
    now = {
        " ".join(path): runner.invoke(app, [*path, "--help"], env=PLAIN, terminal_width=120).output
        for path in _commands(typer.main.get_command(app), [])
    }
    assert sorted(now) == sorted(before)
    for command, text in before.items():
        assert now[command] == text, f"scoring {command} --help changed"
