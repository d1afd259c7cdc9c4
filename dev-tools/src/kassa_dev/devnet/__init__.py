"""Local chains for development, tests and the demo: ganache, bcoin regtest, the TRON simulator.

Modules, bottom up:
* `tools`      the npm chain tools in `tools/chains` (`ensure_chain_tools()` runs `npm ci`)
* `processes`  start/stop/status of node processes by pid, pid files and logs, readiness probes
* `rpc`        a minimal JSON-RPC call for bootstrap, probes and the faucet
* `ganache`    the Ethereum node and TestUSDT (deploy, EIP-1559 sends)
* `bitcoin`    bcoin regtest through `tools/chains/bcoin-regtest.js`, the faucet key, mining;
  `miner` is the block-every-N-seconds process of `kassa devnet`
* `tron_node`  runs the TRON simulator (the `tron` package, a java-tron HTTP API stand-in)
* `faucet`     pays any asset with a real signed transaction
* `stack`      the three chains under `<data_dir>/devnet/` (up/status/down), `cli` its commands
* `testing`    nodes on free ports for pytest fixtures
"""
