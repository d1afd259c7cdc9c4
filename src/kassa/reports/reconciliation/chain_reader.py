"""Reading what a chain holds, through Kassa's own chain adapters (`kassa.chains`).

`ChainReader` is the port leg 3 reads the chains through; `build_reader` makes the real one for
a configured chain from the same settings and clients the watchers use, so mainnet and the
devnet are read by the same code:

- ``final_height``: the chain's final block (the watcher's finality rule);
- ``holdings``: what an address holds of each asset at (or, where the node cannot answer for a
  past block, as of) the final block — None where the node keeps no per-address state (a
  Bitcoin node has no address index: BTC is read output by output);
- ``transfers``: the transfers of the block at a height, or None when the block there is no
  longer the one recorded (it left the chain);
- ``unspent``: the value of a BTC output still unspent on chain (None: spent or unknown).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from kassa.chains.btc.rpc import satoshi
from kassa.chains.btc.scanner import BtcScanner
from kassa.chains.eth.scanner import EthScanner
from kassa.chains.network import Chain
from kassa.chains.scanning import ChainScanner, ChainTransfer
from kassa.chains.tron.address import parse_tron_address
from kassa.chains.tron.scanner import TronScanner
from kassa.deposits.runtime import build_scanner
from kassa.deposits.settings import ChainsSettings


class ChainReader(Protocol):
    @property
    def chain(self) -> Chain: ...

    def final_height(self) -> int: ...

    def holdings(
        self, address: str, assets: Sequence[str], height: int
    ) -> dict[str, int] | None: ...

    def transfers(
        self, height: int, block_hash: str, watched: frozenset[str]
    ) -> list[ChainTransfer] | None: ...

    def unspent(self, txid: str, vout: int) -> int | None: ...

    def close(self) -> None: ...


_BALANCE_OF = "0x70a08231"


class ScannerReader:
    """A `ChainReader` over one of Kassa's scanners (and its node client)."""

    def __init__(self, scanner: ChainScanner) -> None:
        self.scanner = scanner

    @property
    def chain(self) -> Chain:
        return self.scanner.chain

    def final_height(self) -> int:
        return self.scanner.head().final_height

    def holdings(self, address: str, assets: Sequence[str], height: int) -> dict[str, int] | None:
        scanner = self.scanner
        if isinstance(scanner, EthScanner):
            held: dict[str, int] = {}
            for code in assets:
                if code == "ETH":
                    held[code] = scanner.rpc.get_balance(address, height)
                else:
                    holder = address.lower().removeprefix("0x").rjust(64, "0")
                    answer = scanner.rpc.call_contract(
                        {"to": scanner.usdt_contract, "data": _BALANCE_OF + holder}, height
                    )
                    held[code] = int.from_bytes(answer, "big") if answer else 0
            return held
        if isinstance(scanner, TronScanner):
            tron_holder = parse_tron_address(address)
            on_tron: dict[str, int] = {}
            for code in assets:
                if code == "TRX":
                    account = scanner.api.account(tron_holder, solid=True)
                    on_tron[code] = 0 if account is None else account.balance
                else:
                    on_tron[code] = scanner.api.trc20_balance(scanner.usdt_contract, tron_holder)
            return on_tron
        return None

    def transfers(
        self, height: int, block_hash: str, watched: frozenset[str]
    ) -> list[ChainTransfer] | None:
        if self.scanner.block_hash(height) != block_hash:
            return None
        return list(self.scanner.block(height, watched).transfers)

    def unspent(self, txid: str, vout: int) -> int | None:
        scanner = self.scanner
        if not isinstance(scanner, BtcScanner):
            return None
        out = scanner.rpc.get_tx_out(txid, vout, include_mempool=False)
        return None if out is None else satoshi(out.get("value"))

    def close(self) -> None:
        for name in ("rpc", "api"):
            client = getattr(self.scanner, name, None)
            closer = getattr(client, "close", None)
            if callable(closer):
                closer()


def build_reader(settings: ChainsSettings, chain: Chain) -> ChainReader:
    return ScannerReader(build_scanner(settings, chain))
