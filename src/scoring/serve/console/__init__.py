"""The regulator console (监管控制台) at /console: server-rendered pages in Chinese, on the same service.

Signed in with a regulator or analyst API key (``session``); the pages (``pages``) show decisions,
enterprises, 分级分类监管 and 风险预警 from the population the served champion grades
(``population``); ``views`` turns stored decisions into what the pages draw. An enterprise's key
signs in to its own page (``mine``: its evaluation and query log) and no other; a reviewer's to
the review queue (``review_queue``). A bank key is
refused, and the refusal is audited. ``headers``: the security headers of every page, and the
stylesheet (no inline script or style anywhere).
"""

from __future__ import annotations

from fastapi import FastAPI

from scoring.serve.console import mine, pages, review_queue, session
from scoring.serve.console.headers import stylesheet
from scoring.serve.console.limits import SignInLimits
from scoring.serve.console.population import Console
from scoring.serve.state import SwapHook
from scoring.settings import Settings


def install(app: FastAPI, settings: Settings) -> list[SwapHook]:
    """Mount the console on the app; the swap hooks it wants the service to call (the population's warm-up)."""
    console = Console(settings)
    app.state.console = console
    app.state.sign_in_limits = SignInLimits()
    app.add_api_route("/console/console.css", stylesheet, include_in_schema=False)
    app.include_router(session.router)
    app.include_router(pages.router)
    app.include_router(mine.router)
    app.include_router(review_queue.router)
    app.add_exception_handler(session.SignedOut, session.to_sign_in)
    app.add_exception_handler(session.OwnPageOnly, session.to_own_page)
    return [console.warm] if settings.console_warm else []
