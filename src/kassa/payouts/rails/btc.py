"""The Bitcoin payout rail: BTC from one P2WPKH hot address, batched on request, bumped by RBF.

What it does, per `kassa.payouts.rails.base.Rail`:

* **Coins** are Kassa's own records (`kassa.payouts.rails.btc_wallet`): found by scanning final
  blocks, reserved by the transaction that spends them, settled when it is final.
  ``check_funds`` runs the scan first (two RPC calls when nothing is new).
* **Fees** are priced at ``estimatesmartfee``'s rate, within the configured floor, fallback and
  cap (`kassa.payouts.rails.btc_fees`); ``sign`` uses the priced rate with the real input count,
  so the fee of a transaction is exactly its (largest possible) vsize times that rate.
* **Transactions** pay one output per payout line, in order (``SignedTx.outputs``), then the
  change back to the hot address, unless the change would be dust: then it is left to the fee.
  Several lines make a batch: one transaction, one change output, one set of inputs, so the fee
  is far below that of separate transactions. Every input signals replace-by-fee.
* **Spend identity**: ``btc:<txid>:<vout>+…`` of the sorted inputs (a SHA-256 of that text
  when it would not fit the 512-character columns). A replacement spends the same inputs, so it
  shares the key, and the coins stay reserved for it.
* **Broadcast** maps Core's ``sendrawtransaction`` codes: already known or in the chain is
  success; inputs missing or spent (-25) and policy refusals (-26, -22) are rejections with the
  node's words; no answer is "unavailable".
* **Status** (`kassa.payouts.rails.btc_status`) reads the node's transaction index, and where
  that says "not found" of a transaction whose inputs are spent, the blocks since it was signed:
  DEAD only when a different transaction spent an input in a final block, or before this one
  was signed; never of a transaction that may be in the chain.
* **Replacement** (BIP125): the same inputs and payment outputs, the fee raised as
  `kassa.payouts.rails.btc_fees` says, taken from the change; None when the change cannot pay it
  or the fee cap forbids it. bcoin 1.0.2 (the local devnet node) has no replace-by-fee: it
  refuses any transaction spending an input a mempool transaction already spends
  (``bad-txns-inputs-spent``, code -26), so there the first version confirms and the
  replacement is reported REJECTED, then UNKNOWN, then DEAD once the first is final.
* **Settle**: final → inputs spent by it, its change a new coin with its block height; dead →
  inputs still unspent on chain are available again, inputs spent elsewhere are marked spent.
  BTC transactions in a block never fail, so FAILED does not occur.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Connection

from kassa.chains.btc.address import BtcAddress, parse_btc_address
from kassa.chains.btc.rpc import BtcNodeError, BtcRpc, RpcError, satoshi
from kassa.chains.btc.scanner import BtcScanner
from kassa.chains.btc.tx import (
    OutPoint,
    Transaction,
    TxOut,
    UnsignedTransaction,
    build_transaction,
    dust_threshold,
    estimate_vsize,
    fee_for_vsize,
)
from kassa.chains.errors import DustOutput, InvalidAddress, InvalidTransaction
from kassa.chains.network import BtcNetwork, Chain
from kassa.clock import Clock, DatabaseClock
from kassa.money import BTC, Asset, AssetCode, Money
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
from kassa.payouts.rails.btc_fees import BtcFeePolicy
from kassa.payouts.rails.btc_status import SIGNED_AFTER, BtcTxWatcher
from kassa.payouts.rails.btc_wallet import (
    RESERVED,
    HotCoin,
    HotWallet,
    HotWalletReorg,
    SyncResult,
    WalletSummary,
    select_coins,
    shortfall_reason,
)
from kassa.payouts.settings import BtcPayoutSettings
from kassa.payouts.signer import Signer
from kassa.payouts.tables import btc_hot_utxo, payout_tx

__all__ = ["BtcRail", "HotWalletReorg"]


def _column_length(column: Column[Any]) -> int:
    length = getattr(column.type, "length", None)
    if type(length) is not int:  # pragma: no cover - the schema gives both a length
        raise TypeError(f"{column} has no length")
    return length


RPC_VERIFY_ERROR = -25
"""Core's RPC_VERIFY_ERROR: inputs missing or already spent."""
RPC_VERIFY_REJECTED = -26
RPC_VERIFY_ALREADY_IN_CHAIN = -27
RPC_IN_WARMUP = -28

MAX_SPEND_KEY = min(
    _column_length(payout_tx.c.spend_key), _column_length(btc_hot_utxo.c.reserved_for)
)


class BtcRail:
    """`Rail` for Bitcoin. ``confirmations`` make a block final (1 on regtest, 6 on mainnet);
    the coin scan starts at ``scan_from_height`` the first time (the block the hot wallet was
    created in, or later)."""

    def __init__(
        self,
        rpc: BtcRpc,
        signer: Signer,
        network: BtcNetwork,
        *,
        settings: BtcPayoutSettings,
        confirmations: int,
        scan_from_height: int = 0,
        clock: Clock | None = None,
    ) -> None:
        self.rpc = rpc
        self.signer = signer
        self.network = network
        self.settings = settings
        self.confirmations = confirmations
        self.scanner = BtcScanner(
            rpc,
            network,
            confirmations=confirmations,
            fallback_fee_rate=settings.fallback_sat_per_kvb,
        )
        self._clock: Clock = clock if clock is not None else DatabaseClock()
        self._hot: BtcAddress = parse_btc_address(signer.address(Chain.BTC, network), network)
        self.wallet = HotWallet(
            rpc,
            self.scanner,
            address=self._hot.text,
            script_pubkey=self._hot.script_pubkey,
            scan_from_height=scan_from_height,
        )
        self._fees = BtcFeePolicy(self.scanner, settings)
        self._watcher = BtcTxWatcher(rpc, self.scanner, confirmations=confirmations)

    # ------------------------------------------------------------------ identity

    @property
    def chain(self) -> Chain:
        return Chain.BTC

    @property
    def assets(self) -> tuple[Asset, ...]:
        return (BTC,)

    @property
    def fee_asset(self) -> Asset:
        return BTC

    def hot_address(self) -> str:
        return self._hot.text

    # ------------------------------------------------------------------ pricing

    def dust_limit(self, coin: Asset, destination: str) -> Money:
        _check_coin(coin)
        return Money(dust_threshold(self._script(destination)), BTC)

    def estimate(self, coin: Asset, lines: Sequence[PayoutLine]) -> FeeEstimate:
        _check_coin(coin)
        return self._fees.estimate(self._line_scripts(lines), self._hot.script_pubkey)

    # ------------------------------------------------------------------ funds

    def hot_balance(self, conn: Connection, coin: Asset) -> Money:
        """The hot wallet's unspent coins as last synced (``hot_wallet.low``): no node call."""
        _check_coin(coin)
        summary = self.wallet.summary(conn, tip=0, min_confirmations=0)
        return Money(sum(c.value for c in (*summary.spendable, *summary.waiting)), BTC)

    def check_funds(self, conn: Connection, coin: Asset, lines: Sequence[PayoutLine]) -> None:
        _check_coin(coin)
        scripts = self._line_scripts(lines)
        synced = self.wallet.sync(conn, now=self._clock.now(conn))
        tip = synced.final_height + self.confirmations - 1
        rate, _ = self._fees.rate()
        summary = self.wallet.summary(
            conn, tip=tip, min_confirmations=self.settings.min_confirmations_to_spend
        )
        pay = _total(lines)
        selection = select_coins(
            summary.spendable,
            pay=pay,
            payment_scripts=scripts,
            change_script=self._hot.script_pubkey,
            sat_per_kvb=rate,
        )
        if selection is None:
            # Raised as "recorded": the unit of work keeps what the scan wrote.
            raise self._short(summary, pay, scripts, rate, synced, incoming=True)

    def _short(
        self,
        summary: WalletSummary,
        pay: int,
        scripts: Sequence[bytes],
        rate: int,
        synced: SyncResult | None,
        *,
        incoming: bool,
    ) -> HotWalletShort:
        inputs = max(1, len(summary.spendable))
        needed = pay + fee_for_vsize(
            estimate_vsize(inputs, [*scripts, self._hot.script_pubkey]), rate
        )
        return shortfall_reason(
            summary,
            address=self._hot.text,
            needed=needed,
            incoming=self._incoming() if incoming else None,
            sync=synced,
            min_confirmations=self.settings.min_confirmations_to_spend,
        )

    def _incoming(self) -> tuple[int, int] | None:
        """Outputs paying the hot address in blocks that are not final yet (count, sat);
        None if the node cannot say. Only asked when the wallet is short, for the reason."""
        try:
            head = self.scanner.head()
            count = value = 0
            for height in range(max(head.final_height + 1, 0), head.height + 1):
                block = self.rpc.get_block(self.rpc.get_block_hash(height))
                for tx in block.get("tx", ()):
                    for vout in tx.get("vout", ()):
                        script = vout.get("scriptPubKey") or {}
                        if script.get("hex") == self._hot.script_pubkey.hex():
                            count += 1
                            value += satoshi(vout.get("value"))
        except BtcNodeError:
            return None
        return count, value

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
        _check_coin(coin)
        scripts = self._line_scripts(lines)
        for line, script in zip(lines, scripts, strict=True):
            dust = dust_threshold(script)
            if line.amount.amount < dust:
                raise PayoutNotSendable(
                    f"payout {line.request_id}: {line.amount.amount} sat to {line.destination} "
                    f"is below the dust limit of {dust} sat for that address; nodes would not "
                    "relay it"
                )
        rate = self._fees.signing_rate(estimate.params)
        try:
            head = self.scanner.head()
        except BtcNodeError as error:
            raise RailUnavailable(f"Bitcoin node: {error}") from error
        tip = head.height
        summary = self.wallet.summary(
            conn, tip=tip, min_confirmations=self.settings.min_confirmations_to_spend
        )
        pay = _total(lines)
        held: list[HotCoin] = []
        selection = None
        for locked in self.wallet.lock_available(conn, summary.spendable):
            held.append(locked)
            selection = select_coins(
                held,
                pay=pay,
                payment_scripts=scripts,
                change_script=self._hot.script_pubkey,
                sat_per_kvb=rate,
            )
            if selection is not None:
                break
        if selection is None:
            if len(held) == len(summary.spendable):
                raise self._short(summary, pay, scripts, rate, None, incoming=False)
            raise HotWalletShort(
                f"the BTC hot wallet {self._hot.text}: {sum(c.value for c in held)} sat in "
                f"{len(held)} coins could be taken for this payout of {pay} sat plus fee; "
                f"{len(summary.spendable) - len(held)} more coins are being spent by payouts "
                "signed at this moment"
            )
        outputs = [
            TxOut(line.amount.amount, script) for line, script in zip(lines, scripts, strict=True)
        ]
        change = None
        if selection.change:
            change = {"vout": len(outputs), "value": selection.change}
            outputs.append(TxOut(selection.change, self._hot.script_pubkey))
        try:
            unsigned = build_transaction(
                [c.coin() for c in selection.coins], outputs, max_fee=selection.fee
            )
        except DustOutput as error:
            raise PayoutNotSendable(str(error)) from None
        signed = self._sign(unsigned)
        spend_key = _spend_key(selection.coins)
        self.wallet.reserve(conn, selection.coins, spend_key, now=now)
        return SignedTx(
            txid=signed.txid,
            raw=signed.serialize().hex(),
            spend_key=spend_key,
            spend={
                "address": self._hot.text,
                "inputs": [
                    {"txid": c.txid, "vout": c.vout, "value": c.value} for c in selection.coins
                ],
                "change": change,
                "sat_per_kvb": rate,
                "vsize": selection.vsize,
                # Blocks up to this one were final before the transaction existed: neither it
                # nor a replacement of it can be in them (see `kassa.payouts.rails.btc_status`).
                SIGNED_AFTER: head.final_height,
            },
            fee=Money(unsigned.fee, BTC),
            outputs={line.request_id: index for index, line in enumerate(lines)},
        )

    def _sign(self, unsigned: UnsignedTransaction) -> Transaction:
        signed = self.signer.sign_btc(unsigned)
        if signed.serialize(witness=False) != unsigned.tx.serialize(witness=False):
            raise InvalidTransaction("the signer returned a different transaction than asked")
        return signed

    # ------------------------------------------------------------------ the chain

    def broadcast(self, tx: StoredTx) -> Broadcast:
        try:
            txid = self.rpc.send_raw_transaction(tx.raw)
        except RpcError as error:
            if error.code == RPC_VERIFY_ALREADY_IN_CHAIN:
                return Broadcast(BroadcastOutcome.ACCEPTED, error.message)
            if error.code == RPC_IN_WARMUP:
                return Broadcast(BroadcastOutcome.UNAVAILABLE, error.message)
            return Broadcast(BroadcastOutcome.REJECTED, f"{error.message} (code {error.code})")
        except BtcNodeError as error:
            return Broadcast(BroadcastOutcome.UNAVAILABLE, str(error))
        if txid != tx.txid:
            return Broadcast(
                BroadcastOutcome.REJECTED, f"the node answered txid {txid}, expected {tx.txid}"
            )
        return Broadcast(BroadcastOutcome.ACCEPTED)

    def status(self, tx: StoredTx) -> TxStatus:
        return self._watcher.status(tx)

    # ------------------------------------------------------------------ replacing

    def replacement(
        self, conn: Connection, tx: StoredTx, *, bump_percent: int, now: datetime
    ) -> SignedTx | None:
        old = Transaction.parse(bytes.fromhex(tx.raw))
        change = tx.spend.get("change")
        if not change:
            return None
        change_vout = int(change["vout"])
        if (
            change_vout >= len(old.outputs)
            or old.outputs[change_vout].script_pubkey != self._hot.script_pubkey
        ):
            raise InvalidTransaction(f"{tx.txid}: output {change_vout} is not the change")
        coins = self.wallet.coins(conn, [i.outpoint for i in old.inputs])
        if any(c is None or c.status != RESERVED or c.reserved_for != tx.spend_key for c in coins):
            return None  # spent meanwhile, or never Kassa's: nothing to replace
        held = [c for c in coins if c is not None]
        vsize = estimate_vsize(len(held), [o.script_pubkey for o in old.outputs])
        old_fee = tx.fee.amount
        new_fee = self._fees.replacement_fee(old_fee, vsize, bump_percent)
        if new_fee is None:
            return None
        new_change = old.outputs[change_vout].amount - (new_fee - old_fee)
        if new_change < dust_threshold(self._hot.script_pubkey):
            return None
        outputs = list(old.outputs)
        outputs[change_vout] = TxOut(new_change, self._hot.script_pubkey)
        unsigned = build_transaction(
            [c.coin() for c in held],
            outputs,
            version=old.version,
            locktime=old.locktime,
            max_fee=new_fee,
        )
        signed = self._sign(unsigned)
        return SignedTx(
            txid=signed.txid,
            raw=signed.serialize().hex(),
            spend_key=tx.spend_key,
            spend={
                **tx.spend,
                "change": {"vout": change_vout, "value": new_change},
                "sat_per_kvb": -(-new_fee * 1000 // vsize),
                "vsize": vsize,
                "replaces": tx.txid,
            },
            fee=Money(unsigned.fee, BTC),
            outputs={line.request_id: index for index, line in enumerate(tx.lines)},
        )

    # ------------------------------------------------------------------ settling

    def settle(self, conn: Connection, tx: StoredTx, state: TxState) -> None:
        try:
            self._settle(conn, tx, state)
        except BtcNodeError as error:
            raise RailUnavailable(f"Bitcoin node: {error}") from error

    def _settle(self, conn: Connection, tx: StoredTx, state: TxState) -> None:
        now = self._clock.now(conn)
        parsed = Transaction.parse(bytes.fromhex(tx.raw))
        inputs = [i.outpoint for i in parsed.inputs]
        if state is TxState.FINAL:
            mined = self._watcher.mined_at(tx, inputs)
            if mined is None:
                raise RailUnavailable(f"{tx.txid} is not in a block on the node; cannot settle it")
            _, height = mined
            self.wallet.mark_spent(conn, inputs, tx.txid, now=now)
            change = tx.spend.get("change")
            if change:
                vout = int(change["vout"])
                output = parsed.outputs[vout]
                if output.script_pubkey != self._hot.script_pubkey:
                    raise InvalidTransaction(f"{tx.txid}: output {vout} is not the change")
                self.wallet.add_coin(conn, tx.txid, vout, output.amount, height=height, now=now)
        elif state is TxState.DEAD:
            spent_elsewhere: list[OutPoint] = []
            unspent: list[OutPoint] = []
            for outpoint in inputs:
                on_chain = self.rpc.get_tx_out(outpoint.txid, outpoint.vout, include_mempool=False)
                (unspent if on_chain is not None else spent_elsewhere).append(outpoint)
            self.wallet.mark_spent(conn, spent_elsewhere, None, now=now)
            self.wallet.release(conn, unspent, tx.spend_key, now=now)
        else:
            raise ValueError(f"a BTC transaction is settled as final or dead, not {state}")

    # ------------------------------------------------------------------ helpers

    def _script(self, destination: str) -> bytes:
        try:
            return parse_btc_address(destination, self.network).script_pubkey
        except InvalidAddress as error:
            raise PayoutNotSendable(error.detail) from None

    def _line_scripts(self, lines: Sequence[PayoutLine]) -> list[bytes]:
        if not lines:
            raise ValueError("a transaction pays at least one payout line")
        for line in lines:
            _check_coin(line.amount.asset)
            if line.amount.amount <= 0:
                raise PayoutNotSendable(f"payout {line.request_id}: amount must be positive")
        return [self._script(line.destination) for line in lines]


def _check_coin(coin: Asset) -> None:
    if coin.code is not AssetCode.BTC:
        raise PayoutNotSendable(f"the Bitcoin rail pays BTC, not {coin.code.value}")


def _total(lines: Sequence[PayoutLine]) -> int:
    return sum(line.amount.amount for line in lines)


def _spend_key(coins: Sequence[HotCoin]) -> str:
    """``btc:<txid>:<vout>+…`` of the sorted inputs; when that is longer than the columns
    holding it (``payout_tx.spend_key``, ``btc_hot_utxo.reserved_for``: 8 or more inputs),
    ``btc:sha256:<hex>`` of that text instead. Either way the same inputs give the same key;
    the inputs themselves are listed in the transaction's ``spend``."""
    key = "btc:" + "+".join(sorted(f"{c.txid}:{c.vout}" for c in coins))
    if len(key) <= MAX_SPEND_KEY:
        return key
    return "btc:sha256:" + hashlib.sha256(key.encode("ascii")).hexdigest()
