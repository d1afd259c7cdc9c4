"""Find a request's route without trying every route of the app.

FastAPI's router tries its entries in order — each included router, and inside it each route,
with a regular expression and some bookkeeping per try — until one matches the path and method.
With ~100 routes that walk is the largest part of a cheap request: ~0.3 ms of CPU for
``/healthz`` (included last), ~0.05–0.1 ms for an account route (docs/benchmarks.md, "HTTP
layer: before / after").

`RouteIndex` sits where the app's router dispatches. It knows, for every entry of the router,
the shapes of the paths that entry can match: the literal segments of each route's path (the
parts without a ``{parameter}``), how many segments there are, and where a ``{…:path}``
parameter or a mount takes the rest. A request's path is reduced to its skeleton — each segment
kept when some route has it as a literal, else a wildcard — and the entries whose shapes fit
the skeleton are the only ones that can match; the answer is remembered per skeleton (a
bounded number of them: ids become wildcards).

It then runs the router's own matching over those entries, in their order, and hands the first
full match to the route exactly as the router does. Everything else — no full match (404),
a route that matches the path but not the method (405), the trailing-slash redirect, a
websocket or lifespan message — goes to the router's own dispatch unchanged. An entry it does
not understand is always a candidate, so the index can only skip entries that cannot match:
the route chosen is the one the router would choose (tests/api/test_api_route_index.py checks
every route of the app both ways).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import Receive, Scope, Send

log = logging.getLogger(__name__)

MAX_SKELETONS = 4096
"""Skeletons remembered; past this many, candidates are computed per request (still correct)."""

_WILD = "\x00"
"""A path segment that no route has as a literal."""

try:  # FastAPI's own steps for a selected route (private, so looked up defensively).
    from fastapi.routing import (  # type: ignore[attr-defined]
        _apply_router_form_limits,
        _EffectiveRouteContext,
        _IncludedRouter,
        _route_selected,
        _update_scope,
    )
    from starlette._utils import get_route_path
except ImportError:  # pragma: no cover - a FastAPI without them: the router works alone
    _SUPPORTED = False
else:
    _SUPPORTED = True


@dataclass(frozen=True, slots=True)
class _Shape:
    """The segments of a route's path: a literal, None for a one-segment parameter; `rest`
    when the last part (a ``{…:path}`` parameter, a mount's inside) takes any further path."""

    segments: tuple[str | None, ...]
    rest: bool

    def fits(self, skeleton: tuple[str, ...]) -> bool:
        if self.rest:
            if len(skeleton) < len(self.segments):
                return False
        elif len(skeleton) != len(self.segments):
            return False
        return all(
            literal is None or literal == part
            for literal, part in zip(self.segments, skeleton, strict=False)
        )


def _shape(path_format: str, *, rest: bool = False) -> _Shape:
    segments: list[str | None] = []
    for segment in path_format.split("/"):
        if "{" not in segment:
            segments.append(segment)
        elif ":path}" in segment:
            # Takes the rest, slashes included, from this segment on (possibly nothing).
            return _Shape(tuple(segments), rest=True)
        else:
            segments.append(None)
    return _Shape(tuple(segments), rest=rest)


def _shapes_of(route: BaseRoute) -> list[_Shape] | None:
    """The shapes `route` can match, or None when it is not understood (always a candidate)."""
    if _SUPPORTED and isinstance(route, _IncludedRouter):
        shapes: list[_Shape] = []
        for candidate in route.effective_candidates():
            if not isinstance(candidate, _EffectiveRouteContext):
                return None  # a router included in an included router
            if candidate.starlette_route is not None or not isinstance(candidate.path_format, str):
                return None  # a mount or host inside it: matched by Starlette's own rules
            if not candidate.path_format.startswith("/"):
                return None
            shapes.append(_shape(candidate.path_format))
        return shapes
    if isinstance(route, Mount):
        path = route.path.rstrip("/")
        return [_shape(path, rest=True)] if path.startswith("/") else None
    path_format = getattr(route, "path_format", None)
    if type(route).__name__ in ("APIRoute", "Route") and isinstance(path_format, str):
        return [_shape(path_format)] if path_format.startswith("/") else None
    return None


class RouteIndex:
    """The app router's dispatch, trying only the entries a path can match (see module)."""

    def __init__(self, app: FastAPI) -> None:
        self.router = app.router
        self.dispatch: Callable[[Scope, Receive, Send], Any] = app.router.app
        self._routes: tuple[BaseRoute, ...] = ()
        self._literals: frozenset[str] = frozenset()
        self._entries: list[tuple[BaseRoute, list[_Shape] | None]] = []
        self._candidates: dict[tuple[str, ...], tuple[BaseRoute, ...]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.dispatch(scope, receive, send)
            return
        router = self.router
        if len(router.routes) != len(self._routes):
            self._build()
        form_limits = router.form_limits
        if form_limits:
            _apply_router_form_limits(scope, form_limits)
        if "router" not in scope:
            scope["router"] = router
        literals = self._literals
        skeleton = tuple(
            part if part in literals else _WILD for part in get_route_path(scope).split("/")
        )
        candidates = self._candidates.get(skeleton)
        if candidates is None:
            candidates = self._find(skeleton)
        for route in candidates:
            match, child_scope = route.matches(scope)
            if match == Match.FULL:
                # What the router does with its first full match.
                _update_scope(scope, child_scope)
                _route_selected(
                    scope=scope,
                    path=getattr(route, "path_format", None),
                    mount=isinstance(route, Mount),
                )
                await route.handle(scope, receive, send)
                return
        await self.dispatch(scope, receive, send)

    def _build(self) -> None:
        routes = tuple(self.router.routes)
        entries = [(route, _shapes_of(route)) for route in routes]
        literals = {
            segment
            for _route, shapes in entries
            for shape in shapes or ()
            for segment in shape.segments
            if segment is not None
        }
        literals.discard(_WILD)
        self._entries = entries
        self._literals = frozenset(literals)
        self._candidates = {}
        self._routes = routes

    def _find(self, skeleton: tuple[str, ...]) -> tuple[BaseRoute, ...]:
        found = tuple(
            route
            for route, shapes in self._entries
            if shapes is None or any(shape.fits(skeleton) for shape in shapes)
        )
        if len(self._candidates) < MAX_SKELETONS:
            self._candidates[skeleton] = found
        return found

    def candidates(self, path: str) -> Sequence[BaseRoute]:
        """The entries tried for `path` (for tests)."""
        if len(self.router.routes) != len(self._routes):
            self._build()
        return self._find(
            tuple(part if part in self._literals else _WILD for part in path.split("/"))
        )


def install(app: FastAPI) -> RouteIndex | None:
    """Put a `RouteIndex` in front of `app`'s router (call it once every route is added). Routes
    or routers added to the app later are indexed on the next request; a route added later to a
    router that is already included is not (`create_app` adds none). Nothing changes when the
    router has middleware of its own or this FastAPI lacks what the index relies on."""
    router = app.router
    if not _SUPPORTED or router.middleware_stack != router.app:
        log.warning("the route index is not installed: the router dispatches on its own")
        return None
    index = RouteIndex(app)
    router.middleware_stack = index
    return index
