"""The console's plumbing: templates, the signed-in operator, forms, CSRF and its refusals.

Pages are rendered on the server from Jinja2 templates (autoescaped). Every response under
``/console`` carries a Content-Security-Policy that allows scripts, styles, images and form
targets from this server only, and no inline script or style: the pages load
``/console/static/console.css`` and ``console.js`` and nothing else (`SecurityHeaders`).

A page's route depends on `Operator` (any console scope) or `Decider` (``payouts:approve``):
without a live session the browser is sent to the sign-in page (`SignInRequired`); a session
whose key lacks the scope gets the 403 page (`Refused`). Forms post
``application/x-www-form-urlencoded`` bodies that `read_form` parses; `checked_form` refuses a
form whose CSRF token is missing or not this session's with 403 before anything is read from it.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kassa.api.console import sessions
from kassa.api.console.sessions import Session
from kassa.api.context import Ctx
from kassa.money import Money

PREFIX = "/console"
COOKIE = "kassa_console"
SIGN_IN_CSRF_COOKIE = "kassa_console_signin"
"""Before there is a session the sign-in form's CSRF token is a double-submit cookie."""

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
MAX_FORM_BYTES = 64 * 1024

NAV = (
    ("overview", "Overview", f"{PREFIX}/"),
    ("review", "Review queue", f"{PREFIX}/review"),
    ("payouts", "Payouts", f"{PREFIX}/payouts"),
    ("deposits", "Deposits", f"{PREFIX}/deposits"),
    ("accounts", "Accounts", f"{PREFIX}/accounts"),
    ("reconciliation", "Reconciliation", f"{PREFIX}/reconciliation"),
    ("reports", "Reports", f"{PREFIX}/reports"),
    ("webhooks", "Webhooks", f"{PREFIX}/webhooks"),
    ("rates", "Rates", f"{PREFIX}/rates"),
)


class SignInRequired(Exception):
    """No live session: the browser goes to the sign-in page."""


class Refused(Exception):
    """An operator's request the console refuses, shown as a page with `status`."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail


# --------------------------------------------------------------------------- templates


def _local(value: datetime | str | None, zone: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def money(value: Money | Mapping[str, Any] | Any | None) -> str:
    """An amount with its asset: ``25.00 USD``, from a `Money`, an API ``{amount, asset}`` or
    an `AmountOut` (both already exact decimal strings)."""
    if value is None:
        return "—"
    if isinstance(value, Money):
        return f"{value.format()} {value.asset.code.value}"
    if isinstance(value, Mapping):
        return f"{value['amount']} {value['asset']}"
    return f"{value.amount} {value.asset}"


def duration(seconds: float | int | None) -> str:
    if seconds is None:
        return "—"
    total = int(seconds)
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


templates = Environment(
    loader=PackageLoader("kassa.api.console", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters["money"] = money
templates.filters["duration"] = duration


def render(
    request: Request,
    template: str,
    session: Session | None,
    *,
    status: int = 200,
    section: str = "",
    **context: Any,
) -> HTMLResponse:
    zone = session.zone if session is not None else UTC
    html = templates.get_template(template).render(
        request=request,
        session=session,
        section=section,
        nav=NAV,
        prefix=PREFIX,
        when=lambda value: _local(value, zone),
        **context,
    )
    return HTMLResponse(html, status_code=status)


def see_other(path: str) -> RedirectResponse:
    """After a form post: the browser GETs `path` (Post/Redirect/Get)."""
    return RedirectResponse(path, status_code=303)


# --------------------------------------------------------------------------- sessions


def signed_in(request: Request, ctx: Ctx) -> Session:
    token = request.cookies.get(COOKIE)
    with ctx.database.transaction() as conn:
        found = sessions.current(conn, token, ctx.clock.now(conn))
    if found is None:
        raise SignInRequired
    return found


def deciding(session: Annotated[Session, Depends(signed_in)]) -> Session:
    if not session.can_decide:
        raise Refused(
            403,
            "Not allowed",
            "Your key may look but not decide: approving, rejecting and the other operator "
            "actions need the payouts:approve scope.",
        )
    return session


Operator = Annotated[Session, Depends(signed_in)]
Decider = Annotated[Session, Depends(deciding)]


def secure(request: Request) -> bool:
    """Behind TLS (uvicorn reads X-Forwarded-Proto from a trusted proxy): Secure cookies."""
    return request.url.scheme == "https"


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(sessions.SESSION_LIFETIME.total_seconds()),
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=secure(request),
    )


# --------------------------------------------------------------------------- forms


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form's fields (the last value of a repeated name)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise Refused(413, "Form too large", "The form is larger than the console accepts.")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "Unreadable form", "The form is not UTF-8.") from None
    return dict(urllib.parse.parse_qsl(text, keep_blank_values=True))


async def checked_form(request: Request, session: Session) -> dict[str, str]:
    """The form, once its CSRF token is this session's; else 403 and nothing happens."""
    form = await read_form(request)
    if not sessions.csrf_matches(session.csrf_token, form.get("csrf")):
        raise Refused(
            403,
            "Form refused",
            "The form's security token is missing or out of date. Reload the page and try again.",
        )
    return form


# --------------------------------------------------------------------------- responses


class SecurityHeaders:
    """ASGI middleware: the console's CSP and the other headers on every ``/console`` answer."""

    HEADERS = (
        (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
        (b"x-frame-options", b"DENY"),
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith(f"{PREFIX}/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                headers.extend(self.HEADERS)
                if not static:
                    # Pages hold customers' data: never kept by the browser or a proxy.
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
