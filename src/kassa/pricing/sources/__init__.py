"""HTTP rate sources, one module per exchange or aggregator, and the static source.

`SOURCE_NAMES` is here, not only in `registry`, so that validating the settings (which every
`kassa` command does) does not import httpx and every source module; `registry` builds the
sources by these names and a test holds the two together.
"""

SOURCE_NAMES: tuple[str, ...] = ("coinbase", "kraken", "bitstamp", "binance", "coingecko")
"""Every HTTP source name the configuration may use, in a stable order."""
