"""Plumbing for the rate-source tests: recorded exchange answers served by ``httpx.MockTransport``.

``recorded/<source>/`` holds response bodies exactly as each API sends them (JSON, and the HTML
pages a CDN serves instead). A `Wire` runs one source against a handler — a plain function from
request to response, the transport seam httpx offers — and keeps every request the source made,
so tests can say what was asked as well as what came back. Nothing here reaches the internet.

Test modules import `Wire` under ``TYPE_CHECKING`` only (pytest imports conftest itself) and get
one from the ``wire_class`` fixture.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Collection, Coroutine
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import httpx
import pytest

from kassa.pricing.model import Candle, Symbol
from kassa.pricing.sources.base import CandleSource, RateSource, SourceReport

RECORDED = Path(__file__).parent / "recorded"
NOW = datetime(2026, 11, 20, 14, 3, 11, tzinfo=UTC)
"""When the recorded answers were taken (the shared test clock's start)."""

ALL_SYMBOLS: tuple[Symbol, ...] = tuple(Symbol)

Handler = Callable[[httpx.Request], httpx.Response]
T = TypeVar("T")


def to_json(value: Any) -> str:
    """JSON text in which decimals stay exactly as written (``json.dumps`` would refuse them)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(to_json(item) for item in value) + "]"
    return json.dumps(value)


class Wire:
    """One source's fake network for one test."""

    def __init__(self, source: str, make: Callable[[httpx.AsyncClient], object]) -> None:
        self.source = source
        self.folder = RECORDED / source
        self.make = make
        self.requests: list[httpx.Request] = []

    # Recorded answers.

    def body(self, name: str) -> Any:
        """A recorded JSON body, numbers as Decimal, ready to be altered and served."""
        return json.loads((self.folder / name).read_bytes(), parse_float=Decimal, parse_int=Decimal)

    def recorded(self, name: str, status: int = 200) -> httpx.Response:
        """A recorded file served byte for byte, with the content type its exchange uses."""
        kind = "application/json" if name.endswith(".json") else "text/html; charset=UTF-8"
        return httpx.Response(
            status, content=(self.folder / name).read_bytes(), headers={"content-type": kind}
        )

    @staticmethod
    def json(body: Any, status: int = 200) -> httpx.Response:
        return httpx.Response(
            status, content=to_json(body).encode(), headers={"content-type": "application/json"}
        )

    @staticmethod
    def timeout(request: httpx.Request) -> NoReturn:
        raise httpx.ReadTimeout("timed out waiting for the exchange", request=request)

    # Running the source.

    def fetch(
        self, handler: Handler, symbols: Collection[Symbol] = ALL_SYMBOLS, now: datetime = NOW
    ) -> SourceReport:
        async def go(client: httpx.AsyncClient) -> SourceReport:
            source = self.make(client)
            assert isinstance(source, RateSource)
            return await source.fetch(symbols, now)

        return self._run(handler, go)

    def candle_at(self, handler: Handler, symbol: Symbol, at: datetime) -> Candle | None:
        async def go(client: httpx.AsyncClient) -> Candle | None:
            source = self.make(client)
            assert isinstance(source, CandleSource)
            return await source.candle_at(symbol, at)

        return self._run(handler, go)

    def _run(
        self, handler: Handler, go: Callable[[httpx.AsyncClient], Coroutine[Any, Any, T]]
    ) -> T:
        def recording(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return handler(request)

        async def main() -> T:
            async with httpx.AsyncClient(transport=httpx.MockTransport(recording)) as client:
                return await go(client)

        return asyncio.run(main())


@pytest.fixture
def wire_class() -> type[Wire]:
    return Wire
