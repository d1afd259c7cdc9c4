"""Log lines as text or JSON, each carrying the context it was written in.

The context lives in a `contextvars` variable, so it follows a request through the event loop
and into the thread pool Starlette runs synchronous endpoints in, and stays per thread in the
worker's loops:

- `bound` adds ids for a block of code: the worker binds the payout it pays, the watcher the
  deposit it credits;
- `request_bound` (the API's request-id middleware) binds a request's id and its ASGI scope; the
  path parameters the router stores in that scope later (``external_id``, ``request_id``,
  ``deposit_id``) become the line's ``account``, ``payout`` and ``deposit``.

Secrets: nothing here logs headers or bodies, and `redact` masks what looks like a Kassa API
key, a bearer token or a URL's password in every formatted line (message and traceback), so a
careless message does not leak one.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]

_PATH_IDS = {"external_id": "account", "request_id": "payout", "deposit_id": "deposit"}
"""Route path parameters that name what a request is about, and the field they become."""

_context: ContextVar[Mapping[str, str] | None] = ContextVar("kassa_log_context", default=None)
_scope: ContextVar[Mapping[str, Any] | None] = ContextVar("kassa_log_scope", default=None)

_SECRETS = (
    (re.compile(r"kassa_[A-Za-z0-9]{12}_[A-Za-z0-9_-]+"), "kassa_***"),
    (re.compile(r"(?i)(bearer\s+)\S+"), r"\1***"),
    (re.compile(r"(://[^:/@\s]+:)[^@\s]+@"), r"\1***@"),
)


def redact(text: str) -> str:
    """``text`` with API keys, bearer tokens and URL passwords masked."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


@contextmanager
def bound(**ids: object) -> Iterator[None]:
    """Log lines written inside the block carry ``ids`` (None values are left out)."""
    added = {name: str(value) for name, value in ids.items() if value is not None}
    token = _context.set({**(_context.get() or {}), **added})
    try:
        yield
    finally:
        _context.reset(token)


@contextmanager
def request_bound(request_id: str, scope: Mapping[str, Any]) -> Iterator[None]:
    """Log lines written while an API request is handled carry its id and path ids."""
    context = _context.set({**(_context.get() or {}), "request_id": request_id})
    scoped = _scope.set(scope)
    try:
        yield
    finally:
        _scope.reset(scoped)
        _context.reset(context)


def current() -> dict[str, str]:
    """The context a line written now carries."""
    fields = dict(_context.get() or {})
    scope = _scope.get()
    if scope is not None:
        params = scope.get("path_params") or {}
        for param, name in _PATH_IDS.items():
            if param in params and name not in fields:
                fields[name] = str(params[param])
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, the context, and
    the traceback as ``exc_info`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        line.update(current())
        if record.exc_info:
            line["exc_info"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The classic line, with the context appended as ``key=value`` pairs."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = current()
        if fields:
            pairs = " ".join(f"{key}={value}" for key, value in fields.items())
            head, newline, rest = text.partition("\n")
            text = f"{head} [{pairs}]{newline}{rest}"
        return redact(text)


def configure(log_format: LogFormat = "text", level: str = "INFO") -> None:
    """Send every log line (uvicorn's too) to stderr in ``log_format``, replacing earlier set-up."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Alembic logs its context at INFO on every revision check (each /v1/health), and httpx
    # every request the watchers and the rate refresher make.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # uvicorn's loggers go through the root handler instead of their own.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
