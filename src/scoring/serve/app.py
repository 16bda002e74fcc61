"""The FastAPI application: ``create_app`` builds it; uvicorn serves it (``--factory``).

The app holds no route of its own: settings, the lifespan that opens the service, the middleware,
the exception handlers and one router per resource (``scoring.serve.routes``) and the console's.
Every decision, refusal and outcome is appended to the audit log before it is answered.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from scoring import __version__
from scoring.domain.models import ModelSet
from scoring.serve import console
from scoring.serve.console.headers import ConsoleHeaders
from scoring.serve.decider import Decider
from scoring.serve.handlers import install_handlers
from scoring.serve.middleware import Admission, BodyLimit, Metrics, RequestMetrics
from scoring.serve.routes import consents, decisions, enterprises, evaluations, health, models, outcomes, reviews
from scoring.serve.state import Service, SwapHook
from scoring.serve.thin import ThinPreCredit
from scoring.settings import Settings

DESCRIPTION = (
    "公共信用综合评价 and 信易贷预授信 with explanations, for banks, analysts and regulators. "
    "Authenticate with `Authorization: Bearer <API key>`; every error has a stable `code` and a "
    "message in Chinese and English."
)


def _model_gauge(metrics: Metrics) -> SwapHook:
    def on_swap(_: Service, served: ModelSet) -> None:
        metrics.model.clear()
        for m in served.members():
            metrics.model.labels(m.name, m.version).set(1)

    return on_swap


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the champion models and the latest features are loaded at start-up."""
    settings = settings or Settings()
    metrics = Metrics()
    hooks: list[SwapHook] = [_model_gauge(metrics)]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = await run_in_threadpool(Service.open, settings, on_swap=hooks)
        app.state.service = service
        # what start-up loaded (the libraries, the snapshot, the models) lives as long as the process:
        # kept out of the collector's full passes, which otherwise walk it all while answers wait
        gc.collect()
        gc.freeze()
        app.state.decider = decider = Decider(service, metrics)
        decider.start()
        service.start_polling()
        yield
        decider.stop()
        service.stop()

    app = FastAPI(
        title="信用评价与信易贷预授信服务 (credit evaluation and pre-credit service)",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.add_middleware(ConsoleHeaders)  # the innermost: the console's pages (the thin path never reaches it)
    app.add_middleware(ThinPreCredit, api=app)  # inside the three below: admitted, limited, counted
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(
        BodyLimit,
        default=settings.max_body_bytes,
        per_path={evaluations.BATCH_PATH: settings.max_batch_body_bytes},
    )
    app.add_middleware(Admission, limit=settings.max_in_flight, metrics=metrics)  # the outermost: refuses first
    install_handlers(app)
    for module in (health, models, evaluations, decisions, outcomes, consents, enterprises, reviews):
        app.include_router(module.router)
    hooks += console.install(app, settings)
    return app
