"""The built-in TRC-20 USDT contract, implemented in Python instead of TVM bytecode.

It answers the standard selectors a payment gateway uses: `transfer(address,uint256)`,
`balanceOf(address)`, `decimals()`, `symbol()`, `name()` and `totalSupply()`. A call returns
its result, the energy it costs and the balance writes it would make; the executor applies the
writes only when the energy fits the caller's limit, which is how a failed call leaves storage
untouched.

Energy is modelled, not metered: a transfer costs what USDT-TRC20 costs on mainnet (about
14 650 to an address that already holds USDT, 29 650 to a new holder, the difference being the
zero-to-nonzero storage write), a reverted call a flat amount, and views a small flat amount.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kassa_dev.devnet.tron.codec import (
    ZERO_ADDRESS,
    abi_string,
    address_to_evm_word,
    evm_word_to_address,
    keccak256,
    uint256_word,
)
from kassa_dev.devnet.tron.state import WorldState

ENERGY_TRANSFER_TO_HOLDER = 14_650
ENERGY_TRANSFER_TO_NEW_HOLDER = 29_650
ENERGY_REVERT = 1_000
ENERGY_VIEW = 500

NAME = "Tether USD"
SYMBOL = "USDT"
DECIMALS = 6

TRANSFER_EVENT_TOPIC = keccak256(b"Transfer(address,address,uint256)")
ERROR_SELECTOR = keccak256(b"Error(string)")[:4]


def selector(signature: str) -> bytes:
    return keccak256(signature.encode())[:4]


@dataclass(frozen=True)
class Log:
    address: bytes
    """The emitting contract's 21-byte TRON address."""
    topics: tuple[bytes, ...]
    """32-byte topics; the first is the event signature hash."""
    data: bytes


@dataclass(frozen=True)
class CallResult:
    reverted: bool
    return_data: bytes
    energy: int
    """Energy the call needs to run to its end (or to its revert)."""
    writes: Mapping[bytes, int] = field(default_factory=dict)
    """New USDT balances (minor units) by holder, applied only if the call succeeds."""
    logs: tuple[Log, ...] = ()


def _revert(reason: str | None) -> CallResult:
    data = ERROR_SELECTOR + abi_string(reason) if reason else b""
    return CallResult(reverted=True, return_data=data, energy=ENERGY_REVERT)


def _view(value: bytes) -> CallResult:
    return CallResult(reverted=False, return_data=value, energy=ENERGY_VIEW)


class UsdtContract:
    """USDT at `address`; its storage (balances, supply) lives in the `WorldState`."""

    def __init__(self, address: bytes) -> None:
        self.address = address
        self._functions: dict[bytes, Callable[[WorldState, bytes, bytes], CallResult]] = {
            selector("transfer(address,uint256)"): self._transfer,
            selector("balanceOf(address)"): self._balance_of,
            selector("decimals()"): lambda _s, _c, _a: _view(uint256_word(DECIMALS)),
            selector("symbol()"): lambda _s, _c, _a: _view(abi_string(SYMBOL)),
            selector("name()"): lambda _s, _c, _a: _view(abi_string(NAME)),
            selector("totalSupply()"): lambda s, _c, _a: _view(uint256_word(s.usdt_total_supply)),
        }

    def call(self, state: WorldState, caller: bytes, data: bytes, call_value: int) -> CallResult:
        function = self._functions.get(data[:4])
        # No fallback function, and nothing here is payable: both revert, as in TetherToken.
        if function is None or call_value != 0:
            return _revert(None)
        return function(state, caller, data[4:])

    def _transfer(self, state: WorldState, caller: bytes, args: bytes) -> CallResult:
        if len(args) < 64:
            return _revert(None)
        recipient = evm_word_to_address(args[:32])
        amount = int.from_bytes(args[32:64], "big")
        if recipient == ZERO_ADDRESS:
            return _revert("transfer to the zero address")
        sender_balance = state.usdt_balance(caller)
        if amount > sender_balance:
            return _revert("transfer amount exceeds balance")
        recipient_balance = state.usdt_balance(recipient)
        energy = (
            ENERGY_TRANSFER_TO_HOLDER if recipient_balance > 0 else ENERGY_TRANSFER_TO_NEW_HOLDER
        )
        writes = {caller: sender_balance - amount}
        writes[recipient] = writes.get(recipient, recipient_balance) + amount
        log = Log(
            address=self.address,
            topics=(
                TRANSFER_EVENT_TOPIC,
                address_to_evm_word(caller),
                address_to_evm_word(recipient),
            ),
            data=uint256_word(amount),
        )
        return CallResult(
            reverted=False,
            return_data=uint256_word(1),
            energy=energy,
            writes=writes,
            logs=(log,),
        )

    def _balance_of(self, state: WorldState, _caller: bytes, args: bytes) -> CallResult:
        if len(args) < 32:
            return _revert(None)
        return _view(uint256_word(state.usdt_balance(evm_word_to_address(args[:32]))))

    def abi(self) -> list[dict[str, Any]]:
        """The ABI as java-tron's `getcontract` spells it (`entrys`, capitalised types)."""

        def param(name: str, kind: str, indexed: bool | None = None) -> dict[str, Any]:
            entry: dict[str, Any] = {"name": name, "type": kind}
            if indexed is not None:
                entry["indexed"] = indexed
            return entry

        def function(
            name: str, inputs: list[dict[str, Any]], output: str, mutability: str
        ) -> dict[str, Any]:
            entry: dict[str, Any] = {
                "outputs": [param("", output)],
                "name": name,
                "stateMutability": mutability,
                "type": "Function",
            }
            if inputs:
                entry["inputs"] = inputs
            if mutability == "View":
                entry["constant"] = True
            return entry

        return [
            function("name", [], "string", "View"),
            function("symbol", [], "string", "View"),
            function("decimals", [], "uint8", "View"),
            function("totalSupply", [], "uint256", "View"),
            function("balanceOf", [param("who", "address")], "uint256", "View"),
            function(
                "transfer",
                [param("to", "address"), param("value", "uint256")],
                "bool",
                "Nonpayable",
            ),
            {
                "inputs": [
                    param("from", "address", indexed=True),
                    param("to", "address", indexed=True),
                    param("value", "uint256", indexed=False),
                ],
                "name": "Transfer",
                "type": "Event",
            },
        ]
