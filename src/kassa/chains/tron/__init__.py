"""TRON primitives: addresses (`address`) and TRX/TRC-20 transfers (`tx`)."""
