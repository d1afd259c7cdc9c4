"""What an Ethereum payout costs: the EIP-1559 fees of the next block and the gas it uses.

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
Fees are ``int`` wei per gas.
"""

from __future__ import annotations

from collections.abc import Callable

from kassa.chains.eth.address import EthAddress
from kassa.chains.eth.rpc import EthNodeError, EthRpc, RpcError, quantity
from kassa.chains.eth.tx import NATIVE_TRANSFER_GAS, EthFees, erc20_transfer_calldata
from kassa.money import ETH, Asset, Money
from kassa.payouts.rails.base import FeeEstimate, RailUnavailable
from kassa.payouts.settings import EthPayoutSettings

__all__ = ["GAS_HEADROOM_PERCENT", "EthFeePricer", "ceil_percent"]

GAS_HEADROOM_PERCENT = 20
"""Gas limit above an ``eth_estimateGas`` answer: state may change before inclusion."""


def ceil_percent(value: int, percent: int) -> int:
    """``value × percent / 100``, rounded up."""
    return -(-value * percent // 100)


class EthFeePricer:
    """Prices payouts from the hot address (``hot``) on the node ``rpc`` talks to; ``token``
    names the USDT contract. Both are asked only when needed, as the rail does."""

    def __init__(
        self,
        rpc: EthRpc,
        settings: EthPayoutSettings,
        *,
        hot: Callable[[], EthAddress],
        token: Callable[[], EthAddress],
    ) -> None:
        self.rpc = rpc
        self.settings = settings
        self._hot = hot
        self._token = token

    def estimate(self, coin: Asset, destination: EthAddress, amount: int) -> FeeEstimate:
        """The fee of paying ``amount`` of ``coin`` to ``destination``, with the parameters
        ``sign`` builds the transaction from."""
        try:
            base_fee, base_source = self.base_fee()
            fees = self.fees(base_fee, self.settings.priority_fee_wei)
            gas_estimate, gas_limit, gas_source = self._gas(coin, destination, amount)
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

    def base_fee(self) -> tuple[int, str]:
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

    def fees(self, base_fee: int, tip: int) -> EthFees:
        """The fee cap for ``base_fee``, within the configured maximum; the tip never above it."""
        cap = min(
            base_fee * self.settings.base_fee_multiplier + tip, self.settings.max_fee_per_gas_wei
        )
        return EthFees(max_fee_per_gas=cap, max_priority_fee_per_gas=min(tip, cap))

    def _gas(self, coin: Asset, destination: EthAddress, amount: int) -> tuple[int, int, str]:
        """(expected gas, gas limit, source) of paying ``amount`` of ``coin``."""
        hot = self._hot().text
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
            return used, ceil_percent(used, 100 + GAS_HEADROOM_PERCENT), "eth_estimateGas"
        token = self._token()
        data = erc20_transfer_calldata(destination, amount)
        try:
            used = self.rpc.estimate_gas({"from": hot, "to": token.text, "data": "0x" + data.hex()})
        except RpcError:
            # Typically: the hot wallet holds fewer tokens than this yet, so the call reverts.
            limit = self.settings.usdt_gas_limit
            return limit, limit, "usdt_gas_limit fallback"
        limit = max(ceil_percent(used, 100 + GAS_HEADROOM_PERCENT), NATIVE_TRANSFER_GAS)
        return used, limit, "eth_estimateGas"
