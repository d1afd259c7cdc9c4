"""Chain adapters: per-blockchain clients for watching deposits and broadcasting transfers."""
