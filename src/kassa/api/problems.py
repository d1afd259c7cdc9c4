"""Errors as RFC 9457 problem details — the one place error codes become HTTP statuses.

Every error body is `application/problem+json`:
`{type, title, status, detail, code, instance}`; `code` is the stable machine-readable name
(`type` is the same code as a URN, so it never points at a page that might move). Validation
errors add `errors: [{loc, message, type}]`.

Status policy:
  400  a malformed request header (Idempotency-Key missing or unusable)
  401  no key, an unknown key, a revoked key
  403  the key lacks the scope (or is bound to an account and tried something account-wide)
  404  no such resource — also a resource that exists but belongs to another customer account
       when the key is bound to one: a bound key must not learn which other ids exist
  409  the request conflicts with current state: duplicates, insufficient funds, frozen
       accounts, holds no longer pending, an idempotency key reused for another request;
       spending from a suspended or terminated account; activations no longer pending;
       refunds and withdrawals the policy refuses or over the account's daily limits
  413  the request body is larger than the configured limit (refused before it is read)
  422  the request is well-formed JSON but its content is invalid (amounts, ids, ranges)
  502  a chain node failed or answered something unusable
  503  no trustworthy rate (every source down, or no history near the asked time); /readyz
       when the database does not answer or is not at this server's migration head
  500  a bug; `ledger_invariant_broken` means the ledger stopped itself on purpose
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from kassa.errors import Conflict, InvalidRequest, KassaError, NotFound
from kassa.money import MoneyError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

STATUS_BY_CODE: Mapping[str, int] = {
    # 400: request headers
    "idempotency_key_required": 400,
    "invalid_idempotency_key": 400,
    # 400: a body that is not JSON at all (FastAPI cannot parse it)
    "malformed_body": 400,
    # 401 / 403: who is calling and what they may do
    "unauthenticated": 401,
    "forbidden": 403,
    # 404
    "not_found": 404,
    "account_not_found": 404,
    "hold_not_found": 404,
    "transaction_not_found": 404,
    "ledger_account_not_found": 404,
    "api_key_not_found": 404,
    "rate_lock_not_found": 404,
    "payout_request_not_found": 404,
    "scenario_clock_disabled": 404,
    "devnet_market_disabled": 404,
    "topup_not_found": 404,
    "deposit_not_found": 404,
    "quote_not_found": 404,
    "activation_not_found": 404,
    "dispute_not_found": 404,
    "dispute_subject_not_found": 404,
    "webhook_endpoint_not_found": 404,
    "webhook_delivery_not_found": 404,
    "event_not_found": 404,
    "method_not_allowed": 405,
    # 409: conflicts with the current state
    "conflict": 409,
    "account_exists": 409,
    "insufficient_funds": 409,
    "account_frozen": 409,
    "hold_already_resolved": 409,
    "hold_expired": 409,
    "already_reversed": 409,
    "idempotency_key_reused": 409,
    "watcher_busy": 409,
    "refund_refused": 409,
    "withdrawal_refused": 409,
    "topup_not_credited": 409,
    "payout_request_not_pending": 409,
    "payout_already_approved": 409,
    "payout_repricing_refused": 409,
    "payout_limit_exceeded": 409,
    "quote_expired": 409,
    "quote_already_used": 409,
    "quote_mismatch": 409,
    "hold_owned_by_payout": 409,
    "hot_wallet_short": 409,
    "payout_not_sendable": 409,
    "rail_unavailable": 503,
    "btc_hot_wallet_reorg": 503,
    "signer_error": 500,
    "tron_call_refused": 502,
    "account_suspended": 409,
    "account_terminated": 409,
    "illegal_account_state_transition": 409,
    "usage_event_conflict": 409,
    "activation_expired": 409,
    "activation_fulfilled": 409,
    "activation_cancelled": 409,
    "dispute_subject_not_disputable": 409,
    "dispute_already_open": 409,
    "dispute_already_resolved": 409,
    "dispute_window_closed": 409,
    # 422: invalid content
    "validation_error": 422,
    "invalid_request": 422,
    "invalid_amount": 422,
    "amount_out_of_range": 422,
    "unknown_asset": 422,
    "asset_mismatch": 422,
    "money_error": 422,
    "invalid_external_id": 422,
    "invalid_cursor": 422,
    "invalid_scope": 422,
    "invalid_key_name": 422,
    "capture_exceeds_hold": 422,
    "unbalanced_transaction": 422,
    "unknown_symbol": 422,
    "chain_not_enabled": 422,
    "destination_is_deposit_address": 422,
    "asset_not_payable": 422,
    "invalid_policy": 422,
    "invalid_address": 422,
    "invalid_extended_key": 422,
    "invalid_transaction": 422,
    "dust_output": 422,
    "insufficient_inputs": 422,
    "invalid_time": 422,
    "invalid_period": 422,
    "invalid_account_state": 422,
    "invalid_reason_code": 422,
    "invalid_state_reason": 422,
    "invalid_usage_batch": 422,
    "invalid_usage_event": 422,
    "invalid_activation": 422,
    "payout_reason_required": 422,
    "invalid_dispute": 422,
    "dispute_outcome_not_allowed": 422,
    "invalid_webhook_endpoint": 422,
    "body_too_deep": 422,
    # 413: a request body over the configured limit (max_body_bytes)
    "payload_too_large": 413,
    # 502: a chain node answered wrongly or not at all
    "tron_node_error": 502,
    "tron_node_unreachable": 502,
    "tron_api_error": 502,
    "tron_unexpected_answer": 502,
    "tron_block_not_found": 502,
    "tron_chain_moved": 502,
    # 503: a dependency outside Kassa cannot answer now; retrying later may work
    "no_rate": 503,
    "not_ready": 503,
    # 500
    "kassa_error": 500,
    "ledger_invariant_broken": 500,
    "illegal_deposit_transition": 500,
    "deep_reorg": 500,
    "illegal_activation_transition": 500,
    "internal_error": 500,
}

_MONEY_TITLES: Mapping[str, str] = {
    "invalid_amount": "Invalid amount",
    "amount_out_of_range": "Amount out of range",
    "unknown_asset": "Unknown asset",
    "asset_mismatch": "Wrong asset",
}

#: Validation error types raised by our own schema validators; such a 422 carries that code.
SCHEMA_CODES = frozenset({"invalid_amount"})


def status_for(error: KassaError) -> int:
    """The table above; an error nobody added yet falls back on its base class."""
    if error.code in STATUS_BY_CODE:
        return STATUS_BY_CODE[error.code]
    for base, status in ((NotFound, 404), (Conflict, 409), (InvalidRequest, 422)):
        if isinstance(error, base):
            return status
    return 500


def problem_body(
    path: str,
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"urn:kassa:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "instance": path,
    }
    body.update(extra or {})
    return body


def problem(
    request: Request,
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    body = problem_body(
        request.url.path, status=status, code=code, title=title, detail=detail, extra=extra
    )
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def error_body(path: str, error: KassaError) -> dict[str, Any]:
    """The problem body `error` is answered with on `path`."""
    return problem_body(
        path,
        status=status_for(error),
        code=error.code,
        title=error.title,
        detail=error.detail,
        extra=error.problem_extra(),
    )


def error_response(request: Request, error: KassaError) -> JSONResponse:
    status = status_for(error)
    if status >= 500:
        log.error("request %s failed: %s: %s", request.url.path, error.code, error.detail)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        error_body(request.url.path, error),
        status_code=status,
        headers=headers,
        media_type=PROBLEM_JSON,
    )


def _money_error(request: Request, error: MoneyError) -> JSONResponse:
    return problem(
        request,
        status=STATUS_BY_CODE.get(error.code, 422),
        code=error.code,
        title=_MONEY_TITLES.get(error.code, "Invalid amount"),
        detail=str(error),
    )


def _loc(loc: Sequence[Any]) -> str:
    return ".".join(str(part) for part in loc)


def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    errors = [
        {"loc": list(e.get("loc", ())), "message": str(e.get("msg", "")), "type": e.get("type")}
        for e in error.errors()
    ]
    first = errors[0] if errors else {"loc": [], "message": "invalid request", "type": None}
    code = first["type"] if first["type"] in SCHEMA_CODES else "validation_error"
    return problem(
        request,
        status=422,
        code=str(code),
        title="Invalid amount" if code == "invalid_amount" else "Validation error",
        detail=f"{_loc(first['loc'])}: {first['message']}",
        extra={"errors": errors},
    )


def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
    status = error.status_code
    code = {400: "malformed_body", 404: "not_found", 405: "method_not_allowed"}.get(
        status, "http_error"
    )
    detail = f"no route {request.method} {request.url.path}" if status == 404 else str(error.detail)
    return problem(
        request,
        status=status,
        code=code,
        title=HTTPStatus(status).phrase,
        detail=detail,
        headers=error.headers,
    )


def _unexpected(request: Request, error: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
    return problem(
        request,
        status=500,
        code="internal_error",
        title="Internal error",
        detail="the server failed to handle this request; it has been logged",
    )


def install(app: FastAPI) -> None:
    app.exception_handler(KassaError)(error_response)
    app.exception_handler(MoneyError)(_money_error)
    app.exception_handler(RequestValidationError)(_validation_error)
    app.exception_handler(StarletteHTTPException)(_http_error)
    app.exception_handler(Exception)(_unexpected)
