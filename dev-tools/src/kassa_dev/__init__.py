"""kassa-dev: Kassa's development tools, a distribution separate from the product.

* `devnet`    the local chains (ganache, bcoin regtest, the TRON simulator `devnet.tron`), the
  faucet, the miner, the payout hot wallets, pytest node fixtures (`devnet.testing`)
* `bench`     the benchmarks (`kassa bench ledger|watchers|payouts`)
* `devkeys`   development-only keys from a BIP39 mnemonic
* `scenario`  the devnet's scenario clock (a `kassa.clock.MovableClock`)
* `cli`       the `kassa` CLI plugin: the ``kassa.cli`` entry points (`devnet`, `bench`)

kassa-dev imports kassa; kassa never imports kassa_dev (import-linter contract).
"""
