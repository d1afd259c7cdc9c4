"""The Ethereum rail: ETH and USDT (ERC-20) payouts from one hot address, EIP-1559 fees.

Design:
* One transaction per payout. Ethereum has no batching worth the risk (one revert would fail
  every payout in it), so a rail call gets exactly one `PayoutLine`.
* Fees come from the chain when the payout is priced: the ``pending`` block's ``baseFeePerGas``
  (the base fee the next block charges; ``latest`` when the node has no pending block), the
  configured tip, and a fee cap of ``base × base_fee_multiplier + tip`` (never above
  ``max_fee_per_gas_wei``), so the transaction survives a few full blocks of rising base fee.
  The customer is charged the *expected* fee, ``gas estimate × (base fee + tip)``; the
  transaction may cost up to ``gas limit × fee cap``, and what it really cost
  (``gasUsed × effectiveGasPrice``) is measured from the receipt.
* Gas: 21 000 for ETH to an account without code (exact: a plain transfer costs nothing
  more); ``eth_estimateGas`` for ETH to a contract and for USDT's ``transfer`` from the hot
  address, with 20 % headroom in the gas limit (unused gas is not charged). A USDT transfer the
  node cannot estimate (the hot wallet holds no tokens yet) falls back to ``usdt_gas_limit``.
* Nonces are allocated without gaps in the ``payout_nonce`` row of the hot address, locked in
  the worker's signing transaction, so two workers never sign the same nonce and a rolled-back
  signing allocates nothing. The row is created on first use (insert-if-absent, then lock),
  which two PostgreSQL workers may race on safely. The nonce is the larger of the row and the
  chain's ``latest`` transaction count, so a transaction sent with the key outside Kassa cannot
  make Kassa reuse its nonce; it only makes the allocation skip past it.
* ``sign`` checks the funds again once it holds the nonce row's lock (``check_funds`` ran in an
  earlier transaction): two workers that both passed ``check_funds`` for a wallet that pays
  only one of them then sign one payout; the other gets `HotWalletShort` and allocates nothing.
* Pending commitments: the hot address's payout transactions still ``signed`` or ``broadcast``
  whose nonce the chain has not used yet (nonce ≥ the ``latest`` count). The ones below it are
  in a block and already out of the balance; versions of one nonce (fee bumps) count once, at
  their largest. ``check_funds`` subtracts them, so payouts in flight never overspend.
* Broadcasting first asks the node whether it knows the transaction already: re-sending the
  bytes of a mined transaction gets "nonce too low" from geth (it is not an error, it is done),
  and ganache 7.9 treats a nonce of 0 as "fill in the next nonce" and would execute the same
  bytes a second time. Only then are the exact stored bytes sent.
* Status follows the deposit side's finality rule (`EthScanner.head`: the ``finalized`` tag,
  or confirmations). A USDT payout is final only with receipt status 1 *and* a ``Transfer``
  log of the token contract from the hot address to the destination for the exact amount.
  A transaction the node does not know is ``DEAD`` only when the sender's transaction count at
  a final block has passed its nonce (another transaction used it, final); otherwise it is
  ``UNKNOWN`` and the worker sends the same bytes again. This assumes the node indexes
  transactions (a node that cannot find a mined transaction by hash would make it look dead;
  geth's default index covers about a year).
* Replacement keeps the nonce, gas limit and payment and raises the tip and fee cap by at least
  ``bump_percent`` (rounded up); the cap follows the market if that is higher, within
  ``max_fee_per_gas_wei``.
* ``SignedTx.raw`` is ``0x``-prefixed hex of the signed bytes: the exact text
  ``eth_sendRawTransaction`` takes. ``txid`` is the ``0x`` hash, lower case.
* ``settle`` books nothing: the nonce was taken from the row when signing and stays taken
  (a dead transaction's nonce was used by another transaction, that is how it died), and
  balances are read from the chain, not kept by Kassa.
Amounts are ``int`` wei and token minor units; fees are ``int`` wei per gas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, update

from kassa.chains.errors import InvalidAddress, InvalidTransaction
from kassa.chains.eth.address import EthAddress, parse_eth_address
from kassa.chains.eth.rpc import EthNodeError, EthRpc, RpcError, quantity
from kassa.chains.eth.scanner import (
    TRANSFER_TOPIC,
    EthFinality,
    EthScanner,
    _hash,
    _topic_address,
    _word,
)
from kassa.chains.eth.tx import (
    NATIVE_TRANSFER_GAS,
    EthFees,
    SignedEthTransaction,
    erc20_transfer_calldata,
)
from kassa.chains.network import Chain, EthNetwork
from kassa.chains.scanning import ChainHead
from kassa.money import ETH, USDT_ERC20, Asset, Money
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
from kassa.payouts.settings import EthPayoutSettings
from kassa.payouts.signer import Signer
from kassa.payouts.tables import payout_nonce

__all__ = ["GAS_HEADROOM_PERCENT", "EthRail"]

GAS_HEADROOM_PERCENT = 20
"""Gas limit above an ``eth_estimateGas`` answer: state may change before inclusion."""

_BALANCE_OF_SELECTOR = bytes.fromhex("70a08231")  # balanceOf(address)
_ZERO_ADDRESS = "0x" + "00" * 20
_KNOWN = ("already known", "known transaction", "alreadyknown")
_NONCE_TOO_LOW = ("nonce too low", "doesn't have the correct nonce")
"""geth/erigon/besu say "nonce too low"; ganache says "the tx doesn't have the correct nonce"
(only for a nonce below the account's: a higher one is queued)."""


def _ceil_percent(value: int, percent: int) -> int:
    """``value × percent / 100``, rounded up."""
    return -(-value * percent // 100)


class EthRail:
    """The `Rail` of Ethereum: ETH, and USDT-ERC20 when ``usdt_contract`` is set."""

    def __init__(
        self,
        rpc: EthRpc,
        signer: Signer,
        network: EthNetwork,
        *,
        usdt_contract: EthAddress | None,
        settings: EthPayoutSettings,
        confirmations: int,
        finality: EthFinality | Literal["tag", "confirmations"],
    ) -> None:
        self.rpc = rpc
        self.signer = signer
        self.network = network
        self.usdt_contract = usdt_contract
        self.settings = settings
        # The deposit side's finality rule, reused as is: only `head` is asked, which does not
        # look at the token contract (the zero address stands in when there is no USDT).
        self._finality = EthScanner(
            rpc,
            usdt_contract=usdt_contract.text if usdt_contract is not None else _ZERO_ADDRESS,
            confirmations=confirmations,
            finality=finality,
        )
        self._hot: EthAddress | None = None

    # ------------------------------------------------------------------ identity

    @property
    def chain(self) -> Chain:
        return Chain.ETH

    @property
    def assets(self) -> tuple[Asset, ...]:
        return (ETH, USDT_ERC20) if self.usdt_contract is not None else (ETH,)

    @property
    def fee_asset(self) -> Asset:
        return ETH

    def hot_address(self) -> str:
        return self._hot_address().text

    def _hot_address(self) -> EthAddress:
        if self._hot is None:
            self._hot = parse_eth_address(self.signer.address(Chain.ETH, self.network))
        return self._hot

    @property
    def _hot_lower(self) -> str:
        return self._hot_address().text.lower()

    def dust_limit(self, coin: Asset, destination: str) -> Money:
        """One minor unit: Ethereum has no dust rule (a transfer of 1 wei is valid)."""
        self._check_coin(coin)
        return Money(1, coin)

    # ------------------------------------------------------------------ pricing

    def estimate(self, coin: Asset, lines: Sequence[PayoutLine]) -> FeeEstimate:
        line = self._one_line(coin, lines)
        destination = self._destination(line)
        try:
            base_fee, base_source = self._base_fee()
            fees = self._fees(base_fee, self.settings.priority_fee_wei)
            gas_estimate, gas_limit, gas_source = self._gas(coin, destination, line.amount.amount)
        except EthNodeError as error:
            raise RailUnavailable(f"Ethereum node: {error}") from None
        price = min(base_fee + fees.max_priority_fee_per_gas, fees.max_fee_per_gas)
        return FeeEstimate(
            total=Money(gas_estimate * price, ETH),
            params={
                "gas_limit": gas_limit,
                "gas_estimate": gas_estimate,
                "base_fee": base_fee,
                "max_fee_per_gas": fees.max_fee_per_gas,
                "max_priority_fee_per_gas": fees.max_priority_fee_per_gas,
            },
            source=f"{base_source}; {gas_source}",
        )

    def _base_fee(self) -> tuple[int, str]:
        """The base fee of the next block, and which block said so."""
        try:
            block = self.rpc.get_block("pending", full=False)
            tag = "pending"
        except RpcError:
            block = None
        if block is None or block.get("baseFeePerGas") is None:
            block = self.rpc.get_block("latest", full=False)
            tag = "latest"
        if block is None or block.get("baseFeePerGas") is None:
            raise RailUnavailable("the Ethereum node reports no base fee (not an EIP-1559 chain?)")
        return quantity(block.get("baseFeePerGas"), "baseFeePerGas"), f"baseFeePerGas({tag})"

    def _fees(self, base_fee: int, tip: int) -> EthFees:
        """The fee cap for ``base_fee``, within the configured maximum; the tip never above it."""
        cap = min(
            base_fee * self.settings.base_fee_multiplier + tip, self.settings.max_fee_per_gas_wei
        )
        return EthFees(max_fee_per_gas=cap, max_priority_fee_per_gas=min(tip, cap))

    def _gas(self, coin: Asset, destination: EthAddress, amount: int) -> tuple[int, int, str]:
        """(expected gas, gas limit, source) of paying ``amount`` of ``coin``."""
        hot = self._hot_address().text
        if coin == ETH:
            if not self.rpc.get_code(destination.text):
                return NATIVE_TRANSFER_GAS, NATIVE_TRANSFER_GAS, "intrinsic gas"
            try:
                used = self.rpc.estimate_gas(
                    {"from": hot, "to": destination.text, "value": hex(amount)}
                )
            except RpcError as error:
                # The payout waits with this reason; an operator decides (the contract may
                # refuse ETH for good, or the hot wallet may be short of the value).
                raise RailUnavailable(
                    f"cannot estimate the gas of paying the contract {destination.text}: "
                    f"{error.message}"
                ) from None
            return used, _ceil_percent(used, 100 + GAS_HEADROOM_PERCENT), "eth_estimateGas"
        token = self._token()
        data = erc20_transfer_calldata(destination, amount)
        try:
            used = self.rpc.estimate_gas({"from": hot, "to": token.text, "data": "0x" + data.hex()})
        except RpcError:
            # Typically: the hot wallet holds fewer tokens than this yet, so the call reverts.
            limit = self.settings.usdt_gas_limit
            return limit, limit, "usdt_gas_limit fallback"
        limit = max(_ceil_percent(used, 100 + GAS_HEADROOM_PERCENT), NATIVE_TRANSFER_GAS)
        return used, limit, "eth_estimateGas"

    # ------------------------------------------------------------------ funds

    def check_funds(self, conn: Connection, coin: Asset, lines: Sequence[PayoutLine]) -> None:
        line = self._one_line(coin, lines)
        self._check_funds(conn, coin, line, self.estimate(coin, lines))

    def _check_funds(
        self, conn: Connection, coin: Asset, line: PayoutLine, estimate: FeeEstimate
    ) -> None:
        """Raise `HotWalletShort` unless the hot wallet's balances, less what Kassa's unmined
        payouts of it still commit, pay ``line`` and the most a transaction signed for
        ``estimate`` may cost (gas limit × fee cap)."""
        fee_cap = Money(estimate.params["gas_limit"] * estimate.params["max_fee_per_gas"], ETH)
        hot = self._hot_address()
        try:
            # The count before the balances: a block arriving in between then makes a payout
            # count twice (committed and already spent), never not at all.
            count = self.rpc.get_transaction_count(hot.text, "latest")
            eth_balance = Money(self.rpc.get_balance(hot.text, "latest"), ETH)
            token_balance = self._token_balance() if coin == USDT_ERC20 else Money(0, USDT_ERC20)
        except EthNodeError as error:
            raise RailUnavailable(f"Ethereum node: {error}") from None
        eth_committed, token_committed, in_flight = self._commitments(conn, count)
        eth_free = eth_balance - eth_committed
        waiting = (
            f" ({eth_committed} of it committed to {in_flight} unconfirmed payout(s))"
            if in_flight
            else ""
        )
        if coin == ETH:
            needed = line.amount + fee_cap
            if eth_free < needed:
                raise HotWalletShort(
                    f"the Ethereum hot wallet {hot.text} holds {eth_balance}{waiting}; this "
                    f"payout needs {needed} ({line.amount} plus up to {fee_cap} network fee): "
                    f"send at least {needed - eth_free} to {hot.text}"
                )
            return
        token_free = token_balance - token_committed
        if token_free < line.amount:
            committed = (
                f" ({token_committed} of it committed to unconfirmed payouts)"
                if token_committed.is_positive
                else ""
            )
            raise HotWalletShort(
                f"the Ethereum hot wallet {hot.text} holds {token_balance}{committed}; this "
                f"payout needs {line.amount}: send at least {line.amount - token_free} "
                f"to {hot.text}"
            )
        if eth_free < fee_cap:
            raise HotWalletShort(
                f"the Ethereum hot wallet {hot.text} holds {eth_balance}{waiting}; the network "
                f"fee of this USDT payout may be up to {fee_cap}: send at least "
                f"{fee_cap - eth_free} to {hot.text}"
            )

    def _token_balance(self) -> Money:
        token = self._token()
        data = _BALANCE_OF_SELECTOR + bytes(12) + self._hot_address().raw
        answer = self.rpc.call_contract({"to": token.text, "data": "0x" + data.hex()}, "latest")
        if len(answer) != 32:
            raise RailUnavailable(
                f"balanceOf on {token.text} answered {len(answer)} bytes: is it the USDT contract?"
            )
        return Money(int.from_bytes(answer, "big"), USDT_ERC20)

    def _commitments(self, conn: Connection, count: int) -> tuple[Money, Money, int]:
        """(ETH, USDT, how many) that the hot address's unmined payout transactions will
        still spend: versions of one nonce count once, at their largest."""
        flying = in_flight(conn, Chain.ETH, spend_key_prefix=f"eth:{self._hot_lower}:")
        unmined = [tx for tx in flying if int(tx.spend_key.rsplit(":", 1)[1]) >= count]
        eth_by_nonce: dict[str, int] = {}
        token_by_nonce: dict[str, int] = {}
        for tx in unmined:
            value = tx.paid_native
            eth = tx.fee_native + (value if tx.asset == ETH.code.value else 0)
            token = value if tx.asset == USDT_ERC20.code.value else 0
            eth_by_nonce[tx.spend_key] = max(eth_by_nonce.get(tx.spend_key, 0), eth)
            token_by_nonce[tx.spend_key] = max(token_by_nonce.get(tx.spend_key, 0), token)
        return (
            Money(sum(eth_by_nonce.values()), ETH),
            Money(sum(token_by_nonce.values()), USDT_ERC20),
            len(eth_by_nonce),
        )

    # ------------------------------------------------------------------ signing

    def sign(
        self,
        conn: Connection,
        coin: Asset,
        lines: Sequence[PayoutLine],
        estimate: FeeEstimate,
        *,
        now: datetime,
    ) -> SignedTx:
        line = self._one_line(coin, lines)
        destination = self._destination(line)
        params = estimate.params
        missing = {"gas_limit", "max_fee_per_gas", "max_priority_fee_per_gas"} - params.keys()
        if missing:
            raise ValueError(f"the estimate lacks {sorted(missing)}: it is not this rail's")
        fees = EthFees(
            max_fee_per_gas=params["max_fee_per_gas"],
            max_priority_fee_per_gas=params["max_priority_fee_per_gas"],
        )
        row_nonce = self._lock_nonce_row(conn, now)
        # Checked again under the lock: another worker may have signed and stored a payout of
        # this address since this one's check_funds; its commitment is visible now (it
        # committed before the lock was granted), and ours is not stored until we commit.
        # Short: the caller rolls back, so no nonce is taken.
        self._check_funds(conn, coin, line, estimate)
        try:
            chain_count = self.rpc.get_transaction_count(self._hot_address().text, "latest")
        except EthNodeError as error:
            raise RailUnavailable(f"Ethereum node: {error}") from None
        nonce = max(row_nonce, chain_count)
        where = (payout_nonce.c.chain == Chain.ETH.value) & (
            payout_nonce.c.address == self._hot_lower
        )
        conn.execute(update(payout_nonce).where(where).values(next_nonce=nonce + 1, updated_at=now))
        token = self._token() if coin == USDT_ERC20 else None
        signed = self._sign(
            token, destination, line.amount.amount, nonce, params["gas_limit"], fees
        )
        return self._signed_tx(signed, token, destination, line.amount.amount, spend_key=None)

    def _lock_nonce_row(self, conn: Connection, now: datetime) -> int:
        """Lock the hot address's nonce row (creating it if absent) and return its next nonce.
        The lock serializes the signers of this address until their transactions end."""
        return lock_hot_address(conn, Chain.ETH, self._hot_lower, now)

    def _sign(
        self,
        token: EthAddress | None,
        destination: EthAddress,
        amount: int,
        nonce: int,
        gas_limit: int,
        fees: EthFees,
    ) -> SignedEthTransaction:
        try:
            if token is None:
                return self.signer.sign_eth_transfer(
                    network=self.network,
                    nonce=nonce,
                    to=destination,
                    value_wei=amount,
                    fees=fees,
                    gas_limit=gas_limit,
                )
            return self.signer.sign_erc20_transfer(
                network=self.network,
                nonce=nonce,
                token=token,
                to=destination,
                amount=amount,
                fees=fees,
                gas_limit=gas_limit,
            )
        except InvalidTransaction as error:
            raise PayoutNotSendable(error.detail) from None

    def _signed_tx(
        self,
        signed: SignedEthTransaction,
        token: EthAddress | None,
        destination: EthAddress,
        amount: int,
        *,
        spend_key: str | None,
    ) -> SignedTx:
        sender = signed.sender.text
        spend: dict[str, Any] = {
            "from": sender,
            "nonce": signed.nonce,
            "to": destination.text,
            "value": amount,
            "gas_limit": signed.gas_limit,
            "fees": {
                "max_fee_per_gas": signed.fees.max_fee_per_gas,
                "max_priority_fee_per_gas": signed.fees.max_priority_fee_per_gas,
            },
        }
        if token is not None:
            spend["token"] = token.text
        return SignedTx(
            txid=signed.hash,
            raw="0x" + signed.raw.hex(),
            spend_key=spend_key or f"eth:{sender.lower()}:{signed.nonce}",
            spend=spend,
            fee=Money(signed.gas_limit * signed.fees.max_fee_per_gas, ETH),
        )

    # ------------------------------------------------------------------ broadcasting

    def broadcast(self, tx: StoredTx) -> Broadcast:
        raw = tx.raw.removeprefix("0x")
        nonce, sender = int(tx.spend["nonce"]), str(tx.spend["from"])
        try:
            if self.rpc.get_transaction_by_hash(tx.txid) is not None:
                return Broadcast(BroadcastOutcome.ACCEPTED, "already known to the node")
            # Send in nonce order. Two workers may sign nonces n and n+1 and broadcast them in
            # the other order; a node parks a transaction with a gap before it (geth's queue
            # may drop it, ganache's instamine blocks the call until the gap fills). Wait for
            # the earlier ones instead; the next round sends this one.
            ready = self.rpc.get_transaction_count(sender, "pending")
            if nonce > ready:
                return Broadcast(
                    BroadcastOutcome.DEFERRED,
                    f"nonce {nonce} of {sender} waits for nonce {ready} to reach the node",
                )
            self.rpc.send_raw_transaction(bytes.fromhex(raw))
        except RpcError as error:
            message = error.message.lower()
            if any(known in message for known in _KNOWN) or self._knows(tx.txid):
                # Another worker sent these very bytes a moment ago: nodes answer that in
                # their own words ("already known", ganache's "underpriced" or "mining has
                # already started"), so the node is asked for the hash itself.
                return Broadcast(BroadcastOutcome.ACCEPTED, error.message)
            if any(low in message for low in _NONCE_TOO_LOW):
                return Broadcast(BroadcastOutcome.REJECTED, f"nonce too low: {error.message}")
            return Broadcast(BroadcastOutcome.REJECTED, error.message)
        except EthNodeError as error:  # unreachable, timeout, or an answer of the wrong shape
            return Broadcast(BroadcastOutcome.UNAVAILABLE, str(error))
        return Broadcast(BroadcastOutcome.ACCEPTED)

    def _knows(self, txid: str) -> bool:
        try:
            return self.rpc.get_transaction_by_hash(txid) is not None
        except EthNodeError:
            return False

    # ------------------------------------------------------------------ watching

    def status(self, tx: StoredTx) -> TxStatus:
        try:
            receipt = self.rpc.get_transaction_receipt(tx.txid)
            head = self._finality.head()
            if receipt is not None:
                return self._mined(tx, receipt, head)
            if self.rpc.get_transaction_by_hash(tx.txid) is not None:
                return TxStatus(TxState.PENDING, "in the node's mempool")
            return self._unknown(tx, head)
        except EthNodeError as error:
            raise RailUnavailable(f"Ethereum node: {error}") from None

    def _mined(self, tx: StoredTx, receipt: Mapping[str, Any], head: ChainHead) -> TxStatus:
        height = quantity(receipt.get("blockNumber"), "receipt.blockNumber")
        block_hash = _hash(receipt.get("blockHash"))
        confirmations = max(head.height - height + 1, 0)
        if height > head.final_height:
            return TxStatus(
                TxState.MINED,
                f"in block {height}, not final yet",
                block_number=height,
                block_hash=block_hash,
                confirmations=confirmations,
            )
        fee_paid = Money(
            quantity(receipt.get("gasUsed"), "receipt.gasUsed")
            * quantity(receipt.get("effectiveGasPrice"), "receipt.effectiveGasPrice"),
            ETH,
        )
        if quantity(receipt.get("status"), "receipt.status") != 1:
            state, detail = TxState.FAILED, "the transaction reverted"
        elif "token" in tx.spend and not self._paid_tokens(tx, receipt):
            line = tx.lines[0]
            state = TxState.FAILED
            detail = (
                f"no Transfer of {line.amount} from {tx.spend['from']} to {line.destination} "
                f"by {tx.spend['token']} in the receipt"
            )
        else:
            state, detail = TxState.FINAL, "final"
        return TxStatus(
            state,
            detail,
            block_number=height,
            block_hash=block_hash,
            confirmations=confirmations,
            fee_paid=fee_paid,
        )

    @staticmethod
    def _paid_tokens(tx: StoredTx, receipt: Mapping[str, Any]) -> bool:
        """Whether the token contract logged Transfer(hot → destination, exact amount)."""
        line = tx.lines[0]
        token = str(tx.spend["token"]).lower()
        sender = str(tx.spend["from"]).lower()
        destination = line.destination.lower()
        logs = receipt.get("logs")
        for entry in logs if isinstance(logs, list) else []:
            if not isinstance(entry, dict) or entry.get("removed"):
                continue
            topics = entry.get("topics")
            if (
                str(entry.get("address", "")).lower() != token
                or not isinstance(topics, list)
                or len(topics) != 3
                or str(topics[0]).lower() != TRANSFER_TOPIC
            ):
                continue
            source, target = _topic_address(topics[1]), _topic_address(topics[2])
            if (
                source is not None
                and target is not None
                and source.lower() == sender
                and target.lower() == destination
                and _word(entry.get("data")) == line.amount.amount
            ):
                return True
        return False

    def _unknown(self, tx: StoredTx, head: ChainHead) -> TxStatus:
        nonce = int(tx.spend["nonce"])
        sender = str(tx.spend["from"])
        if head.final_height >= 0:
            used = self.rpc.get_transaction_count(sender, head.final_height)
            if used > nonce:
                return TxStatus(
                    TxState.DEAD,
                    f"nonce {nonce} of {sender} was used by another transaction, final by "
                    f"block {head.final_height}",
                )
        return TxStatus(TxState.UNKNOWN, "the node does not know the transaction")

    # ------------------------------------------------------------------ replacing

    def replacement(
        self, conn: Connection, tx: StoredTx, *, bump_percent: int, now: datetime
    ) -> SignedTx | None:
        """The same nonce, gas limit and payment with the tip and fee cap raised by at least
        ``bump_percent`` (nodes want 10 % or more), the cap up to the market's if that is
        higher; None if the raised cap would pass ``max_fee_per_gas_wei``. Allocates
        nothing: the nonce is the stored transaction's (same spend key)."""
        if type(bump_percent) is not int or bump_percent < 1:
            raise ValueError(f"bump_percent must be a positive int, got {bump_percent!r}")
        spend = tx.spend
        if str(spend["from"]).lower() != self._hot_lower:
            return None  # signed with another key (the hot key was changed): cannot sign again
        old = spend["fees"]
        tip = _ceil_percent(int(old["max_priority_fee_per_gas"]), 100 + bump_percent)
        cap = _ceil_percent(int(old["max_fee_per_gas"]), 100 + bump_percent)
        ceiling = self.settings.max_fee_per_gas_wei
        if cap > ceiling:
            return None
        try:
            base_fee, _ = self._base_fee()
            market = base_fee * self.settings.base_fee_multiplier + tip
            cap = max(cap, min(market, ceiling))
        except (EthNodeError, RailUnavailable):
            pass  # the bump alone is a valid replacement; the next one can follow the market
        line = tx.lines[0]
        token = parse_eth_address(str(spend["token"])) if "token" in spend else None
        destination = parse_eth_address(str(spend["to"]))
        if destination.text.lower() != line.destination.lower() or int(spend["value"]) != (
            line.amount.amount
        ):
            raise ValueError(f"{tx.txid}: its spend does not match its payout line")
        signed = self._sign(
            token,
            destination,
            int(spend["value"]),
            int(spend["nonce"]),
            int(spend["gas_limit"]),
            EthFees(max_fee_per_gas=cap, max_priority_fee_per_gas=tip),
        )
        return self._signed_tx(
            signed, token, destination, int(spend["value"]), spend_key=tx.spend_key
        )

    def settle(self, conn: Connection, tx: StoredTx, state: TxState) -> None:
        """Nothing to book on Ethereum: the nonce row advanced when signing and never goes
        back (a final, failed or dead transaction's nonce is used either way), and the hot
        wallet's balances are read from the chain rather than kept here."""

    # ------------------------------------------------------------------ helpers

    def _check_coin(self, coin: Asset) -> None:
        if coin not in self.assets:
            raise PayoutNotSendable(
                f"the Ethereum rail pays {', '.join(str(a) for a in self.assets)}, not {coin}"
            )

    def _one_line(self, coin: Asset, lines: Sequence[PayoutLine]) -> PayoutLine:
        self._check_coin(coin)
        if len(lines) != 1:
            raise ValueError(f"an Ethereum transaction pays one payout, got {len(lines)}")
        line = lines[0]
        if line.amount.asset != coin:
            raise ValueError(f"a {line.amount.asset} line in a {coin} payout")
        if not line.amount.is_positive:
            raise PayoutNotSendable(f"cannot pay {line.amount}: amounts must be positive")
        return line

    def _destination(self, line: PayoutLine) -> EthAddress:
        try:
            destination = parse_eth_address(line.destination)
        except InvalidAddress as error:
            raise PayoutNotSendable(error.detail) from None
        if destination.is_zero:
            raise PayoutNotSendable("refusing to pay the zero address: what is sent is burnt")
        return destination

    def _token(self) -> EthAddress:
        if self.usdt_contract is None:
            raise PayoutNotSendable("no USDT (ERC-20) contract is configured")
        return self.usdt_contract
