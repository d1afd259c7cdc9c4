"""The local Ethereum chain: ganache 7.9.2 with the devnet USDT (TestUSDT) deployed.

* ganache runs as its own node script (`tools/chains/node_modules/.bin/ganache`, not `npx`, which
  would add parent processes) on 127.0.0.1, chain id 1337, with ganache's deterministic mnemonic:
  ten accounts of 1000 ETH, account 0 `0x90F8…c9C1` pays for everything devnet does.
* Tests use instamine (a block per transaction); `kassa devnet` mines every `block_time` seconds so
  confirmations tick like a real chain, and persists the chain with `--database.dbPath`.
* TestUSDT is deployed from the committed artifact `contracts/build/TestUSDT.json` by account 0,
  which mints itself a large supply; the faucet pays USDT out of it with `transfer`.
* Transactions are EIP-1559, signed locally with eth_account and sent raw, the way Kassa's payout
  signer will send them on mainnet. After sending, `evm_mine` includes them at once even in
  block-time mode ("mine on demand").
* ganache has no call that sets the base fee; it follows EIP-1559 (at most 12.5 % up after a
  full block, down after an emptier one than half full, so it falls towards a few wei on a test
  chain of mostly empty blocks). `congest` raises it the way a busy network does: blocks that use
  all their gas (contract creations whose code is the INVALID opcode, which fail and burn
  every unit of gas given), until the next block's base fee reaches a target; `calm` mines
  empty blocks until it falls back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, cast

from eth_account import Account
from eth_account.hdaccount import key_from_seed, seed_from_mnemonic
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import TransactionNotFound
from web3.types import TxParams, TxReceipt

from kassa_dev.devnet.processes import ProcessManager, ProcessRecord
from kassa_dev.devnet.rpc import json_rpc
from kassa_dev.devnet.settings import ETH_PORT
from kassa_dev.devnet.tools import contracts_dir, ganache_bin

__all__ = [
    "CHAIN_ID",
    "CONGESTION_ACCOUNT",
    "DEFAULT_PORT",
    "MNEMONIC",
    "PROCESS_NAME",
    "USDT_SUPPLY",
    "ContractArtifact",
    "EthTransactionFailed",
    "calm",
    "congest",
    "deploy_test_usdt",
    "dev_account",
    "ensure_test_usdt",
    "erc20_balance",
    "ganache_argv",
    "load_artifact",
    "next_base_fee",
    "send_call",
    "send_transaction",
    "start_ganache",
    "usdt_contract",
    "web3_for",
]

PROCESS_NAME = "ganache"
DEFAULT_PORT = ETH_PORT
CHAIN_ID = 1337
MNEMONIC = "myth like bonus scare over problem client lizard pioneer submit female collect"
"""ganache's `--wallet.deterministic` mnemonic (public: devnet only)."""

USDT_SUPPLY = 10**18
"""Micro-USDT minted to account 0 at deployment: one trillion USDT."""

CONGESTION_ACCOUNT = 9
"""The deterministic account whose transactions fill blocks in `congest` (nothing else uses it)."""
_MAX_FEE_CHANGE_BLOCKS = 1_000

_PRIORITY_FEE_WEI = 10**9  # 1 gwei tip; ganache's base fee starts at 0.875 gwei and falls


class EthTransactionFailed(RuntimeError):
    """A devnet transaction was mined but reverted (status 0)."""


@cache
def dev_account(index: int = 0) -> LocalAccount:
    """Account `index` of the deterministic mnemonic (m/44'/60'/0'/0/index), as in ganache."""
    seed = seed_from_mnemonic(MNEMONIC, "")
    key = key_from_seed(seed, f"m/44'/60'/0'/0/{index}")
    return cast(LocalAccount, Account.from_key(key))


def ganache_argv(port: int, *, block_time: int | None, db_path: Path | None) -> list[str]:
    """Command line for ganache; `block_time=None` is instamine (a block per transaction)."""
    argv = [
        str(ganache_bin()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--chain.chainId",
        str(CHAIN_ID),
        "--wallet.deterministic",
        # Without it ganache logs every RPC method name; the deposit watcher polls constantly.
        "--logging.quiet",
    ]
    if block_time is not None:
        argv += ["--miner.blockTime", str(block_time)]
    if db_path is not None:
        argv += ["--database.dbPath", str(db_path)]
    return argv


def start_ganache(
    manager: ProcessManager,
    *,
    port: int = DEFAULT_PORT,
    block_time: int | None = None,
    db_path: Path | None = None,
    detach: bool = False,
) -> ProcessRecord:
    """Start ganache and wait for its first `eth_chainId` answer."""
    if db_path is not None:
        db_path.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    return manager.start(
        PROCESS_NAME,
        ganache_argv(port, block_time=block_time, db_path=db_path),
        ready=lambda: json_rpc(url, "eth_chainId", timeout=2.0) == hex(CHAIN_ID),
        port=port,
        detach=detach,
    )


def web3_for(url: str) -> Web3:
    return Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))


# --------------------------------------------------------------------------- contracts


@dataclass(frozen=True, slots=True)
class ContractArtifact:
    """A compiled contract as `tools/chains/compile-contracts.js` writes it."""

    contract_name: str
    abi: list[dict[str, Any]]
    bytecode: str
    """Creation code, 0x-prefixed hex."""
    deployed_bytecode: str
    """Runtime code, 0x-prefixed hex: what `eth_getCode` returns after deployment."""
    compiler: str
    evm_version: str
    source_sha256: str
    """sha256 (hex) of the .sol file the artifact was compiled from."""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ContractArtifact:
        return cls(
            contract_name=str(data["contractName"]),
            abi=list(data["abi"]),
            bytecode=str(data["bytecode"]),
            deployed_bytecode=str(data["deployedBytecode"]),
            compiler=str(data["compiler"]),
            evm_version=str(data["evmVersion"]),
            source_sha256=str(data["sourceSha256"]),
        )


def load_artifact(name: str, build_dir: Path | None = None) -> ContractArtifact:
    path = (build_dir or contracts_dir() / "build") / f"{name}.json"
    return ContractArtifact.from_json(json.loads(path.read_text()))


def usdt_contract(w3: Web3, address: str) -> Contract:
    """The TestUSDT contract at `address`, with its ABI."""
    abi = load_artifact("TestUSDT").abi
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi)


def erc20_balance(w3: Web3, token: str, holder: str) -> int:
    """`balanceOf(holder)` in the token's minor units."""
    return int(
        usdt_contract(w3, token).functions.balanceOf(Web3.to_checksum_address(holder)).call()
    )


# --------------------------------------------------------------------------- transactions


def send_transaction(
    w3: Web3, sender: LocalAccount, tx: TxParams, *, mine: bool = True, timeout: float = 60.0
) -> TxReceipt:
    """Fill in EIP-1559 fees, nonce and gas, sign locally, send raw, and wait for the receipt.

    With `mine`, an `evm_mine` follows so the transaction is included at once even when ganache
    mines on a timer. Raises :class:`EthTransactionFailed` if it reverted.
    """
    fields: dict[str, Any] = dict(tx)
    fields.setdefault("from", sender.address)
    fields.setdefault("chainId", w3.eth.chain_id)
    fields.setdefault("nonce", w3.eth.get_transaction_count(sender.address, "pending"))
    base_fee = int(w3.eth.get_block("latest").get("baseFeePerGas", 0))
    fields.setdefault("maxPriorityFeePerGas", _PRIORITY_FEE_WEI)
    fields.setdefault("maxFeePerGas", 2 * base_fee + _PRIORITY_FEE_WEI)
    fields.setdefault("type", 2)
    if "gas" not in fields:
        fields["gas"] = w3.eth.estimate_gas(cast(TxParams, fields))
    signed = sender.sign_transaction(fields)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    if mine:
        try:
            # Instamine has already mined it; only a timed miner leaves it pending.
            w3.eth.get_transaction_receipt(tx_hash)
        except TransactionNotFound:
            w3.provider.make_request(cast(Any, "evm_mine"), [])
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout, poll_latency=0.1)
    if receipt["status"] != 1:
        raise EthTransactionFailed(f"transaction {HexBytes(tx_hash).to_0x_hex()} reverted")
    return receipt


def send_call(
    w3: Web3, sender: LocalAccount, call: ContractFunction, *, mine: bool = True
) -> TxReceipt:
    """Send a state-changing contract call from `sender` (see :func:`send_transaction`)."""
    tx = call.build_transaction({"from": sender.address})
    return send_transaction(w3, sender, _without_fees(tx), mine=mine)


def deploy_test_usdt(w3: Web3, *, supply: int = USDT_SUPPLY, mine: bool = True) -> ChecksumAddress:
    """Deploy TestUSDT from account 0 and mint `supply` micro-USDT to it; return its address."""
    owner = dev_account(0)
    artifact = load_artifact("TestUSDT")
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    deploy_tx = factory.constructor().build_transaction({"from": owner.address})
    receipt = send_transaction(w3, owner, _without_fees(deploy_tx), mine=mine)
    address = receipt["contractAddress"]
    if address is None:
        raise EthTransactionFailed("TestUSDT deployment receipt has no contract address")
    send_call(
        w3, owner, usdt_contract(w3, address).functions.mint(owner.address, supply), mine=mine
    )
    return address


def ensure_test_usdt(w3: Web3, known: str | None, *, mine: bool = True) -> ChecksumAddress:
    """Reuse TestUSDT at `known` if its code is there (a persisted chain), else deploy it."""
    if known is not None:
        code = w3.eth.get_code(Web3.to_checksum_address(known))
        expected = HexBytes(load_artifact("TestUSDT").deployed_bytecode)
        # The artifact has zeros where the constructor writes immutables (the owner).
        if len(code) == len(expected) and all(
            want in (0, got) for got, want in zip(code, expected, strict=True)
        ):
            return Web3.to_checksum_address(known)
    return deploy_test_usdt(w3, mine=mine)


def _without_fees(tx: TxParams) -> TxParams:
    # build_transaction() fills fees by web3's own strategy; send_transaction sets its own.
    fields = {
        k: v for k, v in tx.items() if k not in ("maxFeePerGas", "maxPriorityFeePerGas", "gasPrice")
    }
    return cast(TxParams, fields)


# --------------------------------------------------------------------------- base fee


def next_base_fee(w3: Web3) -> int:
    """The base fee per gas of the next block, as `eth_feeHistory` states it (the entry after
    the latest block's)."""
    history = w3.eth.fee_history(1, "latest")
    return int(history["baseFeePerGas"][-1])


def congest(w3: Web3, base_fee: int, *, max_blocks: int = _MAX_FEE_CHANGE_BLOCKS) -> int:
    """Fill blocks until the next block's base fee is at least `base_fee` wei; returns how many
    were filled (each raises it by an eighth, or by 1 wei below 16 wei).

    Every block holds one transaction of account `CONGESTION_ACCOUNT` that uses the block's
    whole gas limit: a contract creation whose init code is INVALID (0xfe) fails and burns
    all its gas, which the account pays at the base fee (no tip).
    """
    sender = dev_account(CONGESTION_ACCOUNT)
    nonce = int(w3.eth.get_transaction_count(sender.address, "pending"))
    filled = 0
    while (current := next_base_fee(w3)) < base_fee:
        if filled == max_blocks:
            raise RuntimeError(f"the base fee is {current} wei after {filled} full blocks")
        block_gas = int(w3.eth.get_block("latest")["gasLimit"])
        signed = sender.sign_transaction(
            {
                "chainId": CHAIN_ID,
                "nonce": nonce,
                "gas": block_gas,
                "maxFeePerGas": 2 * current,
                "maxPriorityFeePerGas": 0,
                "value": 0,
                "data": b"\xfe",
                "type": 2,
            }
        )
        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
        try:
            w3.eth.get_transaction_receipt(tx_hash)  # instamine has mined it
        except TransactionNotFound:
            w3.provider.make_request(cast(Any, "evm_mine"), [])
        nonce += 1
        filled += 1
    return filled


def calm(w3: Web3, base_fee: int, *, max_blocks: int = _MAX_FEE_CHANGE_BLOCKS) -> int:
    """Mine empty blocks until the next block's base fee is at most `base_fee` wei (each
    lowers it by an eighth); returns how many were mined."""
    mined = 0
    while next_base_fee(w3) > base_fee:
        if mined == max_blocks:
            raise RuntimeError(f"the base fee is still above {base_fee} wei after {mined} blocks")
        w3.provider.make_request(cast(Any, "evm_mine"), [])
        mined += 1
    return mined
