"""The arithmetic of live fee quotes, and the fallback when a node does not answer (issue 14).

The chains themselves are exercised in test_fee_quotes_chains.py; here the figures a node would
give are passed in, and the nodes that do not answer are real sockets: a closed port (refused at
once) and a listener that never replies (the client's own timeout ends the wait).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from kassa.deposits.settings import ChainsSettings
from kassa.money import BTC, ETH, TRX, USD, Money, asset
from kassa.payouts.fee_quotes import (
    FeeQuotes,
    LiveFeeUnavailable,
    erc20_gas,
    eth_fee,
    eth_next_fees,
    trc20_energy,
    tron_trc20_fee,
    tron_trx_fee,
    with_margin,
)
from kassa.payouts.requests import network_fee
from kassa.payouts.settings import (
    EthPayoutSettings,
    FeeQuoteSettings,
    PayoutSettings,
)
from kassa.policy import AccountFacts, RateFacts, load_preset, quote_withdrawal
from kassa.policy.facts import FeeSource, NetworkFee

GWEI = 10**9


# --------------------------------------------------------------------------- arithmetic


def test_the_margin_is_added_and_rounded_up_to_the_minor_unit() -> None:
    assert with_margin(100, 20) == 120
    assert with_margin(101, 20) == 122  # 121.2 → 122
    assert with_margin(0, 20) == 0
    assert with_margin(7, 0) == 7


def test_eth_next_fees_read_the_next_base_fee_and_the_median_tip() -> None:
    history = {
        "oldestBlock": "0x10",
        "baseFeePerGas": ["0x1", "0x2", hex(30 * GWEI)],
        "gasUsedRatio": [0.5, 0.5],
        "reward": [[hex(2 * GWEI)], [hex(4 * GWEI)], [hex(3 * GWEI)]],
    }
    assert eth_next_fees(history, configured_tip=GWEI) == (30 * GWEI, 3 * GWEI)
    # The worker pays at least its configured tip: the quote never prices less.
    assert eth_next_fees(history, configured_tip=5 * GWEI) == (30 * GWEI, 5 * GWEI)
    no_rewards = {"baseFeePerGas": [hex(GWEI), hex(2 * GWEI)], "reward": [[]]}
    assert eth_next_fees(no_rewards, configured_tip=GWEI) == (2 * GWEI, GWEI)
    with pytest.raises(LiveFeeUnavailable):
        eth_next_fees({"baseFeePerGas": []}, configured_tip=GWEI)


def test_eth_fee_is_gas_times_base_fee_plus_tip_within_the_cap() -> None:
    settings = EthPayoutSettings(base_fee_multiplier=2, max_fee_per_gas_wei=100 * GWEI)
    assert eth_fee(21_000, 30 * GWEI, 2 * GWEI, settings) == 21_000 * 32 * GWEI
    capped = EthPayoutSettings(max_fee_per_gas_wei=10 * GWEI)
    assert eth_fee(21_000, 30 * GWEI, 2 * GWEI, capped) == 21_000 * 10 * GWEI
    # The devnet's figures: 21 000 gas at ≈0.45 gwei base and the 1.5 gwei tip is about
    # 0.000041 ETH (≈ $0.12 at $3 000), not the 0.00042 ETH the fixed estimate charged.
    devnet = eth_fee(21_000, 451_192_473, 1_500_000_000, EthPayoutSettings())
    assert devnet < PayoutSettings().fee_estimate("ETH").amount // 10


def test_token_transfers_to_an_empty_balance_cost_more() -> None:
    settings = FeeQuoteSettings()
    assert erc20_gas(0, settings) == settings.erc20_transfer_gas_new_holder == 52_000
    assert erc20_gas(1, settings) == settings.erc20_transfer_gas == 35_000
    assert trc20_energy(0, settings) == 29_650
    assert trc20_energy(5, settings) == 14_650


def test_tron_fees_price_creation_bandwidth_and_energy() -> None:
    chain = {
        "getTransactionFee": 1_000,
        "getEnergyFee": 420,
        "getCreateAccountFee": 100_000,
        "getCreateNewAccountFeeInSystemContract": 1_000_000,
    }
    assert tron_trx_fee(chain, 269, creates=False) == 269_000
    assert tron_trx_fee(chain, 269, creates=True) == 1_100_000
    assert tron_trc20_fee(chain, 29_650, 345) == 29_650 * 420 + 345_000
    # Twice the energy price, twice the energy part: the quote follows the chain's price.
    dearer = chain | {"getEnergyFee": 840}
    assert tron_trc20_fee(dearer, 29_650, 345) == 29_650 * 840 + 345_000


# --------------------------------------------------------------------------- fallbacks


@pytest.fixture
def refused_url() -> str:
    """A local port nothing listens on: the connection is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A local port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def _chains(url: str) -> ChainsSettings:
    return ChainsSettings.model_validate(
        {
            "btc": {"rpc_url": url, "rpc_api_key": "x"},
            "eth": {"rpc_url": url},
            "tron": {"api_url": url},
        }
    )


def _settings(**fee_quotes: Any) -> PayoutSettings:
    return PayoutSettings.model_validate({"fee_quotes": fee_quotes})


CODES = ["BTC", "ETH", "USDT-ERC20", "TRX", "USDT-TRC20"]


@pytest.mark.parametrize("code", CODES)
def test_a_node_that_refuses_gives_the_configured_estimate_marked_fallback(
    refused_url: str, code: str
) -> None:
    settings = _settings()
    quotes = FeeQuotes(settings, _chains(refused_url))
    quoted = quotes.fee(asset(code), None)
    quotes.close()
    assert quoted.source is FeeSource.FALLBACK
    assert quoted.amount == settings.fee_estimate(code)
    assert "did not answer" in quoted.detail


def test_a_node_that_never_answers_gives_the_fallback_after_the_timeout(silent_url: str) -> None:
    settings = _settings(timeout_seconds=0.2)
    quotes = FeeQuotes(settings, _chains(silent_url))
    quoted = quotes.fee(ETH, None)
    quotes.close()
    assert quoted.source is FeeSource.FALLBACK
    assert quoted.amount == settings.fee_estimate("ETH")


def test_a_chain_without_a_node_and_live_quotes_switched_off_give_the_fallback() -> None:
    unconfigured = FeeQuotes(_settings(), ChainsSettings())
    assert unconfigured.fee(BTC, None).source is FeeSource.FALLBACK
    off = FeeQuotes(_settings(live=False), _chains("http://127.0.0.1:9"))
    assert off.fee(TRX, None).detail == "configured estimate: live fee quotes are switched off"


def test_the_fallback_is_reused_for_the_cache_time_then_asked_again(refused_url: str) -> None:
    now = [0.0]
    quotes = FeeQuotes(_settings(cache_seconds=5), _chains(refused_url), monotonic=lambda: now[0])
    first = quotes.fee(ETH, None)
    assert quotes.fee(ETH, None) is first
    now[0] = 6.0
    again = quotes.fee(ETH, None)
    assert again is not first and again == first
    quotes.close()


def test_network_fee_without_live_quotes_is_the_configured_estimate() -> None:
    settings = PayoutSettings()
    fee = network_fee(settings, ETH, None)
    assert fee == NetworkFee(Money.parse("0.00042", ETH), source=FeeSource.FALLBACK)


def test_network_fee_carries_the_live_source_and_the_fee_rate(refused_url: str) -> None:
    trx_rate = RateFacts(TRX, Decimal("0.25"), source="static")
    quotes = FeeQuotes(PayoutSettings(), _chains(refused_url))
    quoted = quotes.fee(asset("USDT-TRC20"), None)
    fee = network_fee(PayoutSettings(), asset("USDT-TRC20"), trx_rate, quoted=quoted)
    quotes.close()
    assert fee.rate == trx_rate and fee.source is FeeSource.FALLBACK


# --------------------------------------------------------------------------- the decision


@pytest.mark.parametrize("source", [FeeSource.LIVE, FeeSource.FALLBACK])
def test_the_decision_breakdown_says_which_fee_was_used(source: FeeSource) -> None:
    decision = quote_withdrawal(
        load_preset("default"),
        AccountFacts(available_usd=Money.parse("100.00", USD)),
        Money.parse("25.00", USD),
        ETH,
        RateFacts(ETH, Decimal("3000"), source="static"),
        NetworkFee(Money(47_748_794_032_800, ETH), source=source),
        datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert decision.breakdown.network_fee_source == source.value
    assert decision.as_record()["breakdown"]["network_fee_source"] == source.value


def test_a_network_fee_source_must_be_a_fee_source() -> None:
    with pytest.raises(ValueError, match="FeeSource"):
        NetworkFee(Money(1, ETH), source="live")  # type: ignore[arg-type]


def test_a_destination_the_chain_refuses_is_priced_at_the_fallback(refused_url: str) -> None:
    quotes = FeeQuotes(_settings(), _chains(refused_url))
    # The BTC reader parses the destination before it asks the node.
    quoted = quotes.fee(BTC, "0x52908400098527886E0F7030069857D2E4169EE7")
    quotes.close()
    assert quoted.source is FeeSource.FALLBACK
    assert "not a Bitcoin" in quoted.detail
