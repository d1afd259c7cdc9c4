"""What `kassa.chains.tron.api.TronApi` answers: java-tron's JSON decoded into frozen
dataclasses with exact ``int``s.

Amounts are sun or token minor units, times are milliseconds since the epoch as java-tron keeps
them, and addresses are `TronAddress`. Only what Kassa reads is kept: a deposit scanner needs a
block's TRX transfers and contract calls and a receipt's logs; the payout rail needs an account's
balance and resources, a constant call's energy, a broadcast's answer and a receipt's fees.
Other contract types of a transaction are kept as `OtherContract` with their type name, so
unfamiliar transactions never stop a scan.
"""

from __future__ import annotations

from dataclasses import dataclass

from kassa.chains.tron.address import TronAddress

__all__ = [
    "BroadcastResult",
    "ConstantCallResult",
    "Contract",
    "NodeInfo",
    "OtherContract",
    "TransferContract",
    "TriggerSmartContract",
    "TronAccount",
    "TronAccountResources",
    "TronBlock",
    "TronLog",
    "TronReceipt",
    "TronTransaction",
    "TronTransactionInfo",
]


@dataclass(frozen=True, slots=True)
class TransferContract:
    """A TRX transfer. ``amount`` is sun."""

    owner: TronAddress
    to: TronAddress
    amount: int


@dataclass(frozen=True, slots=True)
class TriggerSmartContract:
    """A smart-contract call. ``call_value`` is sun sent along with the call."""

    owner: TronAddress
    contract: TronAddress
    data: bytes
    call_value: int


@dataclass(frozen=True, slots=True)
class OtherContract:
    """Any other contract type (staking, votes, TRC-10, …), known by its type name only."""

    type: str


Contract = TransferContract | TriggerSmartContract | OtherContract


@dataclass(frozen=True, slots=True)
class TronTransaction:
    txid: str
    """64 lowercase hex digits."""
    contract_ret: str | None
    """``ret[0].contractRet`` (``SUCCESS``, ``REVERT``, ``OUT_OF_ENERGY``, …); None if absent."""
    contracts: tuple[Contract, ...]
    """java-tron allows exactly one contract per transaction; kept as a tuple as printed."""


@dataclass(frozen=True, slots=True)
class TronBlock:
    number: int
    block_id: str
    """The block id (``blockID``): 8 bytes of the number, then 24 bytes of the header hash."""
    parent_id: str
    timestamp_ms: int
    """Milliseconds since the epoch (0 for the genesis block, which java-tron prints without)."""
    transactions: tuple[TronTransaction, ...]


@dataclass(frozen=True, slots=True)
class TronLog:
    address: TronAddress
    """The emitting contract."""
    topics: tuple[bytes, ...]
    data: bytes


@dataclass(frozen=True, slots=True)
class TronTransactionInfo:
    txid: str
    block_number: int
    block_timestamp_ms: int
    """The including block's timestamp (milliseconds since the epoch)."""
    receipt_result: str | None
    """``receipt.result`` of a contract call (``SUCCESS``, ``REVERT``, …); None for plain
    transfers, which have no contract result."""
    failed: bool
    """java-tron's top-level ``result: "FAILED"``."""
    logs: tuple[TronLog, ...]


@dataclass(frozen=True, slots=True)
class NodeInfo:
    head_number: int
    head_id: str
    solid_number: int
    solid_id: str


@dataclass(frozen=True, slots=True)
class TronAccount:
    """``getaccount``: what a payout needs to know of an account."""

    address: TronAddress
    balance: int
    """Sun."""
    is_contract: bool
    create_time_ms: int


@dataclass(frozen=True, slots=True)
class TronAccountResources:
    """``wallet/getaccountresource``: the account's bandwidth and energy, usage recovered to the
    head block (java-tron applies the 24-hour recovery before answering)."""

    free_net_limit: int
    """The free daily bandwidth every account has (bytes)."""
    free_net_used: int
    net_limit: int
    """Bandwidth from staked TRX (bytes)."""
    net_used: int
    energy_limit: int
    """Energy from staked TRX."""
    energy_used: int

    @property
    def free_net_left(self) -> int:
        return max(0, self.free_net_limit - self.free_net_used)

    @property
    def net_left(self) -> int:
        return max(0, self.net_limit - self.net_used)

    @property
    def energy_left(self) -> int:
        return max(0, self.energy_limit - self.energy_used)


@dataclass(frozen=True, slots=True)
class TronReceipt:
    """``gettransactioninfobyid`` in full: where a transaction is and what it cost."""

    info: TronTransactionInfo
    fee: int
    """Sun burned in total: bandwidth, energy and account creation."""
    net_usage: int
    """Bandwidth bytes paid from free or staked bandwidth."""
    net_fee: int
    energy_usage_total: int
    energy_fee: int
    result_message: str
    """``resMessage`` as text: why a failed call failed; empty otherwise."""


@dataclass(frozen=True, slots=True)
class ConstantCallResult:
    """``triggerconstantcontract``: a contract call run on the head state without a
    transaction."""

    energy_used: int
    """The energy a transaction making this call would consume, java-tron's dynamic-energy
    penalty included."""
    energy_penalty: int
    """The part of ``energy_used`` that is the penalty of heavily used contracts."""
    output: bytes
    reverted: bool
    message: str


@dataclass(frozen=True, slots=True)
class BroadcastResult:
    """``broadcasttransaction``'s answer."""

    accepted: bool
    code: str
    """``SUCCESS`` when accepted, else java-tron's response code (``SIGERROR``,
    ``DUP_TRANSACTION_ERROR``, ``TRANSACTION_EXPIRATION_ERROR``, ``CONTRACT_VALIDATE_ERROR``, …)."""
    message: str
    """The node's reason as text."""
