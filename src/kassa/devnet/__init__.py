"""Local chains for development, tests and the demo: ganache, bcoin regtest, the TRON simulator."""
