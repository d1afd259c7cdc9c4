"""The faucet pays BTC by spending its own mature coins with a P2WPKH signature."""

from __future__ import annotations

import coincurve
import pytest

from kassa.chains.btc.keys import p2wpkh_address_for_key
from kassa.chains.network import BtcNetwork
from kassa.money import BTC, Money
from kassa_dev.devnet import bitcoin as btc
from kassa_dev.devnet.faucet import FaucetError
from kassa_dev.devnet.testing import BitcoinNode

pytestmark = pytest.mark.chain


def test_btc_is_paid_from_the_faucet_key_and_confirmed(bitcoin_node: BitcoinNode) -> None:
    rpc = bitcoin_node.rpc()
    recipient = p2wpkh_address_for_key(coincurve.PrivateKey(), BtcNetwork.REGTEST).text

    txid = bitcoin_node.faucet().fund(recipient, Money.parse("0.5", BTC))

    received = [u for u in rpc.utxos(recipient) if u.height >= 0]
    assert [(u.txid, u.value) for u in received] == [(txid, 50_000_000)]
    tx = rpc.call("getrawtransaction", txid, 1)
    assert tx["confirmations"] >= 1
    # Spent from the faucet, change (if any) back to it, nothing else.
    paid_to = {out["scriptPubKey"]["addresses"][0] for out in tx["vout"]}
    assert paid_to <= {recipient, btc.faucet_key().address}


def test_a_payment_larger_than_one_coin_spends_several(bitcoin_node: BitcoinNode) -> None:
    rpc = bitcoin_node.rpc()
    recipient = p2wpkh_address_for_key(coincurve.PrivateKey(), BtcNetwork.REGTEST).text

    txid = bitcoin_node.faucet().fund(recipient, Money.parse("120", BTC))

    assert len(rpc.call("getrawtransaction", txid, 1)["vin"]) >= 3  # coinbases hold <= 50 BTC
    assert sum(u.value for u in rpc.utxos(recipient)) == 120 * 100_000_000


def test_the_faucet_refuses_other_networks_and_dust(bitcoin_node: BitcoinNode) -> None:
    faucet = bitcoin_node.faucet()
    mainnet = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
    with pytest.raises(FaucetError, match="not a valid"):
        faucet.fund(mainnet, Money(100_000, BTC))
    recipient = p2wpkh_address_for_key(coincurve.PrivateKey(), BtcNetwork.REGTEST).text
    with pytest.raises(FaucetError, match="dust"):
        faucet.fund(recipient, Money(100, BTC))
