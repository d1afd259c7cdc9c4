"""`python -m kassa_dev.devnet.tron`: serve the TRON simulator with uvicorn.

    python -m kassa_dev.devnet.tron --host 127.0.0.1 --port 8090 [--state-file PATH]
        [--block-interval 3] [--solid-lag 19] [--genesis-key HEX]

`--block-interval 0` produces blocks only through `POST /debug/mine`. `kassa devnet` starts the
simulator with this command line and reads `GET /debug/info`; keep both stable.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from kassa_dev.devnet.tron.config import DEFAULT_GENESIS_KEY_HEX, DevnetConfig


def _genesis_key(value: str) -> bytes:
    try:
        key = bytes.fromhex(value.removeprefix("0x"))
    except ValueError as error:
        raise argparse.ArgumentTypeError("the genesis key must be hex") from error
    if len(key) != 32:
        raise argparse.ArgumentTypeError("the genesis key must be 32 bytes (64 hex digits)")
    return key


Number = TypeVar("Number", int, float)


def _not_negative(kind: Callable[[str], Number]) -> Callable[[str], Number]:
    def parse(value: str) -> Number:
        try:
            number = kind(value)
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"not a number: {value!r}") from error
        if number < 0:
            raise argparse.ArgumentTypeError("must not be negative")
        return number

    return parse


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m kassa_dev.devnet.tron",
        description="Kassa's java-tron HTTP API simulator with a built-in TRC-20 USDT.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=_not_negative(int), default=8090)
    parser.add_argument("--state-file", type=Path, default=None, help="persist the chain here")
    parser.add_argument(
        "--block-interval",
        type=_not_negative(float),
        default=3.0,
        help="seconds between blocks; 0 = only on POST /debug/mine",
    )
    parser.add_argument(
        "--solid-lag", type=_not_negative(int), default=19, help="head minus solidified block"
    )
    parser.add_argument(
        "--genesis-key",
        type=_genesis_key,
        default=bytes.fromhex(DEFAULT_GENESIS_KEY_HEX),
        help="private key (hex) of the genesis account that holds the TRX and USDT supply",
    )
    parser.add_argument("--log-level", default="info")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    # Imported after the arguments are checked: a wrong command line fails at once.
    import uvicorn

    from kassa_dev.devnet.tron.api import create_app

    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s %(message)s")
    config = DevnetConfig(
        genesis_key=args.genesis_key,
        block_interval=args.block_interval,
        solid_lag=args.solid_lag,
        state_file=args.state_file,
    )
    uvicorn.run(
        create_app(config),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        ws="none",
        access_log=False,
    )


if __name__ == "__main__":
    main()
