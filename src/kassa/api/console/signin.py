"""Sign-in with an operator's API key, sign-out, and the session's time zone.

The sign-in form carries a CSRF token too, from a short-lived double-submit cookie (there is no
session yet to hold it): a page elsewhere cannot sign a browser into an operator's session it
chose. A wrong key is answered like the API answers it, the same for unknown and revoked keys.
"""

from __future__ import annotations

import logging
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from kassa.api.console import sessions
from kassa.api.console.throttle import SignInThrottle, subjects
from kassa.api.console.web import (
    COOKIE,
    PREFIX,
    SIGN_IN_CSRF_COOKIE,
    Operator,
    checked_form,
    read_form,
    render,
    secure,
    see_other,
    set_session_cookie,
)
from kassa.api.context import Ctx
from kassa.apikeys.errors import Forbidden, Unauthenticated

log = logging.getLogger(__name__)

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def _sign_in_page(request: Request, *, error: str | None = None, status: int = 200) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        "sign_in.html",
        None,
        status=status,
        csrf=token,
        error=error,
        zones=sessions.time_zones(),
    )
    response.set_cookie(
        SIGN_IN_CSRF_COOKIE,
        token,
        max_age=3600,
        path=f"{PREFIX}/sign-in",
        httponly=True,
        samesite="strict",
        secure=secure(request),
    )
    return response


@router.get("/sign-in")
def sign_in_page(request: Request) -> Response:
    return _sign_in_page(request)


@router.post("/sign-in")
async def sign_in(request: Request, ctx: Ctx) -> Response:
    form = await read_form(request)
    expected = request.cookies.get(SIGN_IN_CSRF_COOKIE)
    if expected is None or not sessions.csrf_matches(expected, form.get("csrf")):
        return _sign_in_page(
            request, error="The form was out of date; please sign in again.", status=403
        )

    def work() -> str:
        with ctx.database.transaction() as conn:
            now = ctx.clock.now(conn)
            sessions.delete_expired(conn, now)
            token, session = sessions.sign_in(
                conn, form.get("api_key", ""), form.get("time_zone", ""), now
            )
        # Who signed in, never with what: the key's name, not its secret.
        log.info("console: %s signed in (session %s)", session.operator, session.id)
        return token

    throttle: SignInThrottle = request.app.state.console_throttle
    counted = subjects(request.client.host if request.client else None, form.get("api_key", ""))
    wait = throttle.retry_after(counted)
    if wait is not None:
        log.warning("console: a sign-in was refused: too many failed sign-ins (%s)", counted[0])
        response = _sign_in_page(
            request,
            error=f"Too many failed sign-ins; try again in {wait} seconds.",
            status=429,
        )
        response.headers["Retry-After"] = str(wait)
        return response
    try:
        token = await run_in_threadpool(work)
    except Unauthenticated:
        throttle.failed(counted)
        log.warning("console: a sign-in with an invalid API key was refused")
        return _sign_in_page(request, error="That API key is not valid.", status=401)
    except Forbidden as error:
        throttle.failed(counted)
        return _sign_in_page(request, error=error.detail, status=403)
    response = see_other(f"{PREFIX}/")
    set_session_cookie(response, request, token)
    response.delete_cookie(SIGN_IN_CSRF_COOKIE, path=f"{PREFIX}/sign-in")
    return response


@router.post("/sign-out")
async def sign_out(request: Request, session: Operator, ctx: Ctx) -> Response:
    await checked_form(request, session)

    def work() -> None:
        with ctx.database.transaction() as conn:
            sessions.sign_out(conn, session.id)
        log.info("console: %s signed out (session %s)", session.operator, session.id)

    await run_in_threadpool(work)
    response = see_other(f"{PREFIX}/sign-in")
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


@router.post("/time-zone")
async def time_zone(request: Request, session: Operator, ctx: Ctx) -> Response:
    form = await checked_form(request, session)

    def work() -> None:
        with ctx.database.transaction() as conn:
            sessions.set_time_zone(conn, session.id, form.get("time_zone", ""))

    await run_in_threadpool(work)
    back = form.get("back", "")
    # Only back to a console page: never an open redirect.
    return see_other(back if back.startswith(f"{PREFIX}/") and "//" not in back else f"{PREFIX}/")


@router.get("/time-zone")
def time_zone_page(request: Request, session: Operator) -> HTMLResponse:
    return render(request, "time_zone.html", session, zones=sessions.time_zones())
