"""Customer accounts: one per host-service user, each with a USD balance in the ledger
(a credit-normal liability in micro-USD that may never go below zero by spending)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from kassa.accounts.errors import CustomerAccountExists, CustomerAccountNotFound, InvalidExternalId
from kassa.accounts.tables import customer_account
from kassa.ledger import idempotency
from kassa.ledger.accounts import open_account
from kassa.ledger.idempotency import OK, Request, StoredOutcome
from kassa.ledger.journal import name_accounts
from kassa.ledger.model import AccountKind, NormalSide
from kassa.money import USD

EXTERNAL_ID = re.compile(r"^[A-Za-z0-9._:@-]{1,128}$")


@dataclass(frozen=True, slots=True)
class CustomerAccount:
    id: uuid.UUID
    external_id: str
    ledger_account_id: int
    status: str
    metadata: Mapping[str, Any]
    created_at: datetime


def _customer(row: Row[Any]) -> CustomerAccount:
    return CustomerAccount(
        id=row.id,
        external_id=row.external_id,
        ledger_account_id=row.ledger_account_id,
        status=row.status,
        metadata=json.loads(row.metadata_json) if row.metadata_json else {},
        created_at=row.created_at,
    )


def validate_external_id(external_id: str) -> str:
    if not EXTERNAL_ID.match(external_id):
        raise InvalidExternalId("an external id has 1 to 128 characters from A-Z a-z 0-9 . _ : @ -")
    return external_id


def create(
    conn: Connection,
    *,
    external_id: str,
    now: datetime,
    request: Request | None,
    metadata: Mapping[str, Any] | None = None,
) -> CustomerAccount:
    validate_external_id(external_id)
    claimed = None if request is None else idempotency.claim(conn, request, now)
    if isinstance(claimed, StoredOutcome):
        return get(conn, claimed.resource_uuid)
    account_id = uuid.uuid4()
    ledger = open_account(
        conn,
        code=f"user:{account_id}:USD",
        asset_=USD,
        normal_side=NormalSide.CREDIT,
        kind=AccountKind.USER,
        allow_negative=False,
        owner=str(account_id),
        now=now,
    )
    # The unique external id decides a race between two creates (a concurrent insert waits
    # for the other transaction, then does nothing); the refusal rolls back the ledger account.
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    inserted = conn.execute(
        insert(customer_account)
        .values(
            id=account_id,
            external_id=external_id,
            ledger_account_id=ledger.id,
            status="active",
            metadata_json=json.dumps(dict(metadata), sort_keys=True) if metadata else None,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["external_id"])
        .returning(customer_account.c.id)
    ).scalar_one_or_none()
    if inserted is None:
        raise CustomerAccountExists(f"an account for external id {external_id!r} already exists")
    if claimed is not None:
        idempotency.complete(conn, claimed, OK, str(account_id), None)
    return get(conn, account_id)


def get(conn: Connection, account_id: uuid.UUID) -> CustomerAccount:
    row = conn.execute(select(customer_account).where(customer_account.c.id == account_id)).first()
    if row is None:
        raise CustomerAccountNotFound(f"account {account_id} does not exist")
    return _customer(row)


def get_many(
    conn: Connection, account_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, CustomerAccount]:
    """The accounts among `account_ids` that exist, by id (one query)."""
    if not account_ids:
        return {}
    rows = conn.execute(select(customer_account).where(customer_account.c.id.in_(account_ids)))
    return {row.id: _customer(row) for row in rows}


def get_by_external_id(conn: Connection, external_id: str) -> CustomerAccount:
    row = conn.execute(
        select(customer_account).where(customer_account.c.external_id == external_id)
    ).first()
    if row is None:
        raise CustomerAccountNotFound(f"no account with external id {external_id!r}")
    return _customer(row)


def _external_id_of(conn: Connection, ledger_account_id: int) -> str | None:
    """The external id of the customer whose balance is `ledger_account_id` (ledger refusals
    name a customer's balance by it: see `kassa.ledger.journal.name_accounts`)."""
    external_id: str | None = conn.execute(
        select(customer_account.c.external_id).where(
            customer_account.c.ledger_account_id == ledger_account_id
        )
    ).scalar_one_or_none()
    return external_id


name_accounts(AccountKind.USER, _external_id_of)
