"""Ethereum primitives: addresses (`address`) and EIP-1559 transfers (`tx`)."""
