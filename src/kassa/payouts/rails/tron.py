"""The TRON rail: TRX and USDT (TRC-20) payouts from one hot address.

Design:
* One transaction per payout: TRON has no batching (a transaction carries one contract), so a
  rail call gets exactly one `PayoutLine`.
* Fees are priced the way java-tron will charge them (bandwidth, account creation, energy),
  from the chain's own figures: `kassa.payouts.rails.tron_fees`. ``FeeEstimate.total`` is what
  the chain is expected to burn; ``SignedTx.fee`` is that total for TRX, and for TRC-20 the fee
  limit plus the bandwidth priced: the most the transaction may burn.
* The spend identity is the transaction itself (``tron:<txid>``): TRON has no nonce. Every
  transaction names a reference block (TAPoS) and an expiration; it is signed on the node's
  head block, dated by the head block's time, expiring ``expiration_seconds`` later. java-tron
  accepts a transaction into a block only while its expiration is after the parent block's
  time, which is what makes a lost payout *provably* dead.
* ``status`` (`kassa.payouts.rails.tron_status`) is ``MINED`` until the solidified chain holds
  the transaction, then ``FINAL``, or ``FAILED`` without the token's exact ``Transfer`` log; it
  is ``DEAD`` only once the solidified block's time has passed its expiration without it.
* ``check_funds`` compares the head balances (TRX, and the token's ``balanceOf``) with the
  payout plus what Kassa's own TRON transactions still ``signed`` or ``broadcast`` will spend
  (their lines and their ``fee_native``). A transaction already in a block but not yet settled
  by the worker is then counted twice for a moment; that only ever makes a payout wait.
  ``sign`` checks again in the signing transaction, holding a row lock of the hot address
  (``payout_nonce``, chain ``tron``): two workers that both passed ``check_funds`` for a
  wallet that pays only one of them then sign one payout; the other gets `HotWalletShort`.
* ``replacement`` is always None: a TRON transaction cannot be replaced; the worker waits for
  its expiration and the proof that it is dead. ``settle`` books nothing: nothing is reserved
  when signing (the lock row holds no state), and balances are read from the chain.
* ``SignedTx.raw`` is the broadcast JSON text (``wallet/broadcasttransaction``), sent as stored.
Amounts are ``int`` sun and token minor units.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection

from kassa.chains.errors import InvalidAddress, InvalidTransaction
from kassa.chains.network import Chain, TronNetwork
from kassa.chains.tron.address import TronAddress, parse_tron_address
from kassa.chains.tron.api import TronApi, TronApiError, TronNodeError
from kassa.chains.tron.tx import SignedTronTransaction
from kassa.money import TRX, USDT_TRC20, Asset, Money
from kassa.payouts.rails.base import (
    Broadcast,
    BroadcastOutcome,
    FeeEstimate,
    HotWalletShort,
    PayoutLine,
    PayoutNotSendable,
    RailUnavailable,
    SignedTx,
    StoredTx,
    TxState,
    TxStatus,
    in_flight,
    lock_hot_address,
)
from kassa.payouts.rails.tron_fees import TronFeePricer, most_fee, transaction_bandwidth
from kassa.payouts.rails.tron_status import TronTxWatcher, time_of
from kassa.payouts.settings import TronPayoutSettings
from kassa.payouts.signer import Signer

__all__ = ["TronRail", "transaction_bandwidth"]

# Broadcast answers that say "the node cannot take anything right now", not "never".
_BUSY_CODES = frozenset(
    {"SERVER_BUSY", "NO_CONNECTION", "NOT_ENOUGH_EFFECTIVE_CONNECTION", "BLOCK_UNSOLIDIFIED"}
)


class TronRail:
    """Payouts on TRON; see the module docstring."""

    def __init__(
        self,
        api: TronApi,
        signer: Signer,
        network: TronNetwork,
        *,
        usdt_contract: TronAddress | None,
        settings: TronPayoutSettings,
    ) -> None:
        self.api = api
        self.signer = signer
        self.network = network
        self.usdt_contract = usdt_contract
        self.settings = settings
        self._fees = TronFeePricer(api, settings, hot=self._hot, token=self._token)
        self._watcher = TronTxWatcher(api, hot=self._hot, token=self._token)

    # -- identity --------------------------------------------------------------------------

    @property
    def chain(self) -> Chain:
        return Chain.TRON

    @property
    def assets(self) -> tuple[Asset, ...]:
        return (TRX, USDT_TRC20) if self.usdt_contract is not None else (TRX,)

    @property
    def fee_asset(self) -> Asset:
        return TRX

    def hot_address(self) -> str:
        return self._hot().text

    def _hot(self) -> TronAddress:
        return parse_tron_address(self.signer.address(Chain.TRON, self.network))

    def dust_limit(self, coin: Asset, destination: str) -> Money:
        self._check_coin(coin)
        return Money(1, coin)

    def _check_coin(self, coin: Asset) -> None:
        if coin not in self.assets:
            raise ValueError(f"the TRON rail does not send {coin.code} (it sends {self.assets})")

    def _token(self) -> TronAddress:
        if self.usdt_contract is None:
            raise ValueError("no USDT-TRC20 contract is configured")
        return self.usdt_contract

    def _one_line(self, coin: Asset, lines: Sequence[PayoutLine]) -> tuple[PayoutLine, TronAddress]:
        """The single payout of a TRON transaction and its destination, checked."""
        self._check_coin(coin)
        if len(lines) != 1:
            raise ValueError(f"a TRON transaction pays exactly one payout, not {len(lines)}")
        line = lines[0]
        if line.amount.asset != coin:
            raise ValueError(f"a {coin.code} payout of {line.amount}")
        if not line.amount.is_positive:
            raise PayoutNotSendable(f"a TRON payout must be positive, not {line.amount}")
        try:
            destination = parse_tron_address(line.destination)
        except InvalidAddress as error:
            raise PayoutNotSendable(
                f"{line.destination!r} is not a TRON address: {error}"
            ) from None
        if destination.is_zero:
            raise PayoutNotSendable("refusing to pay the TRON zero address: what it gets is burnt")
        if destination == self._hot():
            raise PayoutNotSendable("the destination is the hot wallet itself")
        if coin == USDT_TRC20 and destination == self._token():
            raise PayoutNotSendable(
                "refusing to send USDT to the USDT contract itself: the tokens would be lost"
            )
        return line, destination

    # -- estimate --------------------------------------------------------------------------

    def estimate(self, coin: Asset, lines: Sequence[PayoutLine]) -> FeeEstimate:
        line, destination = self._one_line(coin, lines)
        try:
            return self._fees.estimate(coin, line, destination)
        except TronApiError as error:
            raise RailUnavailable(f"TRON node: {error}") from None

    # -- funds -----------------------------------------------------------------------------

    def check_funds(self, conn: Connection, coin: Asset, lines: Sequence[PayoutLine]) -> None:
        line, _destination = self._one_line(coin, lines)
        self._check_funds(conn, coin, lines, line, None)

    def _check_funds(
        self,
        conn: Connection,
        coin: Asset,
        lines: Sequence[PayoutLine],
        line: PayoutLine,
        estimate: FeeEstimate | None,
    ) -> None:
        """Raise `HotWalletShort` unless the hot wallet's balances, less what Kassa's unsettled
        TRON payouts still commit, pay ``line`` and the most a transaction signed for
        ``estimate`` may burn (None: priced now, once the tokens are known to be there, since a
        transfer the token would revert cannot be priced)."""
        hot = self._hot()
        trx_committed, token_committed, in_flight = self._commitments(conn)
        try:
            account = self.api.account(hot)
            held_tokens = (
                Money(self.api.trc20_balance(self._token(), hot), USDT_TRC20)
                if coin == USDT_TRC20
                else Money(0, USDT_TRC20)
            )
        except TronApiError as error:
            raise RailUnavailable(f"TRON node: {error}") from None
        if account is None:
            raise HotWalletShort(
                f"the TRON hot wallet {hot.text} has no account on chain yet: send it TRX first "
                "(an account exists from its first incoming TRX transfer)"
            )
        if coin == USDT_TRC20:
            token_free = held_tokens - token_committed
            if token_free < line.amount:
                committed = (
                    f" ({token_committed} of it committed to unconfirmed payouts)"
                    if token_committed.is_positive
                    else ""
                )
                raise HotWalletShort(
                    f"the TRON hot wallet {hot.text} holds {held_tokens}{committed}; this payout "
                    f"needs {line.amount}: send at least {line.amount - token_free} to {hot.text}"
                )
        if estimate is None:
            estimate = self.estimate(coin, lines)
        fee = most_fee(coin, estimate)
        balance = Money(account.balance, TRX)
        trx_free = balance - trx_committed
        waiting = (
            f" ({trx_committed} of it committed to {in_flight} unconfirmed payout(s))"
            if in_flight
            else ""
        )
        if coin == TRX:
            needed = line.amount + fee
            if trx_free < needed:
                raise HotWalletShort(
                    f"the TRON hot wallet {hot.text} holds {balance}{waiting}; this payout needs "
                    f"{needed} ({line.amount} plus {fee} network fee): send at least "
                    f"{needed - trx_free} to {hot.text}"
                )
        elif trx_free < fee:
            raise HotWalletShort(
                f"the TRON hot wallet {hot.text} holds {balance}{waiting}; the network fee of "
                f"this USDT payout may be up to {fee} (energy and bandwidth, paid in TRX): send "
                f"at least {fee - trx_free} to {hot.text}"
            )

    def hot_balance(self, conn: Connection, coin: Asset) -> Money:
        """What the hot wallet holds of ``coin`` (``hot_wallet.low``)."""
        hot = self._hot()
        try:
            if coin == USDT_TRC20:
                return Money(self.api.trc20_balance(self._token(), hot), USDT_TRC20)
            account = self.api.account(hot)
        except TronApiError as error:
            raise RailUnavailable(f"TRON node: {error}") from None
        return Money(0 if account is None else account.balance, TRX)

    def _commitments(self, conn: Connection) -> tuple[Money, Money, int]:
        """(TRX, USDT, how many transactions) that Kassa's unsettled TRON payouts still spend."""
        flying = in_flight(conn, Chain.TRON)
        trx = sum(tx.fee_native for tx in flying)
        trx += sum(tx.paid_native for tx in flying if tx.asset != USDT_TRC20.code.value)
        tokens = sum(tx.paid_native for tx in flying if tx.asset == USDT_TRC20.code.value)
        return Money(trx, TRX), Money(tokens, USDT_TRC20), len(flying)

    # -- sign ------------------------------------------------------------------------------

    def sign(
        self,
        conn: Connection,
        coin: Asset,
        lines: Sequence[PayoutLine],
        estimate: FeeEstimate,
        *,
        now: datetime,
    ) -> SignedTx:
        """Sign on the head block, dated by its time (java-tron checks expirations against the
        head block, not against Kassa's clock; ``now`` only dates the lock row). Nothing is
        allocated in ``conn``: the transaction is its own spend identity. The funds are
        checked again under the hot address's lock (see `_lock_hot_address`)."""
        line, destination = self._one_line(coin, lines)
        if estimate.total.asset != TRX or "bandwidth_bytes" not in estimate.params:
            raise ValueError("the estimate is not a TRON rail's")
        if ("fee_limit" in estimate.params) != (coin == USDT_TRC20):
            raise ValueError(f"the estimate is not of a {coin.code} payout")
        try:
            head = self.api.now_block()
            if coin == TRX:
                account = self.api.account(destination)
                if account is not None and account.is_contract:
                    raise PayoutNotSendable(
                        f"{destination.text} is a smart contract: TRON refuses TRX transfers to "
                        "contracts"
                    )
        except TronApiError as error:
            raise RailUnavailable(f"TRON node: {error}") from None
        self._lock_hot_address(conn, now)
        # check_funds ran in an earlier transaction: another worker may have stored a payout
        # since. Under the lock every payout signed before is visible, and ours is not stored
        # until this transaction commits; short, the caller rolls back.
        self._check_funds(conn, coin, lines, line, estimate)
        timestamp_ms = head.timestamp_ms
        expiration_ms = timestamp_ms + self.settings.expiration_seconds * 1000
        fee_limit: int | None = None
        try:
            signed: SignedTronTransaction
            if coin == TRX:
                signed = self.signer.sign_trx_transfer(
                    to=destination,
                    amount_sun=line.amount.amount,
                    ref_block_id=head.block_id,
                    timestamp_ms=timestamp_ms,
                    expiration_ms=expiration_ms,
                )
            else:
                fee_limit = estimate.params["fee_limit"]
                signed = self.signer.sign_trc20_transfer(
                    token=self._token(),
                    to=destination,
                    amount=line.amount.amount,
                    ref_block_id=head.block_id,
                    timestamp_ms=timestamp_ms,
                    expiration_ms=expiration_ms,
                    fee_limit_sun=fee_limit,
                )
        except InvalidTransaction as error:
            raise PayoutNotSendable(str(error)) from None
        spend: dict[str, object] = {
            "txid": signed.txid,
            "expiration_ms": signed.expiration_ms,
            "ref_block": head.block_id,
        }
        if fee_limit is not None:
            spend["fee_limit"] = fee_limit
        return SignedTx(
            txid=signed.txid,
            raw=signed.json_text,
            spend_key=f"tron:{signed.txid}",
            spend=spend,
            fee=most_fee(coin, estimate),
            expires_at=time_of(signed.expiration_ms),
        )

    def _lock_hot_address(self, conn: Connection, now: datetime) -> None:
        """Lock the hot address's ``payout_nonce`` row (chain ``tron``) until ``conn``'s
        transaction ends (see `rails.base.lock_hot_address`)."""
        lock_hot_address(conn, Chain.TRON, self._hot().text, now)

    # -- broadcast -------------------------------------------------------------------------

    def broadcast(self, tx: StoredTx) -> Broadcast:
        try:
            answer = self.api.broadcast(tx.raw)
        except TronNodeError as error:
            # {"Error": …}: the node cannot read the JSON at all; it never will.
            return Broadcast(BroadcastOutcome.REJECTED, error.message)
        except TronApiError as error:
            return Broadcast(BroadcastOutcome.UNAVAILABLE, str(error))
        if answer.accepted:
            return Broadcast(BroadcastOutcome.ACCEPTED)
        detail = f"{answer.code}: {answer.message}".rstrip(": ")
        if answer.code == "DUP_TRANSACTION_ERROR":
            return Broadcast(BroadcastOutcome.ACCEPTED, detail)
        if answer.code in _BUSY_CODES:
            return Broadcast(BroadcastOutcome.UNAVAILABLE, detail)
        return Broadcast(BroadcastOutcome.REJECTED, detail)

    # -- status ----------------------------------------------------------------------------

    def status(self, tx: StoredTx) -> TxStatus:
        return self._watcher.status(tx)

    # -- no replacement, nothing to settle -------------------------------------------------

    def replacement(
        self, conn: Connection, tx: StoredTx, *, bump_percent: int, now: datetime
    ) -> SignedTx | None:
        """TRON cannot replace a transaction: wait for its expiration and the proof it is dead."""
        return None

    def settle(self, conn: Connection, tx: StoredTx, state: TxState) -> None:
        """Nothing to book: signing reserved nothing and balances are read from the chain."""
