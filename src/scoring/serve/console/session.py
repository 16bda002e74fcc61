"""Signing in to the console: a key typed once into a form, then a session token in a strict cookie.

The key never appears in a URL. The browser holds only a random session token, in a cookie that
is HttpOnly (scripts cannot read it) and SameSite=Strict (no other site can make the browser send
it, so the replay form needs no CSRF token). Sessions are rows of the decision store, so every
server worker knows them, and a revoked key ends its sessions at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from scoring.errors import ApiError, ScoringError
from scoring.serve.console.limits import LOCK_SECONDS, SignInLimits, prefix_of
from scoring.serve.console.views import no_store, page, safe_next
from scoring.serve.deps import ServiceDep
from scoring.serve.refusals import ROLE_ZH, refuse
from scoring.serve.state import Service
from scoring.store import ApiKey, Event, Role, append, authenticate, end_session, open_session, session_key

COOKIE = "scoring_console"
SESSION_HOURS = 8
CONSOLE_ROLES = (Role.REGULATOR, Role.ANALYST)
# an enterprise signs in to its own page only (mine.py), a reviewer to the review queue (review_queue.py)
SIGN_IN_ROLES = (*CONSOLE_ROLES, Role.ENTERPRISE, Role.REVIEWER)
OWN_PAGE = {Role.ENTERPRISE: "/console/me", Role.REVIEWER: "/console/reviews"}

router = APIRouter(prefix="/console", include_in_schema=False)


class SignedOut(ScoringError):
    """No valid console session: go to the sign-in page."""

    code = "signed_out"
    status = 401
    title_zh = "未登录或会话已过期"


class OwnPageOnly(ScoringError):
    """An enterprise's or a reviewer's session on a supervisor's page: go to its own page (the message)."""

    code = "own_page_only"
    status = 403
    title_zh = "该角色只能查看自己的页面"


async def to_own_page(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OwnPageOnly)  # registered for it alone
    return no_store(RedirectResponse(exc.message_en, status_code=303))


def signed_in(request: Request, service: ServiceDep) -> ApiKey:
    """The key of the request's console session (a regulator's or an analyst's), else SignedOut."""
    token = request.cookies.get(COOKIE)
    if not token:
        raise SignedOut("no valid console session: sign in")
    key = session_key(service.engine, token)
    if key is not None and key.role in OWN_PAGE:
        raise OwnPageOnly(OWN_PAGE[key.role])
    if key is None or key.role not in CONSOLE_ROLES:
        raise SignedOut("no valid console session: sign in")
    return key


SignedIn = Annotated[ApiKey, Depends(signed_in)]


def session_of(role: Role) -> Callable[[Request, Service], ApiKey]:
    """A dependency: the key of the request's console session when it is of ``role`` (an enterprise's
    own page, the reviewers' queue), else SignedOut."""

    def check(request: Request, service: ServiceDep) -> ApiKey:
        token = request.cookies.get(COOKIE)
        key = session_key(service.engine, token) if token else None
        if key is None or key.role != role:
            raise SignedOut(f"no valid console session of a {role.value}: sign in")
        return key

    return check


def same_origin(request: Request) -> None:
    """A form posted from another site is refused (SameSite keeps the cookie from it; this keeps its sign-in)."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if origin and urlsplit(origin).netloc != request.url.netloc:
        raise ApiError(403, "cross_site", "拒绝来自其他网站的表单提交", f"a form posted from {origin} is refused")


async def to_sign_in(request: Request, _: Exception) -> Response:
    """The answer to SignedOut: the sign-in page, and back to this page after signing in."""
    # a GET with its query; a replay (POST) to its decision's page
    target = request.url.path
    if request.method == "GET" and request.url.query:
        target += "?" + request.url.query
    elif request.method != "GET":
        target = target.removesuffix("/replay")
    return no_store(RedirectResponse(f"/console/login?{urlencode({'next': target})}", status_code=303))


@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
def home(key: SignedIn) -> Response:
    return RedirectResponse("/console/decisions", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/console/decisions") -> HTMLResponse:
    return page(request, "login.html", None, next=safe_next(next))


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    service: ServiceDep,
    api_key: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/console/decisions",
) -> Response:
    try:
        same_origin(request)
    except ApiError as exc:
        return page(request, "login.html", None, exc.status, next="/console/decisions", error=exc.message_zh)
    limits: SignInLimits = request.app.state.sign_in_limits
    client = request.client.host if request.client else "unknown"
    wait = limits.locked(client, api_key)
    if wait > 0:
        minutes = math.ceil(wait / 60)
        locked = page(
            request, "login.html", None, 429, next=safe_next(next), error=f"登录失败次数过多，请{minutes}分钟后再试。"
        )
        locked.headers["Retry-After"] = str(math.ceil(wait))
        return locked
    key = authenticate(service.engine, api_key.strip()) if api_key.strip() else None
    if key is None:
        for name in limits.failed(client, api_key):
            payload = {"locked": name.split(":", 1)[0], "client": client, "key_prefix": prefix_of(api_key)}
            append(service.engine, [Event(kind="console_lockout", payload={**payload, "seconds": LOCK_SECONDS})])
        return page(request, "login.html", None, 401, next=safe_next(next), error="API密钥无效或已吊销")
    limits.succeeded(api_key)
    if key.role not in SIGN_IN_ROLES:
        refuse(
            service.engine,
            key,
            code="forbidden_role",
            zh=f"{ROLE_ZH[key.role]}密钥不能登录监管控制台",
            en=f"a {key.role.value} key may not sign in to the console (allowed: regulator, analyst, enterprise, reviewer)",
            uscc=None,
            what="POST /console/login",
        )
        return page(
            request,
            "login.html",
            None,
            403,
            next=safe_next(next),
            error=f"{ROLE_ZH[key.role]}密钥不能登录监管控制台（限监管人员、分析人员；企业、复核人员可登录各自页面）。"
            "此次尝试已记入审计日志。",
        )
    token = open_session(service.engine, key, hours=SESSION_HOURS)
    append(service.engine, [Event(kind="console_sign_in", payload={"session_hours": SESSION_HOURS}, key=key)])
    target = OWN_PAGE.get(key.role) or safe_next(next)
    out = no_store(RedirectResponse(target, status_code=303))
    out.set_cookie(
        COOKIE,
        token,
        max_age=SESSION_HOURS * 3600,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=service.settings.console_secure_cookie,
    )
    return out


@router.post("/logout")
def logout(request: Request, service: ServiceDep) -> Response:
    same_origin(request)
    token = request.cookies.get(COOKIE)
    if token:
        end_session(service.engine, token)
    out = RedirectResponse("/console/login", status_code=303)
    out.delete_cookie(COOKIE, path="/console")
    return out
