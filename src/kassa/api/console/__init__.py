"""The operators' web console at ``/console``: server-rendered pages, fully offline.

Operators sign in with an API key that has ``console:read`` (look) or ``payouts:approve`` (look
and decide; ``admin`` implies both) and get a session cookie (`kassa.api.console.sessions`).
Pages are Jinja2 templates rendered here from the same services and views the admin API uses;
every asset a page loads (its stylesheet, its one small script, Chart.js) is served by this
process under ``/console/static``, and the Content-Security-Policy allows nothing else
(`kassa.api.console.web`). Every operator action goes through the services that record it
with the operator's key and the time (approvals, rejections, account states, disputes).
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from kassa.api.console import accounts, deposits, finance, overview, payouts, signin
from kassa.api.console.sessions import Session
from kassa.api.console.throttle import SignInThrottle
from kassa.api.console.web import (
    PREFIX,
    Refused,
    SecurityHeaders,
    SignInRequired,
    render,
    see_other,
    signed_in,
)
from kassa.api.context import context_of

STATIC_URL = f"{PREFIX}/static"


def _static_directory() -> str:
    return str(files("kassa.api.console") / "static")


def _chart_library() -> str:
    return str(files("kassa.reports") / "static" / "chart.umd.js")


def _session_of(request: Request) -> Session | None:
    """The operator signed in on this browser, if any: a refusal is then shown in the layout,
    with the sidebar to go on from."""
    try:
        return signed_in(request, context_of(request))
    except SignInRequired:
        return None


def install(app: FastAPI) -> None:
    """Serve the console on `app` (its routes, static files, headers and refusal pages)."""
    app.add_middleware(SecurityHeaders)
    app.state.console_throttle = SignInThrottle()

    async def sign_in_required(_request: Request, _error: Exception) -> Response:
        return see_other(f"{PREFIX}/sign-in")

    async def refused(request: Request, error: Exception) -> Response:
        if not isinstance(error, Refused):
            raise error
        return render(
            request,
            "refused.html",
            await run_in_threadpool(_session_of, request),
            status=error.status,
            title=error.title,
            detail=error.detail,
        )

    app.add_exception_handler(SignInRequired, sign_in_required)
    app.add_exception_handler(Refused, refused)

    @app.get(f"{STATIC_URL}/chart.umd.js", include_in_schema=False)
    def chart_library() -> FileResponse:
        return FileResponse(_chart_library(), media_type="text/javascript")

    app.mount(STATIC_URL, StaticFiles(directory=_static_directory()), name="console-static")
    for module in (signin, overview, payouts, deposits, accounts, finance):
        app.include_router(module.router)

    @app.get(PREFIX, include_in_schema=False)
    def console_root() -> Response:
        return see_other(f"{PREFIX}/")
