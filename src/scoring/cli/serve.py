"""`scoring serve`: the API under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from scoring.settings import Settings

commands = typer.Typer()


@commands.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 8000)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="server processes (one per core is usual)")] = 1,
) -> None:
    """Serve the API with uvicorn (the champion model and the latest feature snapshot)."""
    import uvicorn

    settings = Settings()
    if workers > 1:  # a listening socket per process, so that connections are spread over them
        from scoring.serve.workers import run_workers

        run_workers(host or settings.host, port or settings.port, workers, log_level="warning")
        return
    uvicorn.run(
        "scoring.serve.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level="warning",
    )
