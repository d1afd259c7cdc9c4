"""What a TRON payout costs: java-tron's bandwidth, account-creation and energy rules, priced
from the chain's own figures.

Fees are priced the way java-tron will charge them, from ``getchainparameters``, the hot
account's ``getaccountresource`` and the destination's ``getaccount``, for an account that may or
may not have staked TRX:

* *bandwidth*: the signed transaction's protobuf size (raw data plus one 65-byte signature)
  plus java-tron's 64-byte result allowance (``MAX_RESULT_SIZE_IN_TX``), the rule of
  ``BandwidthProcessor.consume`` (`transaction_bandwidth`). It is free when the hot account's
  staked bandwidth, or else its free daily bandwidth, still covers the whole transaction;
  otherwise every byte burns ``getTransactionFee`` sun.
* *account creation*: a TRX transfer to an address that has no account yet cannot use the
  free bandwidth; it burns the flat ``getCreateAccountFee`` instead of its bytes (unless
  staked bandwidth covers the bytes) and the transfer burns
  ``getCreateNewAccountFeeInSystemContract`` on top (0.1 + 1 TRX on mainnet).
* *energy* (TRC-20): ``estimateenergy`` of ``transfer(destination, amount)`` from the hot
  address, or ``triggerconstantcontract``'s ``energy_used`` where the node does not offer
  the estimate (java-tron's ``vm.estimateEnergy`` is off by default); energy the hot
  account has staked is used first, the rest burns ``getEnergyFee`` sun per unit. The
  transaction's ``fee_limit`` (the most it may burn for energy) is twice the estimate's full
  energy cost, capped by ``trc20_fee_limit_sun`` but never below the expected burn. A transfer
  the contract would revert now (the hot wallet lacks the tokens) cannot be priced:
  `TronFeePricer.estimate` raises `RailUnavailable` saying why, and the payout waits.

``FeeEstimate.total`` is what the chain is expected to burn; its ``params`` carry every figure
above. `most_fee` is what a transaction signed for an estimate may burn at most: the total for
TRX, and for TRC-20 the fee limit plus the bandwidth priced.
"""

from __future__ import annotations

from collections.abc import Callable

from kassa.chains.tron.address import TronAddress
from kassa.chains.tron.api import TronApi, TronCallRefused, TronNodeError, TronTransportError
from kassa.chains.tron.tx import MAX_FEE_LIMIT, trc20_transfer_calldata
from kassa.money import TRX, USDT_TRC20, Asset, Money
from kassa.payouts.rails.base import FeeEstimate, PayoutLine, RailUnavailable
from kassa.payouts.settings import TronPayoutSettings

__all__ = [
    "FEE_LIMIT_HEADROOM",
    "RESULT_ALLOWANCE_BYTES",
    "SIGNATURE_BYTES",
    "TRANSFER_SELECTOR",
    "TronFeePricer",
    "most_fee",
    "transaction_bandwidth",
]

SIGNATURE_BYTES = 65
RESULT_ALLOWANCE_BYTES = 64
"""java-tron's ``Constant.MAX_RESULT_SIZE_IN_TX``, added to every contract's bandwidth."""
TRANSFER_SELECTOR = "transfer(address,uint256)"
FEE_LIMIT_HEADROOM = 2
"""The fee limit allows this many times the estimated energy cost (dynamic energy may rise)."""

_TRANSFER_TYPE_URL = "type.googleapis.com/protocol.TransferContract"
_TRIGGER_TYPE_URL = "type.googleapis.com/protocol.TriggerSmartContract"
_TRANSFER_CONTRACT_TYPE = 1
_TRIGGER_CONTRACT_TYPE = 31
_ADDRESS_BYTES = 21
_REF_BLOCK_BYTES = 2
_REF_BLOCK_HASH_BYTES = 8


def _varint_size(value: int) -> int:
    size = 1
    while value >= 0x80:
        value >>= 7
        size += 1
    return size


def _bytes_field(number: int, length: int) -> int:
    """Size of a length-delimited protobuf field (tag, length, payload)."""
    return _varint_size(number << 3 | 2) + _varint_size(length) + length


def _int_field(number: int, value: int) -> int:
    """Size of a varint protobuf field; proto3 leaves zero out."""
    return _varint_size(number << 3) + _varint_size(value) if value else 0


def transaction_bandwidth(
    *,
    call_data: bytes | None,
    amount_sun: int,
    timestamp_ms: int,
    expiration_ms: int,
    fee_limit_sun: int,
) -> int:
    """Bandwidth bytes java-tron charges for a transaction `kassa.chains.tron.tx` builds: the
    serialized ``Transaction`` (``raw_data`` and one signature) plus the result allowance.

    ``call_data`` is the TRC-20 call's ABI data (a ``TriggerSmartContract``), or None for a TRX
    ``TransferContract`` of ``amount_sun``. Sizes only depend on field lengths, so the result
    is exact before signing."""
    if call_data is None:
        inner = (
            _bytes_field(1, _ADDRESS_BYTES)  # owner_address
            + _bytes_field(2, _ADDRESS_BYTES)  # to_address
            + _int_field(3, amount_sun)
        )
        type_url, contract_type = _TRANSFER_TYPE_URL, _TRANSFER_CONTRACT_TYPE
    else:
        inner = (
            _bytes_field(1, _ADDRESS_BYTES)  # owner_address
            + _bytes_field(2, _ADDRESS_BYTES)  # contract_address
            + _bytes_field(4, len(call_data))  # data; call_value, token fields are 0
        )
        type_url, contract_type = _TRIGGER_TYPE_URL, _TRIGGER_CONTRACT_TYPE
    parameter = _bytes_field(1, len(type_url)) + _bytes_field(2, inner)  # google.protobuf.Any
    contract = _int_field(1, contract_type) + _bytes_field(2, parameter)
    raw = (
        _bytes_field(1, _REF_BLOCK_BYTES)
        + _bytes_field(4, _REF_BLOCK_HASH_BYTES)
        + _int_field(8, expiration_ms)
        + _bytes_field(11, contract)
        + _int_field(14, timestamp_ms)
        + _int_field(18, fee_limit_sun)
    )
    transaction = _bytes_field(1, raw) + _bytes_field(2, SIGNATURE_BYTES)
    return transaction + RESULT_ALLOWANCE_BYTES


class TronFeePricer:
    """Prices a payout of the hot address (``hot``) on the node ``api`` answers for; ``token``
    names the TRC-20 contract of USDT payouts. Both are asked when needed, as the rail does."""

    def __init__(
        self,
        api: TronApi,
        settings: TronPayoutSettings,
        *,
        hot: Callable[[], TronAddress],
        token: Callable[[], TronAddress],
    ) -> None:
        self.api = api
        self.settings = settings
        self._hot = hot
        self._token = token

    def estimate(self, coin: Asset, line: PayoutLine, destination: TronAddress) -> FeeEstimate:
        """The fee of paying ``line`` of ``coin`` to ``destination`` from the hot address;
        raises `TronApiError` when the node cannot be asked."""
        hot = self._hot()
        chain = self.api.chain_parameters()
        bandwidth_price = chain.get("getTransactionFee", 0)
        head = self.api.now_block()
        timestamp_ms = head.timestamp_ms
        expiration_ms = timestamp_ms + self.settings.expiration_seconds * 1000
        resources = self.api.account_resources(hot)
        staked_net = resources.net_left if resources else 0
        free_net = resources.free_net_left if resources else 0
        params: dict[str, int] = {"bandwidth_price": bandwidth_price}

        if coin == TRX:
            size = transaction_bandwidth(
                call_data=None,
                amount_sun=line.amount.amount,
                timestamp_ms=timestamp_ms,
                expiration_ms=expiration_ms,
                fee_limit_sun=0,
            )
            creates = self.api.account(destination) is None
            if creates:
                # BandwidthProcessor.consumeForCreateNewAccount: staked bandwidth, or a flat
                # fee; never the free bandwidth.
                bandwidth_fee = 0 if size <= staked_net else chain.get("getCreateAccountFee", 0)
                create_fee = chain.get("getCreateNewAccountFeeInSystemContract", 0)
            else:
                bandwidth_fee = 0 if size <= max(staked_net, free_net) else size * bandwidth_price
                create_fee = 0
            params |= {
                "bandwidth_bytes": size,
                "bandwidth_fee": bandwidth_fee,
                "creates_account": int(creates),
                "account_create_fee": create_fee,
            }
            return FeeEstimate(
                total=Money(bandwidth_fee + create_fee, TRX),
                params=params,
                source="getchainparameters, getaccountresource, getaccount",
            )

        token = self._token()
        data = trc20_transfer_calldata(destination, line.amount.amount)
        energy, source = self._energy(hot, token, data)
        energy_price = chain.get("getEnergyFee", 0)
        staked_energy = resources.energy_left if resources else 0
        energy_fee = max(0, energy - staked_energy) * energy_price
        max_fee_limit = chain.get("getMaxFeeLimit", MAX_FEE_LIMIT) or MAX_FEE_LIMIT
        headroom = min(
            self.settings.trc20_fee_limit_sun, FEE_LIMIT_HEADROOM * energy * energy_price
        )
        fee_limit = min(max(energy_fee, headroom, 1), max_fee_limit)
        size = transaction_bandwidth(
            call_data=data,
            amount_sun=0,
            timestamp_ms=timestamp_ms,
            expiration_ms=expiration_ms,
            fee_limit_sun=fee_limit,
        )
        bandwidth_fee = 0 if size <= max(staked_net, free_net) else size * bandwidth_price
        params |= {
            "bandwidth_bytes": size,
            "bandwidth_fee": bandwidth_fee,
            "energy": energy,
            "energy_price": energy_price,
            "energy_fee": energy_fee,
            "fee_limit": fee_limit,
        }
        return FeeEstimate(
            total=Money(bandwidth_fee + energy_fee, TRX),
            params=params,
            source=f"getchainparameters, getaccountresource, {source}",
        )

    def _energy(self, hot: TronAddress, token: TronAddress, data: bytes) -> tuple[int, str]:
        """(energy of the token transfer from the hot address, which endpoint said so)."""
        selector, parameter = TRANSFER_SELECTOR, data[4:]
        try:
            return self.api.estimate_energy(hot, token, selector, parameter), "estimateenergy"
        except (TronCallRefused, TronNodeError):
            pass  # switched off on this node, or the call reverts: the constant call tells
        except TronTransportError as error:
            if error.status_code != 404:  # an older node without the endpoint
                raise
        call = self.api.trigger_constant(hot, token, selector, parameter)
        if call.reverted:
            held = self.api.trc20_balance(token, hot)
            raise RailUnavailable(
                f"the USDT-TRC20 transfer from the hot wallet {hot.text} would revert now "
                f"({call.message or 'REVERT'}), so it cannot be priced; the hot wallet holds "
                f"{Money(held, USDT_TRC20)}, this payout needs "
                f"{Money(int.from_bytes(parameter[32:64], 'big'), USDT_TRC20)}"
            )
        return call.energy_used, "triggerconstantcontract"


def most_fee(coin: Asset, estimate: FeeEstimate) -> Money:
    """What a transaction signed for ``estimate`` may burn: the estimate for TRX (the
    bandwidth and creation fees are fixed), the fee limit plus bandwidth for TRC-20."""
    if coin == TRX:
        return estimate.total
    return Money(estimate.params["fee_limit"] + estimate.params["bandwidth_fee"], TRX)
