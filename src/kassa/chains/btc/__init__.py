"""Bitcoin primitives: addresses (`address`) and segwit v0 transactions (`tx`)."""
