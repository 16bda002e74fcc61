"""The console's security headers, on every answer under /console, and its one stylesheet.

The pages run no script at all and take their style from /console/console.css only, so the
Content-Security-Policy allows nothing inline: an injected ``<script>`` or ``style`` attribute does
nothing. No other site may frame a page (clickjacking), a browser never guesses a content type, and
a console URL (which may name an enterprise) is not sent to another site as the referrer.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),  # frame-ancestors for browsers that predate it
    (b"x-content-type-options", b"nosniff"),
    # not no-referrer: the browser would then send `Origin: null` with the sign-in form, which the
    # same-origin check of console/session.py refuses
    (b"referrer-policy", b"same-origin"),
]
STYLESHEET = Path(__file__).resolve().parents[1] / "templates" / "console.css"


class ConsoleHeaders:
    """Adds HEADERS to every response under /console (the API's JSON answers are left as they are)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/console"):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


@cache
def _css() -> str:
    return STYLESHEET.read_text(encoding="utf-8")


def stylesheet() -> Response:
    """GET /console/console.css: the pages' style (cached by the browser for an hour)."""
    return Response(_css(), media_type="text/css; charset=utf-8", headers={"Cache-Control": "max-age=3600"})
