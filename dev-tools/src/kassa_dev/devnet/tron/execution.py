"""Executing one transaction against the world state: validation, fees, the contract call.

`Executor.apply` either raises `Rejected` and leaves the state untouched (every check runs
before the first write), or applies the transaction and returns its `Outcome`. A rejected
transaction never reaches a block; a smart-contract call that fails inside the contract (a
revert, running out of energy) is *not* rejected: it is included, charged, and marked failed.

Fees follow java-tron's rules for an account with nothing staked:
- bandwidth: the serialized transaction plus a 64-byte result allowance; paid from the account's
  free daily bandwidth when the whole transaction fits in what is left, otherwise burned at
  `bandwidth_price` sun per byte. A transfer that creates its recipient cannot use free
  bandwidth: java-tron's `consumeForCreateNewAccount` burns the flat `create_account_bandwidth_fee`
  (`getCreateAccountFee`) instead of the bytes, and the transfer also burns `account_create_fee`
  (`getCreateNewAccountFeeInSystemContract`);
- energy: burned at `energy_price` sun per unit; the call may use at most
  `min(balance - call_value, fee_limit) / energy_price` energy, and a call needing more stops
  with OUT_OF_ENERGY, burning everything up to that limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from kassa_dev.devnet.tron.config import FeeSchedule
from kassa_dev.devnet.tron.state import Account, WorldState
from kassa_dev.devnet.tron.transactions import SignedTransaction, TransferCall, TriggerCall
from kassa_dev.devnet.tron.usdt import CallResult, Log, UsdtContract

CONTRACT_VALIDATE_ERROR = "CONTRACT_VALIDATE_ERROR"
BANDWITH_ERROR = "BANDWITH_ERROR"  # sic: java-tron's spelling

SUCCESS = "SUCCESS"
REVERT = "REVERT"
OUT_OF_ENERGY = "OUT_OF_ENERGY"


class Rejected(Exception):
    """The node refuses the transaction (java-tron's broadcast `code` and a plain reason)."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class Outcome:
    """What executing an included transaction did and cost. Amounts in sun."""

    contract_ret: str
    """SUCCESS, REVERT or OUT_OF_ENERGY."""
    is_contract_call: bool
    net_usage: int = 0
    """Free bandwidth bytes consumed."""
    net_fee: int = 0
    energy_usage_total: int = 0
    energy_fee: int = 0
    account_create_fee: int = 0
    contract_result: bytes = b""
    logs: tuple[Log, ...] = ()
    res_message: str = ""

    @property
    def fee(self) -> int:
        return self.net_fee + self.energy_fee + self.account_create_fee

    @property
    def failed(self) -> bool:
        return self.contract_ret != SUCCESS


class Executor:
    def __init__(self, fees: FeeSchedule, usdt: UsdtContract) -> None:
        self.fees = fees
        self.usdt = usdt

    def apply(self, state: WorldState, tx: SignedTransaction, now: int) -> Outcome:
        """Validate and execute `tx` at block time `now` (ms). Raises `Rejected`."""
        call = tx.raw.call
        size = tx.serialized_size() + self.fees.result_size_allowance
        if isinstance(call, TransferCall):
            return self._transfer(state, call, size, now)
        return self._trigger(state, call, tx.raw.fee_limit, size, now)

    def constant_call(
        self, state: WorldState, contract: bytes, caller: bytes, data: bytes, call_value: int
    ) -> CallResult:
        """Run a call without a transaction (`triggerconstantcontract`, `estimateenergy`)."""
        if contract != self.usdt.address:
            raise Rejected(CONTRACT_VALIDATE_ERROR, "No contract or not a smart contract")
        return self.usdt.call(state, caller, data, call_value)

    def _bandwidth(
        self, account: Account, size: int, now: int, *, creates_account: bool
    ) -> tuple[int, int]:
        """(free bytes used, sun burned) for a transaction of `size` bytes."""
        if creates_account:
            fee = self.fees.create_account_bandwidth_fee
            if fee > account.balance:
                raise Rejected(BANDWITH_ERROR, "AccountResourceInsufficient error")
            return 0, fee
        used = account.free_net_used_at(now, self.fees.bandwidth_window_ms)
        if used + size <= self.fees.free_bandwidth:
            return size, 0
        fee = size * self.fees.bandwidth_price
        if fee > account.balance:
            raise Rejected(BANDWITH_ERROR, "AccountResourceInsufficient error")
        return 0, fee

    def _consume_free_bandwidth(self, account: Account, net_usage: int, now: int) -> None:
        if net_usage:
            window = self.fees.bandwidth_window_ms
            account.free_net_used = account.free_net_used_at(now, window) + net_usage
            account.free_net_time = now

    def _transfer(self, state: WorldState, call: TransferCall, size: int, now: int) -> Outcome:
        if call.amount <= 0:
            raise Rejected(CONTRACT_VALIDATE_ERROR, "Amount must be greater than 0.")
        if call.owner == call.to:
            raise Rejected(CONTRACT_VALIDATE_ERROR, "Cannot transfer TRX to yourself.")
        owner = state.accounts.get(call.owner)
        if owner is None:
            raise Rejected(
                CONTRACT_VALIDATE_ERROR, "Validate TransferContract error, no OwnerAccount."
            )
        recipient = state.accounts.get(call.to)
        if recipient is not None and recipient.is_contract:
            raise Rejected(CONTRACT_VALIDATE_ERROR, "Cannot transfer TRX to a smartContract.")
        creates = recipient is None
        net_usage, net_fee = self._bandwidth(owner, size, now, creates_account=creates)
        create_fee = self.fees.account_create_fee if creates else 0
        if owner.balance - net_fee < call.amount + create_fee:
            raise Rejected(
                CONTRACT_VALIDATE_ERROR,
                "Validate TransferContract error, balance is not sufficient.",
            )
        # Every check passed: from here on the state changes.
        self._consume_free_bandwidth(owner, net_usage, now)
        owner.balance -= net_fee + create_fee + call.amount
        owner.latest_operation_time = now
        if recipient is None:
            recipient = Account(address=call.to, balance=0, create_time=now)
            state.accounts[call.to] = recipient
        recipient.balance += call.amount
        return Outcome(
            contract_ret=SUCCESS,
            is_contract_call=False,
            net_usage=net_usage,
            net_fee=net_fee,
            account_create_fee=create_fee,
        )

    def _trigger(
        self, state: WorldState, call: TriggerCall, fee_limit: int, size: int, now: int
    ) -> Outcome:
        if call.contract != self.usdt.address:
            raise Rejected(CONTRACT_VALIDATE_ERROR, "No contract or not a valid smart contract")
        owner = state.accounts.get(call.owner)
        if owner is None:
            raise Rejected(
                CONTRACT_VALIDATE_ERROR,
                "Validate InternalTransaction error, no OwnerAccount.",
            )
        if not 0 <= fee_limit <= self.fees.max_fee_limit:
            raise Rejected(
                CONTRACT_VALIDATE_ERROR,
                f"feeLimit must be >= 0 and <= {self.fees.max_fee_limit}",
            )
        if call.call_token_value or call.token_id:
            raise Rejected(
                CONTRACT_VALIDATE_ERROR, "TRC-10 tokens are not supported by the simulator"
            )
        if not 0 <= call.call_value <= owner.balance:
            raise Rejected(
                CONTRACT_VALIDATE_ERROR, "validateForSmartContract failure, not enough balance"
            )
        net_usage, net_fee = self._bandwidth(owner, size, now, creates_account=False)
        price = self.fees.energy_price
        spendable = max(0, owner.balance - net_fee - call.call_value)
        energy_limit = min(spendable, fee_limit) // price
        result = self.usdt.call(state, call.owner, call.data, call.call_value)

        if result.energy > energy_limit:
            # The call stops where the energy runs out: nothing it did is kept, and the whole
            # limit is burned.
            energy_used = energy_limit
            contract_ret = OUT_OF_ENERGY
            contract_result = b""
            logs: tuple[Log, ...] = ()
            message = (
                f"Not enough energy: curInvokeEnergyLimit[{energy_limit}], "
                f"requiredEnergy[{result.energy}]"
            )
        elif result.reverted:
            energy_used = result.energy
            contract_ret = REVERT
            contract_result = result.return_data
            logs = ()
            message = "REVERT opcode executed"
        else:
            energy_used = result.energy
            contract_ret = SUCCESS
            contract_result = result.return_data
            logs = result.logs
            message = ""
            state.usdt_balances.update(result.writes)

        energy_fee = energy_used * price
        self._consume_free_bandwidth(owner, net_usage, now)
        owner.balance -= net_fee + energy_fee
        owner.latest_operation_time = now
        if contract_ret == SUCCESS and call.call_value:
            owner.balance -= call.call_value
            state.accounts[call.contract].balance += call.call_value
        return Outcome(
            contract_ret=contract_ret,
            is_contract_call=True,
            net_usage=net_usage,
            net_fee=net_fee,
            energy_usage_total=energy_used,
            energy_fee=energy_fee,
            contract_result=contract_result,
            logs=logs,
            res_message=message,
        )
