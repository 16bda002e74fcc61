"""The root `scoring` group: its options, the one place a ScoringError becomes an error line, and
the command groups in the order `scoring --help` lists them."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from typer.core import TyperGroup

from scoring.cli import data, demo, features, models, monitor, score, serve, store
from scoring.cli.output import fail
from scoring.errors import ScoringError

if TYPE_CHECKING:
    from typer._click import Context  # typer 0.29 carries its own click: its Context is the one invoked


class ScoringGroup(TyperGroup):
    """The root group: a ScoringError (or a ValueError) out of any command is one ``error: <message>``
    line and exit 1.

    Commands catch only what they report differently (an option named in the message, another exit
    code); what they do not catch is a fault of the code and keeps its traceback.
    """

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except ScoringError as exc:
            raise fail(exc.message_en) from exc
        except ValueError as exc:  # a value refused below us (a pydantic model, a spec's number): named as well
            raise fail(str(exc)) from exc


app = typer.Typer(
    cls=ScoringGroup,
    help="信用评价与信易贷预授信服务: credit evaluation and pre-credit scoring.",
    no_args_is_help=True,
)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log at INFO level")] = False) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=Console(stderr=True), show_path=False)],
    )
    for noisy in ("mlflow", "alembic", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING if verbose else logging.ERROR)


# `scoring --help` lists the commands in this order, then the named groups
for group in (
    data.commands,
    features.commands,
    score.commands,
    models.commands,
    serve.commands,
    monitor.commands,
    demo.commands,
):
    app.add_typer(group)
app.add_typer(store.keys_app, name="keys")
app.add_typer(store.consents_app, name="consents")
app.add_typer(store.audit_app, name="audit")
app.add_typer(store.outcomes_app, name="outcomes")
app.add_typer(data.objections_app, name="objections")
