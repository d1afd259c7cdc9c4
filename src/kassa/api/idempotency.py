"""The `Idempotency-Key` header, required on every POST.

The key is scoped to the calling API key and handed to the ledger, which stores the outcome
under it in the same transaction as the effect. A retry with the same key and the same request
gets the same resource (or the same refusal) with the same status; the same key with a different
request is refused with `idempotency_key_reused`. The fingerprint covers the normalised request
(amounts in minor units), so "12.5" and "12.50" are the same request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header

from kassa.api.auth import AnyKey
from kassa.api.errors import IdempotencyKeyRequired
from kassa.ledger.idempotency import IdempotencyKey, Request


@dataclass(frozen=True, slots=True)
class Idempotency:
    key: IdempotencyKey

    def request(self, operation: str, params: Mapping[str, Any]) -> Request:
        return Request.of(self.key, f"api.{operation}", params)


def idempotency(
    caller: AnyKey,
    header: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Required on every POST: one key per intended operation (a UUID, say); "
            "retries of that operation reuse it.",
        ),
    ] = None,
) -> Idempotency:
    if header is None:
        raise IdempotencyKeyRequired(
            "every POST needs an Idempotency-Key header (for example a fresh UUID); "
            "retries of the same request reuse it"
        )
    return Idempotency(IdempotencyKey(str(caller.id), header))


Idem = Annotated[Idempotency, Depends(idempotency)]
