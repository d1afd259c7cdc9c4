"""`python -m kassa_dev.devnet.miner`: mine a regtest block every N seconds (the devnet's
"network").

Runs as its own process next to bcoin so `kassa devnet up` can return; stopped by pid like the
nodes. The API key comes from the environment (`KASSA_DEVNET_BTC_API_KEY`), not the command line,
so it does not show in `ps`. SIGTERM stops it between blocks.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from types import FrameType

from kassa_dev.devnet.bitcoin import BitcoinRpc, mine_forever

API_KEY_ENV = "KASSA_DEVNET_BTC_API_KEY"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kassa_dev.devnet.miner", description=__doc__)
    parser.add_argument("--url", required=True, help="bcoin HTTP endpoint")
    parser.add_argument("--address", required=True, help="where the coinbases go")
    parser.add_argument("--interval", type=float, required=True, help="seconds between blocks")
    args = parser.parse_args(argv)
    api_key = os.environ.get(API_KEY_ENV)
    if not api_key:
        print(f"{API_KEY_ENV} is not set", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"mining a block every {args.interval:g} s to {args.address} via {args.url}", flush=True)
    mine_forever(BitcoinRpc(args.url, api_key), args.address, args.interval, stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
