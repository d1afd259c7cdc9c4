"""Bitcoin addresses against the official vectors: BIP173, BIP350 and Bitcoin Core's
key_io_valid.json / key_io_invalid.json (src/test/data), plus Kassa's own refusals."""

from __future__ import annotations

import pytest

from kassa.chains.btc import _bech32
from kassa.chains.btc.address import (
    BtcAddress,
    BtcAddressKind,
    btc_address_for_script,
    p2wpkh_address_for_public_key,
    parse_btc_address,
)
from kassa.chains.errors import AddressProblem, InvalidAddress
from kassa.chains.network import BtcNetwork

MAINNET, TESTNET, REGTEST = BtcNetwork.MAINNET, BtcNetwork.TESTNET, BtcNetwork.REGTEST

# --------------------------------------------------------------------- bech32 strings

BIP173_VALID_BECH32 = [
    "A12UEL5L",
    "a12uel5l",
    "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
    "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
    "11qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqc8247j",
    "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
    "?1ezyfcl",
]
BIP173_INVALID_BECH32 = [
    "\x201nwldj5",
    "\x7f1axkwrx",
    "\x801eym55h",
    "an84characterslonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1569pvx",
    "pzry9x0s0muk",
    "1pzry9x0s0muk",
    "x1b4n0q5v",
    "li1dgmt3",
    "de1lg7wt\xff",
    "A1G7SGD8",
    "10a06t8",
    "1qzzfhee",
]
BIP350_VALID_BECH32M = [
    "A1LQFN3A",
    "a1lqfn3a",
    "an83characterlonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11sg7hg6",
    "abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx",
    "11llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllludsr8",
    "split1checkupstagehandshakeupstreamerranterredcaperredlc445v",
    "?1v759aa",
]
BIP350_INVALID_BECH32M = [
    "\x201xj0phk",
    "\x7f1g6xzxy",
    "\x801vctc34",
    "an84characterslonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11d6pts4",
    "qyrz8wqd2c9m",
    "1qyrz8wqd2c9m",
    "y1b0jsk6g",
    "lt1igcx5c0",
    "in1muywd",
    "mm1crxm3i",
    "au1s5cgom",
    "M1VUXWEZ",
    "16plkw9",
    "1p2gdwpf",
]


@pytest.mark.parametrize("text", BIP173_VALID_BECH32)
def test_bip173_valid_bech32_strings(text: str) -> None:
    hrp, _, encoding = _bech32.bech32_decode(text)
    assert encoding is _bech32.Encoding.BECH32
    assert hrp == text[: text.rfind("1")].lower()


@pytest.mark.parametrize("text", BIP350_VALID_BECH32M)
def test_bip350_valid_bech32m_strings(text: str) -> None:
    _, _, encoding = _bech32.bech32_decode(text)
    assert encoding is _bech32.Encoding.BECH32M


@pytest.mark.parametrize("text", BIP173_INVALID_BECH32 + BIP350_INVALID_BECH32M)
def test_invalid_bech32_strings(text: str) -> None:
    with pytest.raises(_bech32.Bech32Error):
        _bech32.bech32_decode(text)


# --------------------------------------------------------------------- segwit addresses

# BIP350 "valid segwit addresses" (they supersede BIP173's list for v1+), with scriptPubKey.
BIP350_VALID_SEGWIT = [
    ("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "0014751e76e8199196d454941c45d1b3a323f1433bd6"),
    (
        "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
        "00201863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262",
    ),
    (
        "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y",
        "5128751e76e8199196d454941c45d1b3a323f1433bd6751e76e8199196d454941c45d1b3a323f1433bd6",
    ),
    ("BC1SW50QGDZ25J", "6002751e"),
    ("bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs", "5210751e76e8199196d454941c45d1b3a323"),
    (
        "tb1qqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesrxh6hy",
        "0020000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433",
    ),
    (
        "tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c",
        "5120000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433",
    ),
    (
        "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
        "512079be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",
    ),
]

BIP173_INVALID_SEGWIT = [
    "tc1qw508d6qejxtdg4y5r3zarvary0c5xw7kg3g4ty",
    "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5",
    "BC13W508D6QEJXTDG4Y5R3ZARVARY0C5XW7KN40WF2",
    "bc1rw5uspcuh",
    "bc10w508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kw5rljs90",
    "BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P",
    "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sL5k7",
    "bc1zw508d6qejxtdg4y5r3zarvaryvqyzf3du",
    "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3pjxtptv",
    "bc1gmk9yu",
]
BIP350_INVALID_SEGWIT = [
    "tc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq5zuyut",
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd",
    "tb1z0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqglt7rf",
    "BC1S0XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ54WELL",
    "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh",
    "tb1q0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq24jc47",
    "bc1p38j9r5y49hruaue7wxjce0updqjuyyx0kh56v8s25huc6995vvpql3jow4",
    "BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R",
    "bc1pw5dgrnzv",
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v8n0nx0muaewav253zgeav",
    "BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P",
    "tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq47Zagq",
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v07qwwzcrf",
    "tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vpggkg4j",
    "bc1gmk9yu",
]
# BIP173's v1+ examples carry Bech32 checksums, which BIP350 made invalid.
BIP173_VALID_BUT_NOT_BIP350 = [
    "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7k7grplx",
    "BC1SW50QA3JX3S",
    "bc1zw508d6qejxtdg4y5r3zarvaryvg6kdaj",
]

HRP_NETWORK = {"bc": MAINNET, "tb": TESTNET, "bcrt": REGTEST}


def _script_for(version: int, program: bytes) -> bytes:
    return bytes([0x50 + version if version else 0, len(program)]) + program


@pytest.mark.parametrize(("text", "script_hex"), BIP350_VALID_SEGWIT)
def test_bip350_valid_segwit_addresses(text: str, script_hex: str) -> None:
    # The decoder reads every valid version exactly...
    hrp, version, program = _bech32.segwit_decode(text)
    assert _script_for(version, program).hex() == script_hex
    network = HRP_NETWORK[hrp]
    # ...and Kassa pays only to v0 and v1 taproot; the rest are anyone-can-spend today.
    if version == 0 or (version == 1 and len(program) == 32):
        address = parse_btc_address(text, network)
        assert address.script_pubkey.hex() == script_hex
        assert address.text == text.lower()
        assert btc_address_for_script(address.script_pubkey, network) == address
    else:
        with pytest.raises(InvalidAddress) as refused:
            parse_btc_address(text, network)
        assert refused.value.problem is AddressProblem.UNSUPPORTED_WITNESS_VERSION
        assert "witness version" in refused.value.detail


@pytest.mark.parametrize("text", BIP173_INVALID_SEGWIT + BIP350_INVALID_SEGWIT)
@pytest.mark.parametrize("network", list(BtcNetwork))
def test_bip173_bip350_invalid_segwit_addresses(text: str, network: BtcNetwork) -> None:
    with pytest.raises(InvalidAddress) as refused:
        parse_btc_address(text, network)
    assert refused.value.code == "invalid_address"


@pytest.mark.parametrize("text", BIP173_VALID_BUT_NOT_BIP350)
def test_v1_plus_with_a_bech32_checksum_is_refused(text: str) -> None:
    with pytest.raises(InvalidAddress) as refused:
        parse_btc_address(text, MAINNET)
    assert refused.value.problem is AddressProblem.BAD_CHECKSUM
    assert "Bech32m checksum" in refused.value.detail


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("tc1qw508d6qejxtdg4y5r3zarvary0c5xw7kg3g4ty", AddressProblem.UNKNOWN_PREFIX),
        ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5", AddressProblem.BAD_CHECKSUM),
        ("BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P", AddressProblem.BAD_LENGTH),
        (
            "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd",
            AddressProblem.BAD_CHECKSUM,
        ),
        ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh", AddressProblem.BAD_CHECKSUM),
        ("bc1pw5dgrnzv", AddressProblem.BAD_LENGTH),
        ("bc1zw508d6qejxtdg4y5r3zarvaryvqyzf3du", AddressProblem.BAD_LENGTH),
        (
            "BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R",
            AddressProblem.UNSUPPORTED_WITNESS_VERSION,
        ),
    ],
)
def test_segwit_refusals_say_why(text: str, problem: AddressProblem) -> None:
    with pytest.raises(InvalidAddress) as refused:
        parse_btc_address(text, MAINNET)
    assert refused.value.problem is problem


def test_mixed_case_bech32_is_refused() -> None:
    # BIP173's mixed-case vector is a testnet address: refused even on its own network.
    text = "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sL5k7"
    with pytest.raises(InvalidAddress) as refused:
        parse_btc_address(text, TESTNET)
    assert refused.value.problem is AddressProblem.MIXED_CASE
    assert "mixes upper- and lower-case" in refused.value.detail


# --------------------------------------------------------------------- Bitcoin Core key_io

# (address, scriptPubKey, Core chain) from bitcoin/bitcoin src/test/data/key_io_valid.json.
# Core's testnet4 and signet use testnet's encodings.
CORE_KEY_IO_VALID = [
    (
        "1FsSia9rv4NeEwvJ2GvXrX7LyxYspbN2mo",
        "76a914a31c06bd463e3923bc1aadbde48b16976c08071788ac",
        "main",
    ),
    (
        "36j4NfKv6Akva9amjWrLG6MuSQym1GuEmm",
        "a914373b819a068f32b7a6b38b6b38729647cfde01c287",
        "main",
    ),
    (
        "mzK2FFDEhxqHcmrJw1ysqFkVyhUULo45hZ",
        "76a914ce28b26c57472737f5c3561a1761185bd8589a4388ac",
        "testnet4",
    ),
    (
        "2NC2hEhe28ULKAJkW5MjZ3jtTMJdvXmByvK",
        "a914ce0bba75891ff9ec60148d4bd4a09ee2dc5c933187",
        "testnet4",
    ),
    (
        "mww4LvqtTMKvmeQvizPz2EQv26xTneWrbg",
        "76a914b4110ba93ac54afc14da3bdd19614774a2d55d2988ac",
        "signet",
    ),
    (
        "2N1r7aC69VHeE7yQJPDLi9T1PYq4wnwvjuT",
        "a9145e5a35ab44b3efaea5129ba22b88ba3e2976614587",
        "signet",
    ),
    (
        "n4fajahJrAuKbN7uNsKjLjQkz9Qn5ewJXQ",
        "76a914fdeca3b08e38af53d7c4c60e3ad208ce5066441088ac",
        "regtest",
    ),
    (
        "2MxFajLApXpYk4VodBSZSt7rw8y4ryABkfA",
        "a91436e9f191e0b75036a77f65e2eaa4752443233fbe87",
        "regtest",
    ),
    (
        "bc1qvyq0cc6rahyvsazfdje0twl7ez82ndmuac2lhv",
        "00146100fc6343edc8c874496cb2f5bbfec88ea9b77c",
        "main",
    ),
    (
        "bc1qyucykdlhp62tezs0hagqury402qwhk589q80tqs5myh3rxq34nwqhkdhv7",
        "002027304b37f70e94bc8a0fbf500e0c957a80ebda87280ef58214d92f119811acdc",
        "main",
    ),
    (
        "bc1p83n3au0rjylefxq2nc2xh2y4jzz4pm6zxj4mw5pagdjjr2a9f36s6jjnnu",
        "51203c671ef1e3913f94980a9e146ba895908550ef4234abb7503d436521aba54c75",
        "main",
    ),
    ("bc1z2rksukkjr8", "520250ed", "main"),
    (
        "tb1qcrh3yqn4nlleplcez2yndq2ry8h9ncg3qh7n54",
        "0014c0ef1202759fff90ff19128936814321ee59e111",
        "testnet4",
    ),
    (
        "tb1quyl9ujpgwr2chdzdnnalen48sup245vdfnh2jxhsuq3yx80rrwlq5hqfe4",
        "0020e13e5e482870d58bb44d9cfbfccea78702aad18d4ceea91af0e022431de31bbe",
        "testnet4",
    ),
    (
        "tb1p35n52jy6xkm4wd905tdy8qtagrn73kqdz73xe4zxpvq9t3fp50aqk3s6gz",
        "51208d2745489a35b75734afa2da43817d40e7e8d80d17a26cd4460b0055c521a3fa",
        "testnet4",
    ),
    ("tb1rgv5m6uvdk3kc7qsuz0c79v88ycr5w4wa", "53104329bd718db46d8f021c13f1e2b0e726", "testnet4"),
    (
        "tb1q3vya2h5435jkugq2few7dmktlrwq4ejmfaw7kr",
        "00148b09d55e958d256e200a4e5de6eecbf8dc0ae65b",
        "signet",
    ),
    (
        "bcrt1qdavt4j2sd7dlhqsavtnfxvzppw6k7qy97tmnu9",
        "00146f58bac9506f9bfb821d62e69330410bb56f0085",
        "regtest",
    ),
    (
        "bcrt1qan8gntac7z7me2ejt4hpru42ad2f759fmy0m3ejvs98656znv7eqga4uhv",
        "0020ecce89afb8f0bdbcab325d6e11f2aaeb549f50a9d91fb8e64c814faa685367b2",
        "regtest",
    ),
    (
        "bcrt1pfwxjqvtt4tcxrtdluukfmy2dv7xd2qzdfy6kajv5nwn4yam3wxkq3553uh",
        "51204b8d20316baaf061adbfe72c9d914d678cd5004d49356ec9949ba752777171ac",
        "regtest",
    ),
    (
        "bcrt1sx6p8njlx7h9mc2agz4yg82dzne23050ncq72cneeecez2pst8mahn8xecsf8g6hzx94420",
        "6028368279cbe6f5cbbc2ba8154883a9a29e5517d1f3c03cac4f39ce3225060b3efb799cd9c412746ae2",
        "regtest",
    ),
    (
        "1FjL87pn8ky6Vbavd1ZHeChRXtoxwRGCRd",
        "76a914a19331b7b2627e663e25a7b001e4c0dcc5e21bc788ac",
        "main",
    ),
    (
        "3BZECeAH8gSKkjrTx8PwMrNQBLG18yHpvf",
        "a9146c382dcdf5b284760c8e3fead91f7422cd76aa8787",
        "main",
    ),
    (
        "mfhE6jAUwjUDNZhaX1PAsDTKfneQF2Nshc",
        "76a91401f15a4cc063dae4f4d56b89bfbc8bcc9ae5387c88ac",
        "regtest",
    ),
    (
        "2MxNm1VHyVU4RuP3u1c1v5aQLk2dQjwy1Qk",
        "a91438456f7c076356abadcc67b92ad777eb20fb9f8887",
        "regtest",
    ),
    (
        "bcrt1q65nhlm4hf2ptg3t264al57p7wjxj2c3s6kyt83",
        "0014d5277feeb74a82b4456ad57bfa783e748d256230",
        "regtest",
    ),
]
CORE_CHAIN = {"main": MAINNET, "testnet4": TESTNET, "signet": TESTNET, "regtest": REGTEST}

# Every entry of Bitcoin Core's key_io_invalid.json (invalid on every chain) that fits in an
# address field; the longer silent-payment strings are covered by the length test below.
CORE_KEY_IO_INVALID = [
    "",
    "x",
    "1GAdfviErV2Ew95FPtZyikz2qGP3gyCB6Hyu94sedAkPpA523m3fQwps9YKUZkKgQckGPKhRsFR",
    "37G2kMDLpmWVhimxRdzwNfE8JFvWXnJYnVcXeeGrek2qumdJuK7XArcVVpRtLLjRra3t64BEPF2",
    "giymtio7u7oqWtmC9YnvAEKkLF3JQpAdkEFkVJKYrVDfaLbhaDpX1ihfF2vZmya1i61fwLPC3YQ",
    "8iVk9nLM3nYwRuwypjy9NK5rsuZH7BbrQRZ1pgcQmvMnjAgRXD",
    "cPTVQ1hbo4qdoysf6Jx5GthqucNmdfqt6J2pZRFeXv8Ep7Kmjqud",
    "cQbR2Ny85XFBzUMx3Ed6HsTLw2pVruSgPvt5AofnBUnhiv86gYeW",
    "2UB3iG3VJbX2TRrMwm6ssWskgvU9VjFBYSqCzwqkrihCwo7mg4mtS4WuGZgxTKuxf5A3EcotYEymz",
    "cQe12pqwPR6ExtZKfrKf1q4b3CTh1Qi7MwuvMvzs79nWXDvESfBJ",
    "tc1qeul5g2xfkvdkrhcfmdursv73ad64jnkjl9c40f",
    "bt1pq65rzej5glw3ra79gav6fqnx4haa0z257qr3mc8cggkefahmgvyseufhc0",
    "tb13hty4qmumlwpp6chxjvcyzza4duqgtmxw3xhm3u9ahj4nyhtwz8eq7ynrj4",
    "bcrt1r2qxpwuge",
    "bc10uexgzna2dpfk0vjt35srz6a27ps6m0l89jweznt83n2sqn2fx4hvn9ym5af8wut34sfrqhk3",
    "tb1qum6uh0pt4q253qaf520929737v63w5gf",
    "bcrt1q888ryfgxpvl0k7vum8zpyar2u2sexvdhkf38ue37yknmqq0ycrwpl3w48y",
    "bc1qdsuzmn04k2z8vryw8l4dj8m5ygqgnne5n",
    "tb1qlj8es50nc8j8r8xshrjgzmw5azx89efghmw8ju6zcqla0g6xcnrstsjz7k",
    "bcrt1qzwmyj0z924g7fzs5yvnrkc43y76RVyr2lh5t4r",
    "bc1qpu6d26mrulzetu4jqhd7rsunv9aqru26f5c4j8",
    "tb1qun6d26ufh77ghny6u5u8cwz9da7qwc6k4wkuceae9tth06eqlw0syupl4w",
    "bcrt1qj7g2jps453kj9htk9cxyyc2nxe69x4kzzmth7v",
    "bc1p702xksx4z3uqf0u2phllxkfe5cgu0adxptqs0uelx0tqt8e885sqryes2l",
    "tb1z7gmh0v6pc30z4xum76lmw8w86yswrlmw",
    "bcrt1sjsrw6nun4h502cr97xmnyyuhkr22q0s6efrgtu",
    "2UVPFpGYnLHJezFzjUo42our6PMEoozzRdM",
    "2MygHQjE1U33q3LSC53p69YqFjP8PihumJAF",
    "KzNbAQ4mexfAxa6RKBzHQqfoTycaeWpv2p",
    "2jDPrDfAKihCGPbPD9ztY8TswAia4V8Bc6vx",
    "4VQUNG1hG64QFtaNyQZQWDdwpxB275Pwb3tvyPt2HDxB8Mi2MgH8Tz3AC83YYiz9LydsLNXEZJLHY",
    "39TKsUQ5QpEL1wowc6GMUqak94ijirPuP69ooV3xsFmiKQX2dau",
    "2UEJjT3dSdwc8dAo7oedPzznXceXCEsBbDfAvSymqpqDrkZMv7JBEUpLyhkghioYAWC9W4sKysry",
    "7VmMEkphxCFSV1y659Th4dkk6x6bJS5eQvbt8rzUYKQyd6ACgwQ4vXHtXKFUwP2kW3XULipnHJdZ7",
    "tc1qdlapns4zkn03juf2k9xwwpct209suj6mgcd9gh",
    "bt1psa5eptk29c4jc9yumeseat3a0l5e2fpmw635za2p4gpwdnthueysxga9je",
    "tb13w8c43lykfj3lvm9sgp6dsnfjla3d57cm83seykunf0ltxjc9lt2q4efm4d",
    "bcrt1rjqr2tdkm",
    "bc10lyxwnxa70l270e6fcmxr4x7dtgu2yvy7gzkurwxy4zhdvgaqrrn6pfg2flyhqzy5t5se8yu3",
    "TB1QFDFM763VXVSUNZHQLPWC0Q8FG5LJX6ZN",
    "bcrt1q60chha7wfwlau4kdr4mlvyeyc8mnnh9dhxk05e0hmrxcuhghefj36uwyha",
    "bc1gmk9yu",
    "tb1ly0q7p",
    "bcrt1qdwttaw38uf42wxw40kwk3u8nguyTQH3hx6jmqp",
    "bc1qtsvlht6730n04f2mpaj5vv8hrledn5n5ug8c79",
    "tb1dclvmr",
    "bcrt1q3fqvctqu48wsvggrt09vj0yk2gzzcscdp4h98u",
    "bc1prklpq7tjcawg89cmwwqr3u5apwav36xa4zz56ady7crsllm6mpnqts7p86",
    "tb1zkm58zyhxz3ffkfgsyprflg543slsl4c4",
    "bcrt1snzr5kaypnfhpnjanrhd20fhqcjxm3hfh7dw9fu",
    "2GgnYKqBGuA2Mm5GnrPsMTZR81xPhNtgMYoFUZngZGiobhCuUpCaTriUHRcgFreEekNdPAR17q8d",
    "AZEah8d1EK362okRBS66e8SvdtYkrE8tsX",
    "gep8xr77FyPW6zYP15RiV9W8nL6w2HyHB16cUDakfyDceMA6ZzUdhJjk2LPuLYHnLkBqkRTTi6z",
    "2NDNP7GY59tTJPZTpbkprhM9SR99Nn5rUs7",
    "2Csgzy2T287YAjeU5tFtt1nPshBZAUFQi4WtgaWyZGKSBNnKXHy2Tmxo8QK4Mfdds977ShcDWC5o",
    "Kwjk3Vy6sdXMQDGWJzaWmqFxUNtWZCX1q4F4Kpt8jNNUoWJUUaTY",
    "Svj8kk98bAS9V4L2crmxakbhmnPm3cJ1tJ4Je4yVzDreU8eSTFURS1SPYv5oWEQD8Q9VBDvx5uF",
    "KNYsv6v9GtkGeD4WdQnBEJCrPKQm91PTxAbCfXr66LEd4JDmhPWC",
    "2UJ2H2xvAeXmFKfQwMyDoSdQTTPFMNCT3SsoUafBWKzoGP3NsUK1buEgQZG38viyD53jgMdpqfT7",
    "6aLMfayKF4TW4ecn5SEc8FExpyJA2peKxYRGZhes6tQ4NTTzuGy",
    "7VP4FmcebU2thJns9MnXde7LWfuqR5vMizrAuUoq2GcJjzTyA4RHFcPVdZL8PLg1SbpSFdJrvLXoY5",
    "tc1q5qdvt99uc92jyz663dtdpfpv6nr67ahmgwcpq2",
    "bt1peu3ppd7x796sjjenp09r8cs22rhylqm9lhggk72qp8q22vzft0wq2a0x6j",
    "tb1323z3lnz7dl3kd0nsuh6xy4he9almzl67anxgg3xdzkaxc9rwntlqdhdzd7",
    "bcrt1r2gc42sky",
    "bc10fd889x4hd54tqu2ewg9t4hhft2wl7m6x50av4uswzw46xe6as0xmltfg7vrjfkvm459vld7w",
    "TB1QZY7V0F2AT3308YGGNGN66ULJTCN3RY6F",
    "bcrt1qjg3cwht92znyw0l4r5rtctmls337nrc7g0ry9drjxmlecjd3atl3fake7c",
    "bc1qmgf8xt8xkecl79k04mma3lz34gqep7hg4",
    "TB1Q3F9WGNXE9ZMTTMDN5VKVKHYZ8Y0LCV72YV7V5LSXTJXEYHNHEHASLYL0TZ",
]


@pytest.mark.parametrize(("text", "script_hex", "core_chain"), CORE_KEY_IO_VALID)
def test_core_key_io_valid_addresses(text: str, script_hex: str, core_chain: str) -> None:
    network = CORE_CHAIN[core_chain]
    if script_hex[:2] in ("52", "53", "60"):  # witness v2, v3, v16: valid, but not payable
        with pytest.raises(InvalidAddress) as refused:
            parse_btc_address(text, network)
        assert refused.value.problem is AddressProblem.UNSUPPORTED_WITNESS_VERSION
        return
    address = parse_btc_address(text, network)
    assert address.script_pubkey.hex() == script_hex
    assert address.network is network
    # Core's "tryCaseFlip": bech32 is case-insensitive as a whole.
    if address.kind in (BtcAddressKind.P2WPKH, BtcAddressKind.P2WSH, BtcAddressKind.P2TR):
        assert parse_btc_address(text.upper(), network) == address
    assert btc_address_for_script(address.script_pubkey, network) == address
    assert BtcAddress.from_program(address.kind, address.program, network) == address


@pytest.mark.parametrize("text", CORE_KEY_IO_INVALID)
@pytest.mark.parametrize("network", list(BtcNetwork))
def test_core_key_io_invalid_strings(text: str, network: BtcNetwork) -> None:
    with pytest.raises(InvalidAddress):
        parse_btc_address(text, network)


# --------------------------------------------------------------------- network and chain


@pytest.mark.parametrize(
    ("text", "network", "says"),
    [
        ("tb1qcrh3yqn4nlleplcez2yndq2ry8h9ncg3qh7n54", MAINNET, "a Bitcoin testnet address"),
        ("bcrt1qdavt4j2sd7dlhqsavtnfxvzppw6k7qy97tmnu9", MAINNET, "a Bitcoin regtest address"),
        ("bcrt1qdavt4j2sd7dlhqsavtnfxvzppw6k7qy97tmnu9", TESTNET, "a Bitcoin regtest address"),
        ("tb1qcrh3yqn4nlleplcez2yndq2ry8h9ncg3qh7n54", REGTEST, "a Bitcoin testnet address"),
        ("bc1qvyq0cc6rahyvsazfdje0twl7ez82ndmuac2lhv", REGTEST, "a Bitcoin mainnet address"),
        ("mzK2FFDEhxqHcmrJw1ysqFkVyhUULo45hZ", MAINNET, "a Bitcoin testnet or regtest address"),
        ("1FsSia9rv4NeEwvJ2GvXrX7LyxYspbN2mo", TESTNET, "a Bitcoin mainnet address"),
        ("3BZECeAH8gSKkjrTx8PwMrNQBLG18yHpvf", REGTEST, "a Bitcoin mainnet address"),
    ],
)
def test_an_address_of_another_network_is_refused(
    text: str, network: BtcNetwork, says: str
) -> None:
    with pytest.raises(InvalidAddress) as refused:
        parse_btc_address(text, network)
    assert refused.value.problem is AddressProblem.WRONG_NETWORK
    assert says in refused.value.detail
    assert f"not a valid {network.label} address" in refused.value.detail


def test_regtest_reads_testnet_base58_versions() -> None:
    # Core's regtest shares testnet's 0x6f/0xc4, so an m… address is valid on both.
    text = "mzK2FFDEhxqHcmrJw1ysqFkVyhUULo45hZ"
    assert parse_btc_address(text, REGTEST).kind is BtcAddressKind.P2PKH
    assert parse_btc_address(text, TESTNET).kind is BtcAddressKind.P2PKH


@pytest.mark.parametrize(
    ("text", "chain_name"),
    [
        ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "an Ethereum address"),
        ("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", "an Ethereum address"),
        ("TUEZSdKsoDHQMeZwihtdoBiN46zxhGWYdH", "a TRON address"),
        ("41c8599111f29c1e1e061265b4af93ea1f274ad78a", "a TRON address"),
    ],
)
def test_an_address_of_another_chain_is_refused(text: str, chain_name: str) -> None:
    with pytest.raises(InvalidAddress) as refused:
        parse_btc_address(text, MAINNET)
    assert refused.value.problem is AddressProblem.WRONG_CHAIN
    assert chain_name in refused.value.detail


# --------------------------------------------------------------------- text-level refusals


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", AddressProblem.EMPTY),
        (" bc1qvyq0cc6rahyvsazfdje0twl7ez82ndmuac2lhv", AddressProblem.WHITESPACE),
        ("bc1qvyq0cc6rahyvsazfdje0twl7ez82ndmuac2lhv\n", AddressProblem.WHITESPACE),
        ("bc1qvyq0cc6rahyvsazf dje0twl7ez82ndmuac2lhv", AddressProblem.WHITESPACE),
        ("bc1qvyq0cc6rahyvsazfdje0twl7ez82ndmuac2lhv\u200b", AddressProblem.BAD_CHARACTER),
        ("bc1" + "q" * 120, AddressProblem.TOO_LONG),
        ("1FsSia9rv4NeEwvJ2GvXrX7LyxYspbN2mp", AddressProblem.BAD_CHECKSUM),
        ("1FsSia9rv4NeEwvJ2GvXrX7LyxYspbN2", AddressProblem.BAD_CHECKSUM),
        ("abc", AddressProblem.BAD_LENGTH),
        ("hello", AddressProblem.BAD_FORMAT),  # 'l' is not in Base58
        ("not-an-address", AddressProblem.BAD_FORMAT),
        (_bech32.segwit_encode("ltc", 0, bytes(20)), AddressProblem.UNKNOWN_PREFIX),
    ],
)
def test_refusals_name_the_problem(text: str, problem: AddressProblem) -> None:
    with pytest.raises(InvalidAddress) as refused:
        parse_btc_address(text, MAINNET)
    assert refused.value.problem is problem
    assert refused.value.detail


def test_a_too_long_text_is_not_echoed() -> None:
    with pytest.raises(InvalidAddress) as refused:
        parse_btc_address("x" * 5000, MAINNET)
    assert len(refused.value.detail) < 200


def test_a_private_key_is_refused_without_echoing_it() -> None:
    wif = "L5nJeqKmpHp4P7F8ZYyjwc5a7P4d8EabuGAzfGJk7yC1BJyzNaEd"  # Core key_io_valid (mainnet)
    with pytest.raises(InvalidAddress) as refused:
        parse_btc_address(wif, MAINNET)
    assert refused.value.problem is AddressProblem.NOT_AN_ADDRESS
    assert wif not in refused.value.detail
    assert "private key" in refused.value.detail


def test_non_str_input_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        parse_btc_address(b"bc1q", MAINNET)  # type: ignore[arg-type]


# --------------------------------------------------------------------- from keys and scripts


def test_bip173_example_p2wpkh_for_the_generator_public_key() -> None:
    # BIP173 "Examples": the compressed generator point G.
    public_key = bytes.fromhex("0279BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798")
    assert p2wpkh_address_for_public_key(public_key, MAINNET).text == (
        "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
    )
    assert p2wpkh_address_for_public_key(public_key, TESTNET).text == (
        "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"
    )


def test_uncompressed_keys_never_get_a_segwit_address() -> None:
    with pytest.raises(ValueError, match="compressed"):
        p2wpkh_address_for_public_key(b"\x04" + bytes(64), MAINNET)


@pytest.mark.parametrize(
    "script_hex",
    [
        "6a0b68656c6c6f20776f726c64",  # OP_RETURN
        "5210751e76e8199196d454941c45d1b3a323",  # witness v2
        "",
    ],
)
def test_scripts_without_a_supported_address(script_hex: str) -> None:
    assert btc_address_for_script(bytes.fromhex(script_hex), MAINNET) is None
