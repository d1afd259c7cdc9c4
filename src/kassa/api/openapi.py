"""The published OpenAPI description, made true to what the server answers.

FastAPI generates the document from the routes, but on its own it gets three things wrong for
Kassa: every error is `application/problem+json` with a stable `code` (FastAPI would document
`application/json` and its own validation body), the `Idempotency-Key` header is required by
the dependency that reads it (FastAPI sees an optional header, because the dependency refuses a
missing key itself to answer `400 idempotency_key_required` instead of a validation error),
and which codes a route can answer is knowledge only the route has.

So a route states its own refusals by code, declaratively:

    @router.post(..., responses=problems_for("hold_not_found", "hold_already_resolved"))

and `install` rewrites the document once, when it is first asked for:

* every 4xx/5xx response of every operation is rebuilt from the codes that apply to it: the
  route's own, plus the ones its shape implies (a key is checked: 401/403; it has parameters or
  a body: 422 `validation_error`; it takes an Idempotency-Key: 400 and 409
  `idempotency_key_reused`; every operation: 500 `internal_error`). Each status gets the
  Problem schema with `code` restricted to exactly those codes, their list in the description,
  and one example per code;
* the `Idempotency-Key` header becomes the shared, required `IdempotencyKey` parameter on every
  operation whose route depends on the enforcing dependency (`kassa.api.idempotency.Idem`);
* FastAPI's unused `HTTPValidationError` schemas are dropped.

Statuses come from `kassa.api.problems.STATUS_BY_CODE`, the one table the error handler uses,
so the document and the answers cannot drift apart on the status of a code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from typing import Any, get_args

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic.json_schema import models_json_schema

from kassa.api.auth import bearer
from kassa.api.idempotency import Idem
from kassa.api.problems import PROBLEM_JSON, STATUS_BY_CODE
from kassa.api.schemas import Problem, RefusalProblem
from kassa.ledger.idempotency import MAX_KEY_LENGTH

__all__ = [
    "IDEMPOTENCY_PARAMETER",
    "api_routes",
    "install",
    "problems_for",
    "requires_idempotency_key",
]

_CODES = "x-kassa-problem-codes"
"""Where `problems_for` leaves a route's codes in its `responses` until `install` reads them."""

#: Refusals whose problem body carries the policy decision (`RefusalProblem`).
REFUSAL_CODES = frozenset({"refund_refused", "withdrawal_refused"})

_REF = "#/components/schemas/{model}"

IDEMPOTENCY_PARAMETER: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": True,
    "description": "One key per intended operation (a fresh UUID, say). A retry of the same "
    "request with the same key is not done again: it gets the first answer back, with "
    "`Idempotent-Replayed: true`. The same key with a different request is refused "
    "(409 `idempotency_key_reused`). Keys are scoped to the calling API key.",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_KEY_LENGTH,
        "pattern": f"^[!-~]{{1,{MAX_KEY_LENGTH}}}$",
        "description": "Printable ASCII without spaces",
    },
    "example": "5f0c1a8e-3b7d-4c52-9d0e-2a6f4b1c9e77",
}


def problems_for(*codes: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route that may answer these problem codes (besides the ones every
    route of its shape answers, which `install` adds). Unknown codes fail at import time."""
    unknown = sorted(code for code in codes if code not in STATUS_BY_CODE)
    if unknown:
        raise ValueError(f"no status for problem codes {unknown}: add them to STATUS_BY_CODE")
    grouped: dict[int | str, dict[str, Any]] = {}
    for status, members in _by_status(codes).items():
        grouped[status] = {"description": _phrase(status), _CODES: members}
    return grouped


def requires_idempotency_key(route: APIRoute) -> bool:
    """The route runs the dependency that refuses a request without the header."""
    enforcing = _dependency_of(Idem)
    return any(dep.call is enforcing for dep in _walk(route.dependant))


def install(app: FastAPI) -> None:
    """Serve the completed document as `app.openapi()` (and so at /openapi.json)."""
    completed: list[int] = []

    def openapi() -> dict[str, Any]:
        document = FastAPI.openapi(app)
        if id(document) not in completed:
            _complete(app, document)
            completed[:] = [id(document)]
        return document

    app.openapi = openapi  # type: ignore[method-assign]


# --------------------------------------------------------------------------- completion


def _complete(app: FastAPI, document: dict[str, Any]) -> None:
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    _add_models(schemas, (Problem, RefusalProblem))
    components.setdefault("parameters", {})["IdempotencyKey"] = IDEMPOTENCY_PARAMETER
    for path, route in api_routes(app):
        for method in route.methods or ():
            _complete_operation(route, path, document["paths"][path][method.lower()])
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)


def api_routes(app: FastAPI) -> Iterator[tuple[str, APIRoute]]:
    """Every route in the document, with its full path (routers are included lazily)."""
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and route.include_in_schema:
            yield context.path_format or route.path_format, route


def _complete_operation(route: APIRoute, path: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    codes = set(_implied_codes(route))
    for documented in [s for s in responses if _is_error(s)]:
        codes.update(responses.pop(documented).get(_CODES, ()))
    for status, members in _by_status(codes).items():
        responses[str(status)] = _problem_response(status, members, path)
    if requires_idempotency_key(route):
        parameters = operation.setdefault("parameters", [])
        parameters[:] = [p for p in parameters if p.get("name") != "Idempotency-Key"]
        parameters.append({"$ref": "#/components/parameters/IdempotencyKey"})


def _implied_codes(route: APIRoute) -> Iterator[str]:
    """The codes a route answers by its shape alone."""
    calls = {dep.call for dep in _walk(route.dependant)}
    # Every route that checks a key declares the bearer scheme (`authenticated`, `require`).
    if bearer in calls:
        yield from ("unauthenticated", "forbidden")
    dependant = route.dependant
    if route.body_field is not None or _has_parameters(dependant):
        yield "validation_error"
    if route.body_field is not None:
        yield "malformed_body"
        yield from (code for code, status in STATUS_BY_CODE.items() if status == 413)
    if requires_idempotency_key(route):
        yield from ("idempotency_key_required", "invalid_idempotency_key")
        yield "idempotency_key_reused"
    yield "internal_error"


def _problem_response(status: int, codes: list[str], path: str) -> dict[str, Any]:
    model = RefusalProblem if REFUSAL_CODES.intersection(codes) else Problem
    listed = ", ".join(f"`{code}`" for code in codes)
    schema = {
        "allOf": [
            {"$ref": _REF.format(model=model.__name__)},
            {"type": "object", "properties": {"code": {"enum": codes}}},
        ]
    }
    examples = {code: {"summary": code, "value": _example(status, code, path)} for code in codes}
    return {
        "description": f"{_phrase(status)}. Codes: {listed}",
        "content": {PROBLEM_JSON: {"schema": schema, "examples": examples}},
    }


def _example(status: int, code: str, path: str) -> dict[str, Any]:
    return {
        "type": f"urn:kassa:problem:{code}",
        "title": code.replace("_", " ").capitalize(),
        "status": status,
        "detail": f"what went wrong, in words ({code})",
        "code": code,
        "instance": path,
    }


# --------------------------------------------------------------------------- helpers


def _by_status(codes: Iterable[str]) -> dict[int, list[str]]:
    grouped: dict[int, list[str]] = {}
    for code in sorted(set(codes)):
        grouped.setdefault(STATUS_BY_CODE[code], []).append(code)
    return dict(sorted(grouped.items()))


def _phrase(status: int | str) -> str:
    return HTTPStatus(int(status)).phrase


def _is_error(status: str) -> bool:
    return status.isdigit() and int(status) >= 400


def _has_parameters(dependant: Dependant) -> bool:
    return any(
        d.path_params or d.query_params or d.header_params or d.cookie_params
        for d in _walk(dependant)
    )


def _walk(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _walk(sub)


def _dependency_of(annotated: Any) -> Callable[..., Any] | None:
    for meta in get_args(annotated)[1:]:
        dependency = getattr(meta, "dependency", None)
        if dependency is not None:
            return dependency  # type: ignore[no-any-return]
    return None


def _add_models(schemas: dict[str, Any], models: Iterable[type[Problem]]) -> None:
    _, defs = models_json_schema([(model, "serialization") for model in models], ref_template=_REF)
    for name, schema in defs.get("$defs", {}).items():
        schemas.setdefault(name, schema)
