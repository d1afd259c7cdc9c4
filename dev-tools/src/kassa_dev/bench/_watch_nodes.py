"""The local chains of `kassa bench watchers`: one node per chain, and a payer that puts a batch
of real signed payments into exactly one block.

The devnet faucet (`kassa_dev.devnet.faucet.Faucet`) pays one address per call and waits until the
payment is mined, mining a block for it (bcoin, the TRON simulator) or relying on ganache's
instamine. A block holding K deposits needs the K payments broadcast first and the block mined
after, so the payers here sign with the faucet's devnet keys and transaction builders, broadcast
the batch, mine one block, and check that every payment is in it and succeeded:

* BTC (bcoin regtest): each payment spends its own mature coinbase of the faucet key. Its
  previous transaction is then distinct and mined before the measured range, so the scanner's
  sender lookup costs one ``getrawtransaction`` per deposit, as for customers' own wallets.
  Output 0 pays the deposit address, output 1 returns the change.
* ETH (ganache): instamine is paused (``miner_stop``); account 0 sends native ETH and TestUSDT
  ``transfer`` calls with consecutive nonces, then ``evm_mine`` makes one block of them.
* TRON (Kassa's simulator, block interval 0: blocks only on ``/debug/mine``): the genesis
  account signs TRX and USDT-TRC20 transfers referencing the solidified block.

With ``--mainnet-blocks`` every block of the range also carries unrelated traffic, broadcast by
`LocalChain.fill` just before the block is mined, so blocks have the size of mainnet ones while
only the deposits pay watched addresses:

* BTC: one transaction with `MAINNET_FILLER` [BTC] outputs to fresh random P2WPKH scripts, each
  spending the previous one's change (one coinbase funds them all);
* ETH: half native ETH transfers, half TestUSDT ``transfer`` calls (one log each), to random
  addresses;
* TRON: TRX and USDT-TRC20 transfers alternating, to random addresses.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import coincurve
import httpx
from hexbytes import HexBytes
from pydantic import SecretStr
from web3 import Web3

from kassa.chains.btc.address import parse_btc_address
from kassa.chains.btc.tx import (
    Coin,
    OutPoint,
    TxOut,
    build_transaction,
    dust_threshold,
    estimate_vsize,
    fee_for_vsize,
)
from kassa.chains.eth.address import parse_eth_address
from kassa.chains.network import BtcNetwork, Chain
from kassa.chains.scanning import NATIVE_POSITION
from kassa.chains.tron.address import TronAddress, parse_tron_address
from kassa.chains.tron.tx import sign_trc20_transfer, sign_trx_transfer
from kassa.deposits.settings import (
    BtcChainSettings,
    ChainsSettings,
    EthChainSettings,
    TronChainSettings,
)
from kassa.money import BTC, ETH, TRX, USDT_ERC20, USDT_TRC20, Asset, AssetCode
from kassa_dev.bench._watch_model import PaidDeposit, Payment, WatchBenchError
from kassa_dev.devnet import bitcoin as devbtc
from kassa_dev.devnet import ganache, tron_node
from kassa_dev.devnet.faucet import BTC_FEE_RATE, TRC20_FEE_LIMIT
from kassa_dev.devnet.testing import (
    BitcoinNode,
    GanacheNode,
    NodeHandle,
    TronNode,
    start_bitcoin_node,
    start_ganache_node,
    start_tron_node,
)
from kassa_dev.devnet.tron.config import DEFAULT_GENESIS_KEY_HEX

ASSETS: dict[Chain, tuple[Asset, ...]] = {
    Chain.BTC: (BTC,),
    Chain.ETH: (ETH, USDT_ERC20),
    Chain.TRON: (TRX, USDT_TRC20),
}
"""The assets a chain's deposits rotate through."""

AMOUNT_RANGES: dict[AssetCode, tuple[int, int]] = {
    AssetCode.BTC: (10_000, 500_000),  # 0.0001-0.005 BTC in satoshi
    AssetCode.ETH: (10**15, 10**16),  # 0.001-0.01 ETH in wei
    AssetCode.USDT_ERC20: (1_000_000, 100_000_000),  # 1-100 USDT in micro-USDT
    AssetCode.TRX: (1_000_000, 50_000_000),  # 1-50 TRX in sun
    AssetCode.USDT_TRC20: (1_000_000, 100_000_000),
}
"""Smallest and largest deposit per asset, minor units; all above the default dust limits."""

BTC_MAX_SETUP_HEIGHT = 2_000
"""Regtest halves the subsidy every 150 blocks: past this height a coinbase (about 0.006 BTC)
no longer covers the largest deposit and its fee."""
MAINNET_FILLER: dict[Chain, int] = {Chain.BTC: 2_000, Chain.ETH: 200, Chain.TRON: 300}
"""Unrelated transfers per block with ``--mainnet-blocks``: BTC outputs (mainnet blocks carry
thousands), ETH transactions (half of them USDT transfers), TRON transfers."""
FILLER_BTC_OUTPUT = 1_000
"""Satoshi per filler output (above the P2WPKH dust threshold of 294)."""
ETH_TRANSFER_GAS = 21_000
ERC20_TRANSFER_GAS = 100_000
"""A TestUSDT transfer to a new holder takes about 52 000 gas."""
ERC20_TRANSFER_SELECTOR = bytes.fromhex("a9059cbb")
PRIORITY_FEE_WEI = 10**9


class LocalChain(ABC):
    """A running local node of one chain that the benchmark can pay deposits on."""

    chain: Chain
    handle: NodeHandle

    @property
    def node_pid(self) -> int:
        return self.handle.process.pid

    @abstractmethod
    def settings(self) -> ChainsSettings:
        """Chain settings pointing at this node (what `build_scanner` needs)."""

    @abstractmethod
    def tip(self) -> int: ...

    def prepare(self, payments: int) -> None:
        """Get ready to make `payments` payments (coins, miner mode); mined before the range."""
        return

    @abstractmethod
    def pay_block(self, payments: Sequence[Payment]) -> list[PaidDeposit]:
        """Broadcast `payments`, mine exactly one block holding them, return where they landed."""

    @abstractmethod
    def mine_empty(self, blocks: int) -> None: ...

    @abstractmethod
    def fill(self, transfers: int, rng: random.Random) -> None:
        """Broadcast `transfers` payments to random unwatched addresses for the next block."""

    def stop(self) -> None:
        self.handle.stop()


def start_chain(chain: Chain, workdir: Path) -> LocalChain:
    """Start `chain`'s node in `workdir` on a free port (`kassa_dev.devnet.testing`)."""
    if chain is Chain.BTC:
        return BtcLocalChain(start_bitcoin_node(workdir))
    if chain is Chain.ETH:
        return EthLocalChain(start_ganache_node(workdir))
    return TronLocalChain(start_tron_node(workdir, block_interval=0))


# --------------------------------------------------------------------------- Bitcoin


class BtcLocalChain(LocalChain):
    chain = Chain.BTC

    def __init__(self, node: BitcoinNode) -> None:
        self.handle = self.node = node
        self.rpc = node.rpc()
        self.key = devbtc.faucet_key()
        self._secret = coincurve.PrivateKey(self.key.private_key)
        self._coins: list[devbtc.Utxo] = []
        self._filler: Coin | None = None
        """The coin the next filler transaction spends: a coinbase, then each one's change."""

    def settings(self) -> ChainsSettings:
        return ChainsSettings(
            btc=BtcChainSettings(rpc_url=self.node.url, rpc_api_key=SecretStr(self.node.api_key))
        )

    def tip(self) -> int:
        return self.rpc.height()

    def prepare(self, payments: int) -> None:
        # One mature coinbase per payment, and one for the filler transactions: mine until
        # there are enough, then let them mature.
        payments += 1
        smallest = AMOUNT_RANGES[AssetCode.BTC][1] + 2 * self._fee()
        while True:
            tip = self.rpc.height()
            coins = [
                coin
                for coin in self.rpc.utxos(self.key.address)
                if coin.coinbase and coin.spendable_at(tip) and coin.value >= smallest
            ]
            if len(coins) >= payments:
                break
            missing = payments - len(coins)
            if tip + missing + devbtc.COINBASE_MATURITY > BTC_MAX_SETUP_HEIGHT:
                raise WatchBenchError(
                    f"{payments:,} BTC deposits need more mature coinbases than regtest's "
                    f"halving subsidy leaves worth paying from; use at most about "
                    f"{BTC_MAX_SETUP_HEIGHT - 250:,} BTC deposits"
                )
            self.rpc.generate(missing + devbtc.COINBASE_MATURITY, self.key.address)
        # Oldest first: those are never near the maturity edge; the oldest (the largest
        # subsidy) funds the filler.
        oldest = sorted(coins, key=lambda coin: (coin.height, coin.txid))[:payments]
        first = oldest.pop(0)
        self._filler = Coin(OutPoint(first.txid, first.vout), first.value, first.script_pubkey)
        self._coins = oldest

    def fill(self, transfers: int, rng: random.Random) -> None:
        coin = self._filler
        if coin is None:
            raise WatchBenchError("prepare() first: no coin for the BTC filler")
        scripts = [b"\x00\x14" + rng.randbytes(20) for _ in range(transfers)]
        change_script = self.key.script_pubkey
        fee = fee_for_vsize(estimate_vsize(1, [*scripts, change_script]), BTC_FEE_RATE)
        change = coin.amount - transfers * FILLER_BTC_OUTPUT - fee
        if change < dust_threshold(change_script):
            raise WatchBenchError("the BTC filler coin is spent; use fewer blocks")
        outputs = [TxOut(FILLER_BTC_OUTPUT, script) for script in scripts]
        signed = build_transaction([coin], [*outputs, TxOut(change, change_script)]).sign(
            [self._secret]
        )
        txid = self.rpc.send_raw_transaction(signed.serialize())
        self._filler = Coin(OutPoint(txid, transfers), change, change_script)

    def _fee(self) -> int:
        script = self.key.script_pubkey
        return fee_for_vsize(estimate_vsize(1, [script, script]), BTC_FEE_RATE)

    def pay_block(self, payments: Sequence[Payment]) -> list[PaidDeposit]:
        if len(payments) > len(self._coins):
            raise WatchBenchError("more BTC payments than prepared coins")
        sent: list[tuple[Payment, str]] = []
        for payment in payments:
            coin = self._coins.pop(0)
            destination = parse_btc_address(payment.address, BtcNetwork.REGTEST).script_pubkey
            amount = payment.money.amount
            fee = fee_for_vsize(
                estimate_vsize(1, [destination, self.key.script_pubkey]), BTC_FEE_RATE
            )
            change = coin.value - amount - fee
            if change < dust_threshold(self.key.script_pubkey):
                raise WatchBenchError(f"coin {coin.txid}:{coin.vout} is too small for {amount}")
            signed = build_transaction(
                [Coin(OutPoint(coin.txid, coin.vout), coin.value, coin.script_pubkey)],
                [TxOut(amount, destination), TxOut(change, self.key.script_pubkey)],
            ).sign([self._secret])
            txid = self.rpc.send_raw_transaction(signed.serialize())
            if txid != signed.txid:
                raise WatchBenchError(f"bcoin answered txid {txid} for {signed.txid}")
            sent.append((payment, txid))
        [block_hash] = self.rpc.generate(1, self.key.address)
        block = self.rpc.call("getblock", block_hash, 1)
        missing = {txid for _, txid in sent} - set(block["tx"])
        if missing:
            raise WatchBenchError(f"{len(missing)} BTC payment(s) missing from block {block_hash}")
        height = int(block["height"])
        return [
            PaidDeposit(
                p.address, AssetCode.BTC.value, p.money.amount, txid, position=0, height=height
            )
            for p, txid in sent
        ]

    def mine_empty(self, blocks: int) -> None:
        self.rpc.generate(blocks, self.key.address)


# --------------------------------------------------------------------------- Ethereum


class EthLocalChain(LocalChain):
    chain = Chain.ETH

    def __init__(self, node: GanacheNode) -> None:
        self.handle = self.node = node
        self.w3 = node.web3()
        self.payer = ganache.dev_account(0)
        self.usdt = Web3.to_checksum_address(node.usdt_address)
        self._nonce: int | None = None
        self._fill: tuple[int, random.Random] | None = None
        """The payer's next nonce, counted here: with mining paused, ganache's pending count
        does not include the transactions waiting for the next block."""

    def _nonces(self, count: int) -> range:
        if self._nonce is None:
            self._nonce = self.w3.eth.get_transaction_count(self.payer.address, "pending")
        taken = range(self._nonce, self._nonce + count)
        self._nonce += count
        return taken

    def settings(self) -> ChainsSettings:
        return ChainsSettings(
            eth=EthChainSettings(rpc_url=self.node.url, usdt_contract=self.node.usdt_address)
        )

    def tip(self) -> int:
        return int(self.w3.eth.block_number)

    def _request(self, method: str) -> Any:
        answer = self.w3.provider.make_request(cast(Any, method), [])
        if "error" in answer:
            raise WatchBenchError(f"ganache {method}: {answer['error']}")
        return answer.get("result")

    def prepare(self, payments: int) -> None:
        # Pending transactions now wait for evm_mine: one block holds a whole batch.
        self._request("miner_stop")

    def fill(self, transfers: int, rng: random.Random) -> None:
        # Sent after the block's deposits (`_send_fill`): the deposits get the lower nonces, so
        # a block that cannot take the whole filler still holds every deposit.
        self._fill = (transfers, rng)

    def _send_fill(self) -> None:
        if self._fill is None:
            return
        transfers, rng = self._fill
        self._fill = None
        base_fee = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 0))
        for offset, nonce in enumerate(self._nonces(transfers)):
            fields: dict[str, Any] = {
                "chainId": ganache.CHAIN_ID,
                "nonce": nonce,
                "type": 2,
                "maxPriorityFeePerGas": PRIORITY_FEE_WEI,
                "maxFeePerGas": 2 * base_fee + PRIORITY_FEE_WEI,
            }
            to = rng.randbytes(20)
            if offset % 2:
                data = ERC20_TRANSFER_SELECTOR + to.rjust(32, b"\0") + (1).to_bytes(32)
                fields |= {"to": self.usdt, "value": 0, "gas": ERC20_TRANSFER_GAS, "data": data}
            else:
                address = Web3.to_checksum_address(to)
                fields |= {"to": address, "value": 10**9, "gas": ETH_TRANSFER_GAS}
            signed = self.payer.sign_transaction(fields)
            self.w3.eth.send_raw_transaction(signed.raw_transaction)

    def pay_block(self, payments: Sequence[Payment]) -> list[PaidDeposit]:
        base_fee = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 0))
        sent: list[tuple[Payment, str]] = []
        for payment, nonce in zip(payments, self._nonces(len(payments)), strict=True):
            fields: dict[str, Any] = {
                "chainId": ganache.CHAIN_ID,
                "nonce": nonce,
                "type": 2,
                "maxPriorityFeePerGas": PRIORITY_FEE_WEI,
                "maxFeePerGas": 2 * base_fee + PRIORITY_FEE_WEI,
            }
            if payment.money.asset.code is AssetCode.ETH:
                to = Web3.to_checksum_address(payment.address)
                fields |= {"to": to, "value": payment.money.amount, "gas": ETH_TRANSFER_GAS}
            else:
                data = _erc20_transfer(payment.address, payment.money.amount)
                fields |= {"to": self.usdt, "value": 0, "gas": ERC20_TRANSFER_GAS, "data": data}
            signed = self.payer.sign_transaction(fields)
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            sent.append((payment, HexBytes(tx_hash).to_0x_hex()))
        self._send_fill()
        self._request("evm_mine")
        block = self.w3.eth.get_block("latest")
        included = {HexBytes(h).to_0x_hex() for h in block["transactions"]}  # type: ignore[arg-type]
        paid = []
        for payment, txid in sent:
            receipt = self.w3.eth.get_transaction_receipt(txid)  # type: ignore[arg-type]
            if txid not in included or receipt["status"] != 1:
                raise WatchBenchError(f"ETH payment {txid} is not a successful tx of the block")
            native = payment.money.asset.code is AssetCode.ETH
            paid.append(
                PaidDeposit(
                    payment.address,
                    payment.money.asset.code.value,
                    payment.money.amount,
                    txid,
                    position=NATIVE_POSITION if native else 0,
                    height=int(block["number"]),
                )
            )
        return paid

    def mine_empty(self, blocks: int) -> None:
        for _ in range(blocks):
            self._send_fill()
            self._request("evm_mine")


def _erc20_transfer(to: str, amount: int) -> bytes:
    """Call data of ``transfer(to, amount)``: the selector and two 32-byte words."""
    return (
        ERC20_TRANSFER_SELECTOR + parse_eth_address(to).raw.rjust(32, b"\0") + amount.to_bytes(32)
    )


# --------------------------------------------------------------------------- TRON


class TronLocalChain(LocalChain):
    chain = Chain.TRON

    def __init__(self, node: TronNode) -> None:
        self.handle = self.node = node
        self.url = node.url
        self.genesis = coincurve.PrivateKey(bytes.fromhex(DEFAULT_GENESIS_KEY_HEX))
        self._client = httpx.Client(timeout=30.0)

    def settings(self) -> ChainsSettings:
        return ChainsSettings(
            tron=TronChainSettings(api_url=self.url, usdt_contract=self.node.usdt_contract)
        )

    def tip(self) -> int:
        return tron_node.debug_info(self.url).head

    def pay_block(self, payments: Sequence[Payment]) -> list[PaidDeposit]:
        info = tron_node.debug_info(self.url)
        token = parse_tron_address(info.usdt_contract)
        sent: list[tuple[Payment, str]] = []
        for payment in payments:
            to = parse_tron_address(payment.address)
            amount = payment.money.amount
            if payment.money.asset.code is AssetCode.TRX:
                signed = sign_trx_transfer(
                    self.genesis,
                    to=to,
                    amount_sun=amount,
                    ref_block_id=info.solid_head_id,
                    timestamp_ms=info.chain_time_ms,
                )
            else:
                signed = sign_trc20_transfer(
                    self.genesis,
                    token=token,
                    to=to,
                    amount=amount,
                    fee_limit_sun=TRC20_FEE_LIMIT,
                    ref_block_id=info.solid_head_id,
                    timestamp_ms=info.chain_time_ms,
                )
            answer = self._post("wallet/broadcasttransaction", signed.payload())
            if not answer.get("result"):
                raise WatchBenchError(f"the TRON simulator refused a payment: {answer}")
            sent.append((payment, signed.txid))
        height = tron_node.mine(self.url).head
        paid = []
        for payment, txid in sent:
            receipt = self._post("wallet/gettransactioninfobyid", {"value": txid})
            if receipt.get("blockNumber") != height or receipt.get("result") == "FAILED":
                raise WatchBenchError(f"TRON payment {txid} is not a successful tx of {height}")
            native = payment.money.asset.code is AssetCode.TRX
            paid.append(
                PaidDeposit(
                    payment.address,
                    payment.money.asset.code.value,
                    payment.money.amount,
                    txid,
                    position=NATIVE_POSITION if native else 0,
                    height=height,
                )
            )
        return paid

    def fill(self, transfers: int, rng: random.Random) -> None:
        info = tron_node.debug_info(self.url)
        token = parse_tron_address(info.usdt_contract)
        for number in range(transfers):
            to = TronAddress.from_bytes(rng.randbytes(20))
            if number % 2:
                signed = sign_trc20_transfer(
                    self.genesis,
                    token=token,
                    to=to,
                    amount=1,
                    fee_limit_sun=TRC20_FEE_LIMIT,
                    ref_block_id=info.solid_head_id,
                    timestamp_ms=info.chain_time_ms,
                )
            else:
                signed = sign_trx_transfer(
                    self.genesis,
                    to=to,
                    amount_sun=1_000_000,
                    ref_block_id=info.solid_head_id,
                    timestamp_ms=info.chain_time_ms,
                )
            answer = self._post("wallet/broadcasttransaction", signed.payload())
            if not answer.get("result"):
                raise WatchBenchError(f"the TRON simulator refused a filler transfer: {answer}")

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self._client.post(f"{self.url}/{path}", json=body)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer

    def mine_empty(self, blocks: int) -> None:
        tron_node.mine(self.url, blocks)

    def stop(self) -> None:
        self._client.close()
        super().stop()
