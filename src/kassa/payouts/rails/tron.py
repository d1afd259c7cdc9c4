"""The TRON rail: TRX and USDT (TRC-20) payouts from one hot address.

Design:
* One transaction per payout: TRON has no batching (a transaction carries one contract), so a
  rail call gets exactly one `PayoutLine`.
* Fees are priced the way java-tron will charge them, from the chain's own figures
  (``getchainparameters``, the hot account's ``getaccountresource``, the destination's
  ``getaccount``), for an account that may or may not have staked TRX:

  - *bandwidth*: the signed transaction's protobuf size (raw data plus one 65-byte signature)
    plus java-tron's 64-byte result allowance (``MAX_RESULT_SIZE_IN_TX``), the rule of
    ``BandwidthProcessor.consume``. It is free when the hot account's staked bandwidth, or else
    its free daily bandwidth, still covers the whole transaction; otherwise every byte burns
    ``getTransactionFee`` sun.
  - *account creation*: a TRX transfer to an address that has no account yet cannot use the
    free bandwidth; it burns the flat ``getCreateAccountFee`` instead of its bytes (unless
    staked bandwidth covers the bytes) and the transfer burns
    ``getCreateNewAccountFeeInSystemContract`` on top (0.1 + 1 TRX on mainnet).
  - *energy* (TRC-20): ``estimateenergy`` of ``transfer(destination, amount)`` from the hot
    address, or ``triggerconstantcontract``'s ``energy_used`` where the node does not offer
    the estimate (java-tron's ``vm.estimateEnergy`` is off by default); energy the hot
    account has staked is used first, the rest burns ``getEnergyFee`` sun per unit. The
    transaction's ``fee_limit`` (the most it may burn for energy) is twice the estimate's full
    energy cost, capped by ``trc20_fee_limit_sun`` but never below the expected burn. A transfer
    the contract would revert now (the hot wallet lacks the tokens) cannot be priced:
    `estimate` raises `RailUnavailable` saying why, and the payout waits.

  ``FeeEstimate.total`` is what the chain is expected to burn; its ``params`` carry every
  figure above. ``SignedTx.fee`` is that total for TRX, and for TRC-20 the fee limit plus the
  bandwidth priced: the most the transaction may burn.
* The spend identity is the transaction itself (``tron:<txid>``): TRON has no nonce. Every
  transaction names a reference block (TAPoS) and an expiration; it is signed on the node's
  head block, dated by the head block's time, expiring ``expiration_seconds`` later. java-tron
  accepts a transaction into a block only while its expiration is after the parent block's
  time, which is what makes a lost payout *provably* dead.
* ``status`` reads ``gettransactioninfobyid``: in a block it is ``MINED`` until the solidified
  (irreversible) chain has it too (``/walletsolidity``), then ``FINAL`` or ``FAILED``; a TRC-20
  payout is final only with receipt ``SUCCESS`` *and* the token contract's ``Transfer`` log
  from the hot address to the destination for the exact amount. ``fee_paid`` is the receipt's
  ``fee`` (all sun burned). A transaction in no block is ``DEAD`` only once the *solidified*
  block's time has reached its expiration and the solidified chain does not hold it: no later
  block can include it and no fork can bring back one that did (stricter than the head block,
  which a fork may still replace). Before that it is ``PENDING`` while the node's pool holds it
  (``gettransactionfrompending``) and ``UNKNOWN`` otherwise (the worker sends the same JSON
  again).
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
from datetime import UTC, datetime, timedelta

from eth_hash.auto import keccak
from sqlalchemy import Connection

from kassa.chains.errors import InvalidAddress, InvalidTransaction
from kassa.chains.network import Chain, TronNetwork
from kassa.chains.tron.address import TronAddress, parse_tron_address
from kassa.chains.tron.api import (
    TronApi,
    TronApiError,
    TronCallRefused,
    TronNodeError,
    TronReceipt,
    TronTransportError,
)
from kassa.chains.tron.tx import MAX_FEE_LIMIT, SignedTronTransaction, trc20_transfer_calldata
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
from kassa.payouts.settings import TronPayoutSettings
from kassa.payouts.signer import Signer

__all__ = ["TronRail", "transaction_bandwidth"]

SIGNATURE_BYTES = 65
RESULT_ALLOWANCE_BYTES = 64
"""java-tron's ``Constant.MAX_RESULT_SIZE_IN_TX``, added to every contract's bandwidth."""
TRANSFER_SELECTOR = "transfer(address,uint256)"
TRANSFER_TOPIC = keccak(b"Transfer(address,address,uint256)")
FEE_LIMIT_HEADROOM = 2
"""The fee limit allows this many times the estimated energy cost (dynamic energy may rise)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TRANSFER_TYPE_URL = "type.googleapis.com/protocol.TransferContract"
_TRIGGER_TYPE_URL = "type.googleapis.com/protocol.TriggerSmartContract"
_TRANSFER_CONTRACT_TYPE = 1
_TRIGGER_CONTRACT_TYPE = 31
_ADDRESS_BYTES = 21
_REF_BLOCK_BYTES = 2
_REF_BLOCK_HASH_BYTES = 8

# Broadcast answers that say "the node cannot take anything right now", not "never".
_BUSY_CODES = frozenset(
    {"SERVER_BUSY", "NO_CONNECTION", "NOT_ENOUGH_EFFECTIVE_CONNECTION", "BLOCK_UNSOLIDIFIED"}
)


# ------------------------------------------------------------------------------- bandwidth


def _varint_size(value: int) -> int:
    size = 1
    while value >= 0x80:
        value >>= 7
        size += 1
    return size


def _bytes_field(number: int, length: int) -> int:
    """Size of a length-delimited protobuf field (tag, length, payload)."""
    return _varint_size(number << 3 | 2) + _varint_size(length) + length


def _int_field(number: int, value: int) -> int:
    """Size of a varint protobuf field; proto3 leaves zero out."""
    return _varint_size(number << 3) + _varint_size(value) if value else 0


def transaction_bandwidth(
    *,
    call_data: bytes | None,
    amount_sun: int,
    timestamp_ms: int,
    expiration_ms: int,
    fee_limit_sun: int,
) -> int:
    """Bandwidth bytes java-tron charges for a transaction `kassa.chains.tron.tx` builds: the
    serialized ``Transaction`` (``raw_data`` and one signature) plus the result allowance.

    ``call_data`` is the TRC-20 call's ABI data (a ``TriggerSmartContract``), or None for a TRX
    ``TransferContract`` of ``amount_sun``. Sizes only depend on field lengths, so the result
    is exact before signing."""
    if call_data is None:
        inner = (
            _bytes_field(1, _ADDRESS_BYTES)  # owner_address
            + _bytes_field(2, _ADDRESS_BYTES)  # to_address
            + _int_field(3, amount_sun)
        )
        type_url, contract_type = _TRANSFER_TYPE_URL, _TRANSFER_CONTRACT_TYPE
    else:
        inner = (
            _bytes_field(1, _ADDRESS_BYTES)  # owner_address
            + _bytes_field(2, _ADDRESS_BYTES)  # contract_address
            + _bytes_field(4, len(call_data))  # data; call_value, token fields are 0
        )
        type_url, contract_type = _TRIGGER_TYPE_URL, _TRIGGER_CONTRACT_TYPE
    parameter = _bytes_field(1, len(type_url)) + _bytes_field(2, inner)  # google.protobuf.Any
    contract = _int_field(1, contract_type) + _bytes_field(2, parameter)
    raw = (
        _bytes_field(1, _REF_BLOCK_BYTES)
        + _bytes_field(4, _REF_BLOCK_HASH_BYTES)
        + _int_field(8, expiration_ms)
        + _bytes_field(11, contract)
        + _int_field(14, timestamp_ms)
        + _int_field(18, fee_limit_sun)
    )
    transaction = _bytes_field(1, raw) + _bytes_field(2, SIGNATURE_BYTES)
    return transaction + RESULT_ALLOWANCE_BYTES


def _time(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


# ------------------------------------------------------------------------------- the rail


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
            return self._estimate(coin, line, destination)
        except TronApiError as error:
            raise RailUnavailable(f"TRON node: {error}") from None

    def _estimate(self, coin: Asset, line: PayoutLine, destination: TronAddress) -> FeeEstimate:
        hot = self._hot()
        chain = self.api.chain_parameters()
        bandwidth_price = chain.get("getTransactionFee", 0)
        head = self.api.now_block()
        timestamp_ms = head.timestamp_ms
        expiration_ms = timestamp_ms + self.settings.expiration_seconds * 1000
        resources = self.api.account_resources(hot)
        staked_net = resources.net_left if resources else 0
        free_net = resources.free_net_left if resources else 0
        params: dict[str, int] = {"bandwidth_price": bandwidth_price}

        if coin == TRX:
            size = transaction_bandwidth(
                call_data=None,
                amount_sun=line.amount.amount,
                timestamp_ms=timestamp_ms,
                expiration_ms=expiration_ms,
                fee_limit_sun=0,
            )
            creates = self.api.account(destination) is None
            if creates:
                # BandwidthProcessor.consumeForCreateNewAccount: staked bandwidth, or a flat
                # fee; never the free bandwidth.
                bandwidth_fee = 0 if size <= staked_net else chain.get("getCreateAccountFee", 0)
                create_fee = chain.get("getCreateNewAccountFeeInSystemContract", 0)
            else:
                bandwidth_fee = 0 if size <= max(staked_net, free_net) else size * bandwidth_price
                create_fee = 0
            params |= {
                "bandwidth_bytes": size,
                "bandwidth_fee": bandwidth_fee,
                "creates_account": int(creates),
                "account_create_fee": create_fee,
            }
            return FeeEstimate(
                total=Money(bandwidth_fee + create_fee, TRX),
                params=params,
                source="getchainparameters, getaccountresource, getaccount",
            )

        token = self._token()
        data = trc20_transfer_calldata(destination, line.amount.amount)
        energy, source = self._energy(hot, token, data)
        energy_price = chain.get("getEnergyFee", 0)
        staked_energy = resources.energy_left if resources else 0
        energy_fee = max(0, energy - staked_energy) * energy_price
        max_fee_limit = chain.get("getMaxFeeLimit", MAX_FEE_LIMIT) or MAX_FEE_LIMIT
        headroom = min(
            self.settings.trc20_fee_limit_sun, FEE_LIMIT_HEADROOM * energy * energy_price
        )
        fee_limit = min(max(energy_fee, headroom, 1), max_fee_limit)
        size = transaction_bandwidth(
            call_data=data,
            amount_sun=0,
            timestamp_ms=timestamp_ms,
            expiration_ms=expiration_ms,
            fee_limit_sun=fee_limit,
        )
        bandwidth_fee = 0 if size <= max(staked_net, free_net) else size * bandwidth_price
        params |= {
            "bandwidth_bytes": size,
            "bandwidth_fee": bandwidth_fee,
            "energy": energy,
            "energy_price": energy_price,
            "energy_fee": energy_fee,
            "fee_limit": fee_limit,
        }
        return FeeEstimate(
            total=Money(bandwidth_fee + energy_fee, TRX),
            params=params,
            source=f"getchainparameters, getaccountresource, {source}",
        )

    def _energy(self, hot: TronAddress, token: TronAddress, data: bytes) -> tuple[int, str]:
        """(energy of the token transfer from the hot address, which endpoint said so)."""
        selector, parameter = TRANSFER_SELECTOR, data[4:]
        try:
            return self.api.estimate_energy(hot, token, selector, parameter), "estimateenergy"
        except (TronCallRefused, TronNodeError):
            pass  # switched off on this node, or the call reverts: the constant call tells
        except TronTransportError as error:
            if error.status_code != 404:  # an older node without the endpoint
                raise
        call = self.api.trigger_constant(hot, token, selector, parameter)
        if call.reverted:
            held = self.api.trc20_balance(token, hot)
            raise RailUnavailable(
                f"the USDT-TRC20 transfer from the hot wallet {hot.text} would revert now "
                f"({call.message or 'REVERT'}), so it cannot be priced; the hot wallet holds "
                f"{Money(held, USDT_TRC20)}, this payout needs "
                f"{Money(int.from_bytes(parameter[32:64], 'big'), USDT_TRC20)}"
            )
        return call.energy_used, "triggerconstantcontract"

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
        fee = self._most_fee(coin, estimate)
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

    @staticmethod
    def _most_fee(coin: Asset, estimate: FeeEstimate) -> Money:
        """What a transaction signed for ``estimate`` may burn: the estimate for TRX (the
        bandwidth and creation fees are fixed), the fee limit plus bandwidth for TRC-20."""
        if coin == TRX:
            return estimate.total
        return Money(estimate.params["fee_limit"] + estimate.params["bandwidth_fee"], TRX)

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
            fee=self._most_fee(coin, estimate),
            expires_at=_time(signed.expiration_ms),
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
        try:
            return self._status(tx)
        except TronApiError as error:
            raise RailUnavailable(f"TRON node: {error}") from None

    def _status(self, tx: StoredTx) -> TxStatus:
        receipt = self.api.transaction_info(tx.txid)
        if receipt is not None and receipt.info.block_number > 0:
            return self._included(tx, receipt, self.api.transaction_info(tx.txid, solid=True))
        expiration_ms = int(tx.spend["expiration_ms"])
        # The solidified block first, then the solidified chain's answer: whatever it says
        # was true at that block or later, and no block after it can include the transaction.
        solid = self.api.solid_now_block()
        if solid.timestamp_ms >= expiration_ms:
            final = self.api.transaction_info(tx.txid, solid=True)
            if final is None:
                return TxStatus(
                    TxState.DEAD,
                    f"expired at {_time(expiration_ms).isoformat()} and in no block up to the "
                    f"solidified block {solid.number} of {_time(solid.timestamp_ms).isoformat()}",
                )
            return self._included(tx, final, final)
        if self._in_pool(tx.txid):
            return TxStatus(TxState.PENDING, "in the node's pool")
        return TxStatus(TxState.UNKNOWN, "the node does not know it")

    def _in_pool(self, txid: str) -> bool:
        try:
            return self.api.pending_transaction(txid) is not None
        except TronTransportError as error:
            if error.status_code == 404:  # a node older than gettransactionfrompending
                return False
            raise

    def _included(self, tx: StoredTx, receipt: TronReceipt, final: TronReceipt | None) -> TxStatus:
        number = receipt.info.block_number
        head = self.api.now_block()
        block = self.api.block_by_num(number)
        block_hash = block.block_id if block is not None else None
        confirmations = max(0, head.number - number + 1)
        if final is None:
            return TxStatus(
                TxState.MINED,
                "in a block, not yet solidified",
                block_number=number,
                block_hash=block_hash,
                confirmations=confirmations,
            )
        problem = self._problem(tx, final)
        return TxStatus(
            TxState.FAILED if problem else TxState.FINAL,
            problem or "solidified",
            block_number=number,
            block_hash=block_hash,
            confirmations=confirmations,
            fee_paid=Money(final.fee, TRX),
        )

    def _problem(self, tx: StoredTx, receipt: TronReceipt) -> str:
        """Why a solidified transaction did not pay, or "" when it did."""
        info = receipt.info
        line = tx.lines[0]
        if info.failed or (info.receipt_result not in (None, "SUCCESS")):
            reason = receipt.result_message or info.receipt_result or "FAILED"
            return f"the transaction failed on chain: {reason}"
        if line.amount.asset != USDT_TRC20:
            return ""
        token, hot = self._token(), self._hot()
        destination = parse_tron_address(line.destination)
        expected = (
            TRANSFER_TOPIC,
            bytes(12) + hot.evm_bytes,
            bytes(12) + destination.evm_bytes,
        )
        paid = any(
            log.address == token
            and log.topics == expected
            and log.data == line.amount.amount.to_bytes(32, "big")
            for log in info.logs
        )
        if not paid:
            return (
                f"receipt SUCCESS but no Transfer event of {line.amount} from {hot.text} to "
                f"{destination.text} by {token.text}"
            )
        return ""

    # -- no replacement, nothing to settle -------------------------------------------------

    def replacement(
        self, conn: Connection, tx: StoredTx, *, bump_percent: int, now: datetime
    ) -> SignedTx | None:
        """TRON cannot replace a transaction: wait for its expiration and the proof it is dead."""
        return None

    def settle(self, conn: Connection, tx: StoredTx, state: TxState) -> None:
        """Nothing to book: signing reserved nothing and balances are read from the chain."""
