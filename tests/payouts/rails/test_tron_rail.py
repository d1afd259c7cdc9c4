"""The TRON rail against Kassa's java-tron simulator: real signed TRX and USDT-TRC20 payouts.

Each test has its own hot wallet (a fresh random key) funded by the devnet faucet from the
genesis account, so tests share the session's simulator without sharing balances. The
simulator makes a block every 0.5 s; tests mine on demand (``/debug/mine``) to include a
transaction and to solidify its block (``solid_lag + 1`` blocks), and never assume block
numbers. One test needs a transaction to stay in the pool (``PENDING``) and uses a second,
timer-less simulator served in this process. Signing allocates nothing in the database on
TRON (it locks the hot address's row and checks the funds again), so the tests that do not
look at pending commitments sign inside a throwaway migrated SQLite database where nothing is
in flight.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import coincurve
import httpx
import pytest
import uvicorn
from sqlalchemy import Connection, insert, select, text, update
from tronpy.proto import tron_pb2

from kassa.accounts import service as accounts
from kassa.chains.network import Chain, TronNetwork
from kassa.chains.tron.address import TronAddress, parse_tron_address, tron_address_for_public_key
from kassa.chains.tron.api import TronApi
from kassa.chains.tron.tx import trc20_transfer_calldata, tron_address_for_key
from kassa.clock import ManualClock
from kassa.db import Database, make_engine
from kassa.deposits.settings import ChainsSettings
from kassa.ledger.idempotency import IdempotencyKey, Request
from kassa.ledger.transfers import adjust
from kassa.money import TRX, USD, USDT_TRC20, Asset, Money
from kassa.payouts.rails.base import (
    BroadcastOutcome,
    FeeEstimate,
    HotWalletShort,
    PayoutLine,
    PayoutNotSendable,
    Rail,
    RailUnavailable,
    SignedTx,
    StoredTx,
    TxState,
)
from kassa.payouts.rails.tron import TronRail, transaction_bandwidth
from kassa.payouts.requests import Payouts
from kassa.payouts.settings import PayoutSettings, TronPayoutSettings
from kassa.payouts.signer import LocalKeySigner
from kassa.payouts.tables import payout_nonce, payout_tx, payout_tx_line
from kassa.policy.settings import PolicySettings
from kassa.pricing.model import Symbol
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings
from kassa_dev.devnet.faucet import DevnetEndpoints, Faucet
from kassa_dev.devnet.testing import TronNode
from kassa_dev.devnet.tron import DevnetConfig, create_app

if TYPE_CHECKING:
    from tests.conftest import DatabaseFactory

SUN = 1_000_000


# ------------------------------------------------------------------------------- helpers


class TronChain:
    """A simulator as these tests use it: funds, blocks, balances."""

    def __init__(self, url: str, api: TronApi) -> None:
        self.url = url
        self.api = api
        self.faucet = Faucet(DevnetEndpoints(tron_url=url))
        info = httpx.get(f"{url}/debug/info", timeout=10).json()
        self.usdt = parse_tron_address(info["usdt_contract"])
        self.solid_lag = int(info["solid_lag"])

    def fund(self, address: TronAddress, amount: Money) -> None:
        self.faucet.fund(address.text, amount)

    def mine(self, blocks: int = 1, *, advance_seconds: float = 0) -> None:
        response = httpx.post(
            f"{self.url}/debug/mine",
            json={"blocks": blocks, "advance_seconds": advance_seconds},
            timeout=30,
        )
        response.raise_for_status()

    def solidify(self) -> None:
        """Mine until every block so far is solidified."""
        self.mine(self.solid_lag + 1)

    def trx(self, address: TronAddress) -> int:
        account = self.api.account(address)
        return 0 if account is None else account.balance

    def usdt_of(self, address: TronAddress) -> int:
        return self.api.trc20_balance(self.usdt, address)


def new_address() -> TronAddress:
    return tron_address_for_public_key(coincurve.PrivateKey().public_key.format(compressed=False))


def line(destination: TronAddress, amount: Money) -> PayoutLine:
    return PayoutLine(uuid.uuid4(), destination.text, amount)


def stored(signed: SignedTx, lines: Sequence[PayoutLine]) -> StoredTx:
    """The payout_tx row the worker would keep for ``signed``."""
    return StoredTx(
        id=uuid.uuid4(),
        chain=Chain.TRON,
        txid=signed.txid,
        raw=signed.raw,
        spend_key=signed.spend_key,
        spend=signed.spend,
        fee=signed.fee,
        lines=tuple(lines),
        created_at=datetime.now(UTC),
        broadcast_at=None,
        expires_at=signed.expires_at,
    )


@pytest.fixture
def tron_api(tron_sim: TronNode) -> Iterator[TronApi]:
    with TronApi(tron_sim.url) as api:
        yield api


@pytest.fixture
def tron_chain(tron_sim: TronNode, tron_api: TronApi) -> TronChain:
    return TronChain(tron_sim.url, tron_api)


@pytest.fixture(scope="module")
def tron_quiet_url() -> Iterator[str]:
    """A second simulator, in this process, without a block timer: blocks come only from
    ``/debug/mine``, so a broadcast transaction stays in the pool until the test mines."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(DevnetConfig(block_interval=0)),
            log_level="warning",
            ws="none",
            access_log=False,
        )
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listener]}, name="tron-quiet", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the simulator did not start"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


@pytest.fixture
def tron_hot_key() -> coincurve.PrivateKey:
    return coincurve.PrivateKey()


def make_rail(
    api: TronApi, key: coincurve.PrivateKey, usdt: TronAddress, **settings: int
) -> TronRail:
    return TronRail(
        api,
        LocalKeySigner({Chain.TRON: key}),
        TronNetwork.DEVNET,
        usdt_contract=usdt,
        settings=TronPayoutSettings(**settings),
    )


@pytest.fixture
def tron_rail(
    tron_api: TronApi, tron_chain: TronChain, tron_hot_key: coincurve.PrivateKey
) -> TronRail:
    return make_rail(tron_api, tron_hot_key, tron_chain.usdt)


@pytest.fixture
def tron_conn(sqlite_template: str, tmp_path: Path) -> Iterator[Connection]:
    """A connection for `sign` to a fresh migrated SQLite database that stores nothing: on
    TRON signing allocates nothing, and no payout is in flight there."""
    path = tmp_path / "tron-sign.sqlite3"
    shutil.copyfile(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        yield conn
    engine.dispose()


def pay(
    rail: TronRail, conn: Connection, coin: Asset, lines: Sequence[PayoutLine]
) -> tuple[FeeEstimate, StoredTx]:
    """Estimate, sign and broadcast one payout as the worker does (funds not checked)."""
    estimate = rail.estimate(coin, lines)
    signed = rail.sign(conn, coin, lines, estimate, now=datetime.now(UTC))
    tx = stored(signed, lines)
    assert rail.broadcast(tx).outcome is BroadcastOutcome.ACCEPTED
    return estimate, tx


# ------------------------------------------------------------------------------- tests


def test_the_rail_is_a_rail(tron_rail: TronRail, tron_hot_key: coincurve.PrivateKey) -> None:
    rail: Rail = tron_rail
    assert rail.chain is Chain.TRON
    assert rail.assets == (TRX, USDT_TRC20)
    assert rail.fee_asset == TRX
    assert rail.hot_address() == tron_address_for_key(tron_hot_key).text
    assert rail.dust_limit(USDT_TRC20, new_address().text) == Money(1, USDT_TRC20)
    without_token = TronRail(
        tron_rail.api,
        tron_rail.signer,
        TronNetwork.DEVNET,
        usdt_contract=None,
        settings=TronPayoutSettings(),
    )
    assert without_token.assets == (TRX,)


def test_bandwidth_is_the_protobuf_size_of_the_signed_transaction_plus_the_result_allowance() -> (
    None
):
    """Checked against tronpy's protobuf classes (an encoder independent of the rail's)."""
    owner, to = new_address(), new_address()
    data = trc20_transfer_calldata(to, 5_000_000)
    for call_data, amount, fee_limit in ((None, 1, 0), (None, 10**15, 0), (data, 0, 30_000_000)):
        if call_data is None:
            inner = tron_pb2.TransferContract(
                owner_address=owner.raw, to_address=to.raw, amount=amount
            ).SerializeToString()
            kind, name = tron_pb2.Transaction.Contract.TransferContract, "TransferContract"
        else:
            inner = tron_pb2.TriggerSmartContract(
                owner_address=owner.raw, contract_address=to.raw, data=call_data
            ).SerializeToString()
            kind, name = tron_pb2.Transaction.Contract.TriggerSmartContract, "TriggerSmartContract"
        contract = tron_pb2.Transaction.Contract(type=kind)
        contract.parameter.type_url = f"type.googleapis.com/protocol.{name}"
        contract.parameter.value = inner
        raw = tron_pb2.Transaction.raw(
            ref_block_bytes=b"\x01\x02",
            ref_block_hash=bytes(8),
            expiration=1_800_000_060_000,
            timestamp=1_800_000_000_000,
            contract=[contract],
            fee_limit=fee_limit,
        )
        signed = tron_pb2.Transaction(raw_data=raw, signature=[bytes(65)])
        assert (
            transaction_bandwidth(
                call_data=call_data,
                amount_sun=amount,
                timestamp_ms=1_800_000_000_000,
                expiration_ms=1_800_000_060_000,
                fee_limit_sun=fee_limit,
            )
            == signed.ByteSize() + 64
        )


def test_trx_payouts_are_final_and_cost_what_was_estimated_free_bandwidth_or_burnt(
    tron_chain: TronChain, tron_rail: TronRail, tron_conn: Connection
) -> None:
    hot = parse_tron_address(tron_rail.hot_address())
    payee = new_address()
    tron_chain.fund(hot, Money(50 * SUN, TRX))
    tron_chain.fund(payee, Money(1 * SUN, TRX))  # an existing account: no creation fee
    hot_before = tron_chain.trx(hot)

    # Transfers of 267-268 bytes (the amount is a varint: a byte more from 2**21 sun); the hot
    # account's 600 free bytes a day cover two of them, the third burns its bytes.
    paid: list[tuple[FeeEstimate, StoredTx]] = []
    for sun in (2 * SUN, 3 * SUN, 4 * SUN):
        paid.append(pay(tron_rail, tron_conn, TRX, [line(payee, Money(sun, TRX))]))
        tron_chain.mine()  # the next estimate sees this one's bandwidth used
    estimates = [estimate for estimate, _ in paid]
    assert [e.params["bandwidth_bytes"] for e in estimates] == [267, 268, 268]
    assert [e.total.amount for e in estimates] == [0, 0, 268 * 1000]
    assert all(e.params["creates_account"] == 0 for e in estimates)

    first = tron_rail.status(paid[0][1])
    assert first.state is TxState.MINED
    assert first.block_number is not None and first.block_hash is not None
    tron_chain.solidify()
    statuses = [tron_rail.status(tx) for _, tx in paid]
    assert [s.state for s in statuses] == [TxState.FINAL] * 3
    assert [s.fee_paid for s in statuses] == [e.total for e in estimates]
    assert statuses[0].confirmations > tron_chain.solid_lag
    assert tron_chain.trx(payee) == 1 * SUN + 9 * SUN
    assert tron_chain.trx(hot) == hot_before - 9 * SUN - 268 * 1000


def test_payout_to_a_new_account_includes_the_creation_fees_and_a_rebroadcast_pays_once(
    tron_chain: TronChain, tron_rail: TronRail, tron_conn: Connection
) -> None:
    hot = parse_tron_address(tron_rail.hot_address())
    payee = new_address()
    tron_chain.fund(hot, Money(20 * SUN, TRX))
    hot_before = tron_chain.trx(hot)
    lines = [line(payee, Money(5 * SUN, TRX))]

    estimate = tron_rail.estimate(TRX, lines)
    parameters = tron_chain.api.chain_parameters()
    assert estimate.params["creates_account"] == 1
    # java-tron: the flat getCreateAccountFee instead of the bytes, plus the transfer's own fee.
    assert estimate.params["bandwidth_fee"] == parameters["getCreateAccountFee"] == 100_000
    assert estimate.params["account_create_fee"] == 1_000_000
    assert estimate.total == Money(1_100_000, TRX)

    signed = tron_rail.sign(tron_conn, TRX, lines, estimate, now=datetime.now(UTC))
    assert signed.spend_key == f"tron:{signed.txid}"
    assert signed.spend["txid"] == signed.txid
    assert signed.fee == estimate.total
    tx = stored(signed, lines)
    assert tron_rail.status(tx).state is TxState.UNKNOWN  # never sent yet
    assert tron_rail.broadcast(tx).outcome is BroadcastOutcome.ACCEPTED
    again = tron_rail.broadcast(tx)  # the node has it in its pool
    assert again.outcome is BroadcastOutcome.ACCEPTED
    assert "DUP_TRANSACTION_ERROR" in again.detail
    tron_chain.mine()
    assert tron_rail.broadcast(tx).outcome is BroadcastOutcome.ACCEPTED  # in a block now
    tron_chain.solidify()
    assert tron_rail.broadcast(tx).outcome is BroadcastOutcome.ACCEPTED  # and solidified

    status = tron_rail.status(tx)
    assert status.state is TxState.FINAL
    assert status.fee_paid == estimate.total
    assert tron_chain.trx(payee) == 5 * SUN
    assert tron_chain.trx(hot) == hot_before - 5 * SUN - 1_100_000


def test_usdt_payout_is_final_by_the_token_transfer_event(
    tron_chain: TronChain, tron_rail: TronRail, tron_conn: Connection
) -> None:
    hot = parse_tron_address(tron_rail.hot_address())
    payee = new_address()
    tron_chain.fund(hot, Money(40 * SUN, TRX))
    tron_chain.fund(hot, Money(10_000_000, USDT_TRC20))
    hot_trx = tron_chain.trx(hot)
    lines = [line(payee, Money(7_250_000, USDT_TRC20))]

    estimate, tx = pay(tron_rail, tron_conn, USDT_TRC20, lines)
    params = estimate.params
    assert params["energy"] > 0
    assert params["energy_price"] == tron_chain.api.chain_parameters()["getEnergyFee"]
    assert params["energy_fee"] == params["energy"] * params["energy_price"]
    assert params["bandwidth_fee"] == 0  # 345 bytes, inside the free daily bandwidth
    assert estimate.total.amount == params["energy_fee"]
    assert params["energy_fee"] <= params["fee_limit"] <= TronPayoutSettings().trc20_fee_limit_sun
    assert tx.spend["fee_limit"] == params["fee_limit"]
    assert tx.fee == Money(params["fee_limit"], TRX)

    tron_chain.mine()
    assert tron_rail.status(tx).state is TxState.MINED
    tron_chain.solidify()
    status = tron_rail.status(tx)
    assert status.state is TxState.FINAL
    assert status.fee_paid == estimate.total
    assert tron_chain.usdt_of(payee) == 7_250_000
    assert tron_chain.usdt_of(hot) == 2_750_000
    assert tron_chain.trx(hot) == hot_trx - estimate.total.amount

    # The verdict comes from the Transfer event, not from the receipt alone: the same
    # successful transaction judged against a different amount did not pay it.
    other = stored_with_amount(tx, Money(7_250_001, USDT_TRC20))
    judged = tron_rail.status(other)
    assert judged.state is TxState.FAILED
    assert "no Transfer event" in judged.detail


def stored_with_amount(tx: StoredTx, amount: Money) -> StoredTx:
    first = tx.lines[0]
    return StoredTx(
        id=tx.id,
        chain=tx.chain,
        txid=tx.txid,
        raw=tx.raw,
        spend_key=tx.spend_key,
        spend=tx.spend,
        fee=tx.fee,
        lines=(PayoutLine(first.request_id, first.destination, amount),),
        created_at=tx.created_at,
        broadcast_at=tx.broadcast_at,
        expires_at=tx.expires_at,
    )


def test_trc20_transfer_reverted_on_chain_is_failed_with_the_fee_it_burnt(
    tron_chain: TronChain, tron_rail: TronRail, tron_conn: Connection
) -> None:
    hot = parse_tron_address(tron_rail.hot_address())
    payee = new_address()
    tron_chain.fund(hot, Money(40 * SUN, TRX))
    tron_chain.fund(hot, Money(5_000_000, USDT_TRC20))
    # Two payouts of 3 USDT from 5, the first never stored (so not counted in flight): the
    # second is signed, and included after the first it reverts.
    signed_both: list[StoredTx] = []
    for payee_of in (new_address(), payee):
        lines = [line(payee_of, Money(3_000_000, USDT_TRC20))]
        estimate = tron_rail.estimate(USDT_TRC20, lines)
        signed = tron_rail.sign(tron_conn, USDT_TRC20, lines, estimate, now=datetime.now(UTC))
        signed_both.append(stored(signed, lines))
    first, tx = signed_both
    assert tron_rail.broadcast(first).outcome is BroadcastOutcome.ACCEPTED
    tron_chain.mine()
    hot_trx = tron_chain.trx(hot)
    assert tron_rail.broadcast(tx).outcome is BroadcastOutcome.ACCEPTED  # reverts are included
    tron_chain.mine()
    tron_chain.solidify()

    assert tron_rail.status(first).state is TxState.FINAL
    status = tron_rail.status(tx)
    assert status.state is TxState.FAILED
    assert "REVERT" in status.detail
    assert status.fee_paid is not None and status.fee_paid.is_positive
    assert tron_chain.trx(hot) == hot_trx - status.fee_paid.amount
    assert tron_chain.usdt_of(payee) == 0
    assert tron_chain.usdt_of(hot) == 2_000_000


def test_an_expired_transaction_is_dead_once_its_expiry_is_solidified(
    tron_chain: TronChain,
    tron_api: TronApi,
    tron_hot_key: coincurve.PrivateKey,
    tron_conn: Connection,
) -> None:
    rail = make_rail(tron_api, tron_hot_key, tron_chain.usdt, expiration_seconds=10)
    hot = parse_tron_address(rail.hot_address())
    payee = new_address()
    tron_chain.fund(hot, Money(10 * SUN, TRX))
    lines = [line(payee, Money(1 * SUN, TRX))]
    signed = rail.sign(tron_conn, TRX, lines, rail.estimate(TRX, lines), now=datetime.now(UTC))
    tx = stored(signed, lines)
    # Signed on the head block, dated by its time, expiring 10 s later.
    raw = json.loads(signed.raw)["raw_data"]
    reference = tron_api.block_by_num(int(signed.spend["ref_block"][:16], 16))
    assert reference is not None and reference.block_id == signed.spend["ref_block"]
    assert raw["timestamp"] == reference.timestamp_ms
    expiration_ms = reference.timestamp_ms + 10_000
    assert raw["expiration"] == signed.spend["expiration_ms"] == expiration_ms
    assert signed.expires_at == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(
        milliseconds=expiration_ms
    )
    assert rail.status(tx).state is TxState.UNKNOWN  # not sent, not expired: send it

    # Chain time passes the expiration: the head block is past it, the solidified one not yet.
    tron_chain.mine(advance_seconds=11)
    assert tron_api.now_block().timestamp_ms >= expiration_ms
    late = rail.broadcast(tx)
    assert late.outcome is BroadcastOutcome.REJECTED
    assert "TRANSACTION_EXPIRATION_ERROR" in late.detail
    assert rail.status(tx).state is TxState.UNKNOWN  # not proven yet: a fork could hold it

    tron_chain.solidify()
    dead = rail.status(tx)
    assert dead.state is TxState.DEAD
    assert "expired" in dead.detail
    assert rail.broadcast(tx).outcome is BroadcastOutcome.REJECTED
    assert rail.replacement(tron_conn, tx, bump_percent=25, now=datetime.now(UTC)) is None
    assert tron_chain.trx(payee) == 0


def test_payouts_the_chain_refuses_are_not_sendable(
    tron_chain: TronChain, tron_rail: TronRail, tron_conn: Connection
) -> None:
    hot = parse_tron_address(tron_rail.hot_address())
    tron_chain.fund(hot, Money(5 * SUN, TRX))
    estimate = tron_rail.estimate(TRX, [line(new_address(), Money(1 * SUN, TRX))])
    for destination, reason in (
        (hot.text, "hot wallet itself"),
        (tron_chain.usdt.text, "smart contract"),
        ("T9yD14Nj9j7xAB4dbGeiX9h8unkKHxuWwb", "zero address"),
        ("not-an-address", "not a TRON address"),
    ):
        lines = [PayoutLine(uuid.uuid4(), destination, Money(1 * SUN, TRX))]
        with pytest.raises(PayoutNotSendable, match=reason):
            tron_rail.sign(tron_conn, TRX, lines, estimate, now=datetime.now(UTC))
    token_lines = [PayoutLine(uuid.uuid4(), tron_chain.usdt.text, Money(1, USDT_TRC20))]
    with pytest.raises(PayoutNotSendable, match="USDT contract itself"):
        tron_rail.estimate(USDT_TRC20, token_lines)


# ------------------------------------------------------------------------------- funds


def store_in_flight(
    db: Database, clock: ManualClock, signed: SignedTx, coin: Asset, payout: PayoutLine
) -> uuid.UUID:
    """Store ``signed`` as the worker does (status 'signed'), paying a real payout request."""
    with db.transaction() as conn:
        return store_signed(conn, clock.now(conn), signed, coin, payout)


def store_signed(
    conn: Connection, now: datetime, signed: SignedTx, coin: Asset, payout: PayoutLine
) -> uuid.UUID:
    """The payout_tx row and line the worker stores in its signing transaction."""
    tx_id = uuid.uuid4()
    conn.execute(
        insert(payout_tx).values(
            id=tx_id,
            chain=Chain.TRON.value,
            asset=coin.code.value,
            txid=signed.txid,
            spend_key=signed.spend_key,
            raw=signed.raw,
            spend=signed.spend_json(),
            fee_native=signed.fee.amount,
            fee_asset=signed.fee.asset.code.value,
            fee_estimate="{}",
            status="signed",
            expires_at=signed.expires_at,
            created_at=now,
            updated_at=now,
        )
    )
    conn.execute(
        insert(payout_tx_line).values(
            tx_id=tx_id,
            request_id=payout.request_id,
            destination=payout.destination,
            amount_native=payout.amount.amount,
            fee_share_native=signed.fee.amount,
        )
    )
    return tx_id


def payout_request(db: Database, clock: ManualClock, destination: TronAddress) -> uuid.UUID:
    """A real USDT-TRC20 withdrawal request for payout_tx_line to point at (TRX payouts too:
    Kassa pays no TRX withdrawals, and the rail counts the ``payout_tx`` row's asset)."""
    pricing = PricingService(
        db,
        clock,
        PricingSettings(static_rates={Symbol.TRX: Decimal("0.25"), Symbol.USDT: Decimal(1)}),
    )
    assert not pricing.refresh([Symbol.TRX, Symbol.USDT]).missing
    payouts = Payouts(
        database=db,
        clock=clock,
        pricing=pricing,
        policy=PolicySettings().load(),
        settings=PayoutSettings(),
        chains=ChainsSettings(),
    )
    with db.transaction() as conn:
        now = clock.now(conn)
        account = accounts.create(
            conn, external_id=f"c-{uuid.uuid4().hex[:8]}", now=now, request=None
        )
        adjust(
            conn,
            account_id=account.ledger_account_id,
            amount=Money.parse("100.00", USD),
            direction="credit",
            reason="test funds",
            actor="test",
            now=now,
            request=None,
        )
    request = payouts.request_withdrawal(
        account,
        Money.parse("25.00", USD),
        USDT_TRC20,
        destination.text,
        request=Request.of(IdempotencyKey("test", uuid.uuid4().hex), "payouts.withdraw", {}),
        actor="test",
    )
    return request.id


def test_check_funds_counts_the_balance_and_the_payouts_in_flight(
    db: Database,
    clock: ManualClock,
    tron_chain: TronChain,
    tron_rail: TronRail,
    tron_conn: Connection,
) -> None:
    hot = parse_tron_address(tron_rail.hot_address())
    payee = new_address()
    four_trx = [line(payee, Money(4 * SUN, TRX))]
    thirty_trx = [line(payee, Money(30 * SUN, TRX))]
    usdt = [line(payee, Money(1_500_000, USDT_TRC20))]

    with db.transaction() as conn, pytest.raises(HotWalletShort, match="no account on chain"):
        tron_rail.check_funds(conn, TRX, four_trx)

    tron_chain.fund(hot, Money(6 * SUN, TRX))
    tron_chain.fund(payee, Money(1 * SUN, TRX))
    with db.transaction() as conn:
        tron_rail.check_funds(conn, TRX, four_trx)  # 6 TRX held, 4 TRX and no fee needed
        with pytest.raises(HotWalletShort, match=r"holds 6\.00 TRX; this payout needs 7\.00 TRX"):
            tron_rail.check_funds(conn, TRX, [line(payee, Money(7 * SUN, TRX))])
        with pytest.raises(HotWalletShort, match=r"holds 0\.00 USDT-TRC20.*send at least 1\.50"):
            tron_rail.check_funds(conn, USDT_TRC20, usdt)

    # USDT needs the tokens and TRX for the fee limit (about 25 TRX for a new token holder).
    tron_chain.fund(hot, Money(2_000_000, USDT_TRC20))
    with db.transaction() as conn, pytest.raises(HotWalletShort, match="may be up to"):
        tron_rail.check_funds(conn, USDT_TRC20, usdt)
    tron_chain.fund(hot, Money(40 * SUN, TRX))
    with db.transaction() as conn:
        tron_rail.check_funds(conn, USDT_TRC20, usdt)
        tron_rail.check_funds(conn, TRX, thirty_trx)

    # A 1 USDT payout signed and stored, not yet confirmed: its tokens and its fee limit are
    # spoken for.
    in_flight = PayoutLine(
        payout_request(db, clock, payee), payee.text, Money(1_000_000, USDT_TRC20)
    )
    estimate = tron_rail.estimate(USDT_TRC20, [in_flight])
    signed = tron_rail.sign(tron_conn, USDT_TRC20, [in_flight], estimate, now=datetime.now(UTC))
    tx_id = store_in_flight(db, clock, signed, USDT_TRC20, in_flight)
    committed_fee = signed.fee.format()
    with db.transaction() as conn:
        with pytest.raises(
            HotWalletShort, match=r"holds 2\.00 USDT-TRC20 \(1\.00 USDT-TRC20 of it committed"
        ):
            tron_rail.check_funds(conn, USDT_TRC20, usdt)
        with pytest.raises(
            HotWalletShort,
            match=rf"\({committed_fee} TRX of it committed to 1 unconfirmed payout",
        ):
            tron_rail.check_funds(conn, TRX, thirty_trx)

    # Once it is dead, what it would have spent is free again.
    with db.transaction() as conn:
        conn.execute(update(payout_tx).where(payout_tx.c.id == tx_id).values(status="dead"))
        tron_rail.check_funds(conn, USDT_TRC20, usdt)
        tron_rail.check_funds(conn, TRX, thirty_trx)


@pytest.mark.parametrize(
    ("coin", "trx", "usdt", "amount"),
    [(TRX, 6 * SUN, 0, 4 * SUN), (USDT_TRC20, 80 * SUN, 5_000_000, 3_000_000)],
    ids=["trx", "usdt"],
)
def test_sign_checks_the_funds_again_so_two_payouts_both_checked_do_not_overspend(
    db: Database,
    clock: ManualClock,
    tron_chain: TronChain,
    tron_rail: TronRail,
    coin: Asset,
    trx: int,
    usdt: int,
    amount: int,
) -> None:
    # Two workers each passed check_funds (in its own transaction) for a wallet that pays only
    # one of the two payouts; then each signs and stores in its signing transaction.
    hot = parse_tron_address(tron_rail.hot_address())
    payee = new_address()
    tron_chain.fund(hot, Money(trx, TRX))
    tron_chain.fund(payee, Money(1 * SUN, TRX))  # an existing account: no creation fee
    if usdt:
        tron_chain.fund(hot, Money(usdt, USDT_TRC20))
    first, second = (
        PayoutLine(payout_request(db, clock, payee), payee.text, Money(amount, coin))
        for _ in range(2)
    )
    estimates = [tron_rail.estimate(coin, [payout]) for payout in (first, second)]
    for payout in (first, second):
        with db.transaction() as conn:
            tron_rail.check_funds(conn, coin, [payout])

    with db.transaction() as conn:
        now = clock.now(conn)
        signed = tron_rail.sign(conn, coin, [first], estimates[0], now=now)
        store_signed(conn, now, signed, coin, first)
    with db.transaction() as conn, pytest.raises(HotWalletShort) as short:
        tron_rail.sign(conn, coin, [second], estimates[1], now=clock.now(conn))
        pytest.fail("signed a payout the hot wallet cannot pay besides the first")
    assert "of it committed to" in short.value.detail
    assert f"to {hot.text}" in short.value.detail
    with db.transaction() as conn:
        assert conn.execute(select(payout_tx.c.txid)).scalars().all() == [signed.txid]
        # The lock row of the hot address: one per address, it holds nothing.
        rows = conn.execute(select(payout_nonce.c.chain, payout_nonce.c.address)).all()
        assert [tuple(row) for row in rows] == [("tron", hot.text)]


def lock_waiter_seen(db: Database, timeout: float = 5) -> bool:
    """Whether a session of ``db``'s PostgreSQL database waits for a lock within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.transaction() as conn:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
        if waiting:
            return True
        time.sleep(0.02)
    return False


def test_a_signer_waits_for_the_other_to_commit_then_sees_its_payout(
    pg_databases: DatabaseFactory,
    clock: ManualClock,
    tron_sim: TronNode,
    tron_chain: TronChain,
    tron_hot_key: coincurve.PrivateKey,
) -> None:
    # The same race on PostgreSQL with the two signing transactions open at once: the first
    # signs and stores and keeps its transaction open until the second waits for the hot
    # address's lock; once the first commits, the second sees its payout and refuses.
    db = pg_databases.new()
    with TronApi(tron_sim.url) as first_api, TronApi(tron_sim.url) as second_api:
        workers = [make_rail(api, tron_hot_key, tron_chain.usdt) for api in (first_api, second_api)]
        hot = parse_tron_address(workers[0].hot_address())
        tron_chain.fund(hot, Money(6 * SUN, TRX))
        payouts: list[PayoutLine] = []
        for _ in range(2):
            payee = new_address()
            tron_chain.fund(payee, Money(1 * SUN, TRX))  # existing accounts: no creation fee
            payouts.append(
                PayoutLine(payout_request(db, clock, payee), payee.text, Money(4 * SUN, TRX))
            )
        estimates = [rail.estimate(TRX, [p]) for rail, p in zip(workers, payouts, strict=True)]
        for rail, payout in zip(workers, payouts, strict=True):
            with db.transaction() as conn:
                rail.check_funds(conn, TRX, [payout])
        first_stored = threading.Event()
        outcome: dict[str, object] = {}

        def sign_and_store(index: int) -> SignedTx:
            with db.transaction() as conn:
                now = clock.now(conn)
                tx = workers[index].sign(conn, TRX, [payouts[index]], estimates[index], now=now)
                store_signed(conn, now, tx, TRX, payouts[index])
                if index == 0:
                    first_stored.set()
                    outcome["second waited"] = lock_waiter_seen(db)
            return tx

        def first() -> None:
            try:
                outcome["first"] = sign_and_store(0)
            except BaseException as error:  # pragma: no cover - reported below
                first_stored.set()
                outcome["first"] = error

        def second() -> None:
            first_stored.wait(timeout=30)
            try:
                outcome["second"] = sign_and_store(1)
            except BaseException as error:
                outcome["second"] = error

        threads = [threading.Thread(target=first), threading.Thread(target=second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    signed = outcome["first"]
    assert isinstance(signed, SignedTx), signed
    assert outcome["second waited"] is True
    short = outcome["second"]
    assert isinstance(short, HotWalletShort), short
    assert "committed to 1 unconfirmed payout" in short.detail
    with db.transaction() as conn:
        assert conn.execute(select(payout_tx.c.txid)).scalars().all() == [signed.txid]


def test_a_usdt_transfer_the_token_would_revert_cannot_be_priced(
    tron_chain: TronChain, tron_rail: TronRail
) -> None:
    hot = parse_tron_address(tron_rail.hot_address())
    tron_chain.fund(hot, Money(5 * SUN, TRX))
    with pytest.raises(RailUnavailable, match=r"would revert.*holds 0\.00 USDT-TRC20"):
        tron_rail.estimate(USDT_TRC20, [line(new_address(), Money(1_000_000, USDT_TRC20))])


def test_a_payout_in_the_pool_is_pending_and_one_the_node_refused_is_unknown(
    tron_quiet_url: str, tron_hot_key: coincurve.PrivateKey, tron_conn: Connection
) -> None:
    with TronApi(tron_quiet_url) as api:
        chain = TronChain(tron_quiet_url, api)
        rail = make_rail(api, tron_hot_key, chain.usdt)
        hot = parse_tron_address(rail.hot_address())
        payee = new_address()
        chain.fund(hot, Money(5 * SUN, TRX))
        chain.fund(payee, Money(1 * SUN, TRX))  # an existing account: no creation fee

        # Two payouts of 3 TRX from 5, the first never stored (so not counted in flight): the
        # second is signed, and once the first is in a block the node refuses it.
        first_lines = [line(payee, Money(3 * SUN, TRX))]
        pay(rail, tron_conn, TRX, first_lines)
        too_much = [line(new_address(), Money(3 * SUN, TRX))]
        refused = stored(
            rail.sign(
                tron_conn, TRX, too_much, rail.estimate(TRX, too_much), now=datetime.now(UTC)
            ),
            too_much,
        )
        chain.mine()
        answer = rail.broadcast(refused)
        assert answer.outcome is BroadcastOutcome.REJECTED
        assert "balance is not sufficient" in answer.detail
        assert rail.status(refused).state is TxState.UNKNOWN

        estimate, tx = pay(rail, tron_conn, TRX, [line(payee, Money(1 * SUN, TRX))])
        pending = api.pending_transaction(tx.txid)
        assert pending is not None and pending.txid == tx.txid
        assert rail.status(tx).state is TxState.PENDING
        chain.mine()
        assert api.pending_transaction(tx.txid) is None
        assert rail.status(tx).state is TxState.MINED
        chain.solidify()
        final = rail.status(tx)
        assert final.state is TxState.FINAL
        assert final.fee_paid == estimate.total
        assert chain.trx(payee) == 1 * SUN + 3 * SUN + 1 * SUN
