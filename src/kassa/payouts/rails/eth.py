"""The Ethereum rail: ETH and USDT (ERC-20) payouts from one hot address, EIP-1559 fees.

Design:
* One transaction per payout. Ethereum has no batching worth the risk (one revert would fail
  every payout in it), so a rail call gets exactly one `PayoutLine`.
* Fees and gas are priced from the chain when the payout is priced
  (`kassa.payouts.rails.eth_fees`): the customer is charged the *expected* fee; the transaction
  may cost up to ``gas limit × fee cap``, and what it really cost is measured from the receipt.
* Nonces are allocated without gaps in the hot address's locked ``payout_nonce`` row, never
  below the chain's count (`kassa.payouts.rails.eth_nonces`); ``check_funds`` subtracts what
  the hot address's unmined payout transactions still commit, so payouts in flight never
  overspend.
* ``sign`` checks the funds again once it holds the nonce row's lock (``check_funds`` ran in an
  earlier transaction): two workers that both passed ``check_funds`` for a wallet that pays
  only one of them then sign one payout; the other gets `HotWalletShort` and allocates nothing.
* Broadcasting first asks the node whether it knows the transaction already: re-sending the
  bytes of a mined transaction gets "nonce too low" from geth (it is not an error, it is done),
  and ganache 7.9 treats a nonce of 0 as "fill in the next nonce" and would execute the same
  bytes a second time. Only then are the exact stored bytes sent.
* Status (`kassa.payouts.rails.eth_status`) follows the deposit side's finality rule; a USDT
  payout is final only with the token's exact ``Transfer`` log, and a transaction the node does
  not know is ``DEAD`` only once a final block shows its nonce used.
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

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection

from kassa.chains.errors import InvalidAddress, InvalidTransaction
from kassa.chains.eth.address import EthAddress, parse_eth_address
from kassa.chains.eth.rpc import EthNodeError, EthRpc, RpcError
from kassa.chains.eth.scanner import EthFinality, EthScanner
from kassa.chains.eth.tx import EthFees, SignedEthTransaction
from kassa.chains.network import Chain, EthNetwork
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
)
from kassa.payouts.rails.eth_fees import GAS_HEADROOM_PERCENT, EthFeePricer, ceil_percent
from kassa.payouts.rails.eth_nonces import commitments, lock_nonce_row, take_nonce
from kassa.payouts.rails.eth_status import EthTxWatcher
from kassa.payouts.settings import EthPayoutSettings
from kassa.payouts.signer import Signer

__all__ = ["GAS_HEADROOM_PERCENT", "EthRail"]

_BALANCE_OF_SELECTOR = bytes.fromhex("70a08231")  # balanceOf(address)
_ZERO_ADDRESS = "0x" + "00" * 20
_KNOWN = ("already known", "known transaction", "alreadyknown")
_NONCE_TOO_LOW = ("nonce too low", "doesn't have the correct nonce")
"""geth/erigon/besu say "nonce too low"; ganache says "the tx doesn't have the correct nonce"
(only for a nonce below the account's: a higher one is queued)."""


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
        self._hot: EthAddress | None = None
        self._fees = EthFeePricer(rpc, settings, hot=self._hot_address, token=self._token)
        # The deposit side's finality rule, reused as is: only `head` is asked, which does not
        # look at the token contract (the zero address stands in when there is no USDT).
        finality_rule = EthScanner(
            rpc,
            usdt_contract=usdt_contract.text if usdt_contract is not None else _ZERO_ADDRESS,
            confirmations=confirmations,
            finality=finality,
        )
        self._watcher = EthTxWatcher(rpc, finality_rule)

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
        return self._fees.estimate(coin, destination, line.amount.amount)

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
        eth_committed, token_committed, in_flight = commitments(conn, self._hot_lower, count)
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

    def hot_balance(self, conn: Connection, coin: Asset) -> Money:
        """What the hot wallet holds of ``coin`` (``hot_wallet.low``)."""
        try:
            if coin == USDT_ERC20:
                return self._token_balance()
            return Money(self.rpc.get_balance(self._hot_address().text, "latest"), ETH)
        except EthNodeError as error:
            raise RailUnavailable(f"Ethereum node: {error}") from None

    def _token_balance(self) -> Money:
        token = self._token()
        data = _BALANCE_OF_SELECTOR + bytes(12) + self._hot_address().raw
        answer = self.rpc.call_contract({"to": token.text, "data": "0x" + data.hex()}, "latest")
        if len(answer) != 32:
            raise RailUnavailable(
                f"balanceOf on {token.text} answered {len(answer)} bytes: is it the USDT contract?"
            )
        return Money(int.from_bytes(answer, "big"), USDT_ERC20)

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
        row_nonce = lock_nonce_row(conn, self._hot_lower, now)
        # Checked again under the lock: another worker may have signed and stored a payout of
        # this address since this one's check_funds; its commitment is visible now (it
        # committed before the lock was granted), and ours is not stored until we commit.
        # Short: the caller rolls back, so no nonce is taken.
        self._check_funds(conn, coin, line, estimate)
        try:
            chain_count = self.rpc.get_transaction_count(self._hot_address().text, "latest")
        except EthNodeError as error:
            raise RailUnavailable(f"Ethereum node: {error}") from None
        nonce = take_nonce(
            conn, self._hot_lower, row_nonce=row_nonce, chain_count=chain_count, now=now
        )
        token = self._token() if coin == USDT_ERC20 else None
        signed = self._sign(
            token, destination, line.amount.amount, nonce, params["gas_limit"], fees
        )
        return self._signed_tx(signed, token, destination, line.amount.amount, spend_key=None)

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
        return self._watcher.status(tx)

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
        tip = ceil_percent(int(old["max_priority_fee_per_gas"]), 100 + bump_percent)
        cap = ceil_percent(int(old["max_fee_per_gas"]), 100 + bump_percent)
        ceiling = self.settings.max_fee_per_gas_wei
        if cap > ceiling:
            return None
        try:
            base_fee, _ = self._fees.base_fee()
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
