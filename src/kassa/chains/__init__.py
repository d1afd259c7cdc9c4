"""Chain adapters: per-blockchain clients for watching deposits and broadcasting transfers.

The primitives below do no I/O and import only `kassa.errors` from Kassa:

* `network` — `Chain`, `BtcNetwork`, `EthNetwork` (chain id), `TronNetwork`.
* `address` and `btc/eth/tron.address` — parse and normalise addresses; every refusal is an
  `errors.InvalidAddress` with a stable ``code`` and a ``problem`` saying why.
* `hd` — watch-only deposit addresses from an account public key (`errors.InvalidExtendedKey`).
  Development-only keys from a mnemonic live in kassa-dev (`kassa_dev.devkeys`).
* `btc.tx`, `btc.keys` — P2WPKH transaction builder and signer, WIF keys.
* `eth.tx`, `tron.tx` — signed ETH/ERC-20 and TRX/TRC-20 transfers.

Modules are imported one by one (``from kassa.chains.hd import …``) so a process loads only the
chain libraries it uses.
"""
