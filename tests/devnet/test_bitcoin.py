"""bcoin regtest through the launcher behaves like Bitcoin Core where Kassa relies on it:
`bcrt1` addresses, `getblock` verbosity, and a strict `sendrawtransaction` with Core's codes."""

from __future__ import annotations

import secrets

import coincurve
import pytest

from kassa.chains.btc._bech32 import segwit_encode
from kassa.chains.btc.address import parse_btc_address
from kassa.chains.btc.keys import p2wpkh_address_for_key
from kassa.chains.btc.tx import Coin, OutPoint, Transaction, TxOut, build_transaction
from kassa.chains.network import BtcNetwork
from kassa_dev.devnet import bitcoin as btc
from kassa_dev.devnet.rpc import JsonRpcError
from kassa_dev.devnet.testing import BitcoinNode

pytestmark = pytest.mark.chain

FAUCET = btc.faucet_key()
FAUCET_SECRET = coincurve.PrivateKey(FAUCET.private_key)
FEE = 2_000  # satoshi; ample for a one-input, one-output P2WPKH spend at regtest's floor


def fresh_address() -> tuple[coincurve.PrivateKey, str]:
    key = coincurve.PrivateKey()
    return key, p2wpkh_address_for_key(key, BtcNetwork.REGTEST).text


def spendable_coin(node: BitcoinNode, skip: frozenset[OutPoint] = frozenset()) -> btc.Utxo:
    rpc = node.rpc()
    tip = rpc.height()
    for utxo in rpc.utxos(FAUCET.address):
        if utxo.spendable_at(tip) and OutPoint(utxo.txid, utxo.vout) not in skip:
            return utxo
    raise AssertionError("the faucet has no mature coin left")


def spend(utxo: btc.Utxo, to: str, *, signed_amount: int | None = None) -> Transaction:
    """A signed transaction paying `utxo` (minus FEE) to `to`.

    `signed_amount` makes the BIP143 signature commit to a different input amount, which gives
    a well-formed transaction whose signature is wrong.
    """
    script = parse_btc_address(to, BtcNetwork.REGTEST).script_pubkey
    unsigned = build_transaction(
        [Coin(OutPoint(utxo.txid, utxo.vout), signed_amount or utxo.value, utxo.script_pubkey)],
        [TxOut(utxo.value - FEE, script)],
    )
    return unsigned.sign([FAUCET_SECRET])


def rejection(node: BitcoinNode, tx: Transaction | bytes) -> JsonRpcError:
    raw = tx if isinstance(tx, bytes) else tx.serialize()
    with pytest.raises(JsonRpcError) as refused:
        node.rpc().send_raw_transaction(raw)
    return refused.value


# --------------------------------------------------------------------- addresses and blocks


def test_bcrt1_addresses_are_valid_and_can_be_mined_to(bitcoin_node: BitcoinNode) -> None:
    rpc = bitcoin_node.rpc()
    _, address = fresh_address()
    assert address.startswith("bcrt1q")

    check = rpc.call("validateaddress", address)
    assert check["isvalid"] is True
    assert check["address"] == address

    (block_hash,) = rpc.generate(1, address)
    block = rpc.call("getblock", block_hash, 2)
    coinbase_out = block["tx"][0]["vout"][0]["scriptPubKey"]
    assert coinbase_out["addresses"] == [address]


def test_bcoins_own_regtest_prefix_is_refused(bitcoin_node: BitcoinNode) -> None:
    # `rb1…` is stock bcoin's regtest HRP; the launcher switched the node to Core's `bcrt`.
    stock = segwit_encode("rb", 0, FAUCET.script_pubkey[2:])
    assert bitcoin_node.rpc().call("validateaddress", stock)["isvalid"] is False
    assert bitcoin_node.rpc().call("validateaddress", FAUCET.address)["isvalid"] is True


def test_getblock_takes_cores_integer_verbosity(bitcoin_node: BitcoinNode) -> None:
    rpc = bitcoin_node.rpc()
    block_hash = rpc.call("getblockhash", 1)

    raw = rpc.call("getblock", block_hash, 0)
    txids = rpc.call("getblock", block_hash, 1)["tx"]
    full = rpc.call("getblock", block_hash, 2)["tx"]

    assert isinstance(raw, str) and bytes.fromhex(raw)
    assert all(isinstance(txid, str) for txid in txids)
    assert [tx["txid"] for tx in full] == txids


def test_the_faucet_holds_mature_coins_after_setup(bitcoin_node: BitcoinNode) -> None:
    rpc = bitcoin_node.rpc()
    assert rpc.height() >= btc.SETUP_BLOCKS
    tip = rpc.height()
    mature = [u for u in rpc.utxos(FAUCET.address) if u.spendable_at(tip)]
    assert sum(u.value for u in mature) >= 100 * 100_000_000


# --------------------------------------------------------------------- strict sendrawtransaction


def test_a_valid_spend_enters_the_mempool_and_a_rebroadcast_is_idempotent(
    bitcoin_node: BitcoinNode,
) -> None:
    rpc = bitcoin_node.rpc()
    _, to = fresh_address()
    tx = spend(spendable_coin(bitcoin_node), to)

    assert rpc.send_raw_transaction(tx.serialize()) == tx.txid
    assert tx.txid in rpc.call("getrawmempool")
    # Bitcoin Core answers a rebroadcast of a mempool transaction with its txid.
    assert rpc.send_raw_transaction(tx.serialize()) == tx.txid
    rpc.generate(1, FAUCET.address)
    assert rpc.call("getrawtransaction", tx.txid, 1)["confirmations"] == 1


def test_a_double_spend_is_rejected(bitcoin_node: BitcoinNode) -> None:
    rpc = bitcoin_node.rpc()
    coin = spendable_coin(bitcoin_node)
    first = spend(coin, fresh_address()[1])
    second = spend(coin, fresh_address()[1])
    rpc.send_raw_transaction(first.serialize())

    in_mempool = rejection(bitcoin_node, second)
    assert in_mempool.code == -26
    assert "bad-txns-inputs-spent" in in_mempool.message

    rpc.generate(1, FAUCET.address)
    in_chain = rejection(bitcoin_node, second)
    assert in_chain.code == -25
    assert in_chain.message == "bad-txns-inputs-missingorspent"
    assert second.txid not in rpc.call("getrawmempool")


def test_a_bad_signature_is_rejected(bitcoin_node: BitcoinNode) -> None:
    coin = spendable_coin(bitcoin_node)
    forged = spend(coin, fresh_address()[1], signed_amount=coin.value + 1)

    refused = rejection(bitcoin_node, forged)

    assert refused.code == -26
    assert "script-verify-flag" in refused.message
    assert forged.txid not in bitcoin_node.rpc().call("getrawmempool")


def test_an_immature_coinbase_cannot_be_spent(bitcoin_node: BitcoinNode) -> None:
    rpc = bitcoin_node.rpc()
    (block_hash,) = rpc.generate(1, FAUCET.address)
    coinbase = rpc.call("getblock", block_hash, 2)["tx"][0]
    value = round(coinbase["vout"][0]["value"] * 100_000_000)
    young = btc.Utxo(
        txid=coinbase["txid"],
        vout=0,
        value=value,
        script_pubkey=FAUCET.script_pubkey,
        height=rpc.height(),
        coinbase=True,
    )

    refused = rejection(bitcoin_node, spend(young, fresh_address()[1]))

    assert refused.code == -26
    assert "premature-spend-of-coinbase" in refused.message


def test_unknown_inputs_and_garbage_get_cores_codes(bitcoin_node: BitcoinNode) -> None:
    phantom = btc.Utxo(
        txid=secrets.token_hex(32),
        vout=0,
        value=100_000,
        script_pubkey=FAUCET.script_pubkey,
        height=1,
        coinbase=False,
    )
    missing = rejection(bitcoin_node, spend(phantom, fresh_address()[1]))
    assert missing.code == -25

    garbage = rejection(bitcoin_node, b"\x02\x00\x00\x00\xff")
    assert garbage.code == -22
