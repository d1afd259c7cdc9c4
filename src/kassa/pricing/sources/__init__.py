"""HTTP rate sources, one module per exchange or aggregator, and the static source."""
