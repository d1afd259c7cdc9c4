"""The optional state file: the chain's blocks and pending transactions as JSON.

Only what cannot be recomputed is stored: each block's timestamp and its signed transactions
(as the exact protobuf bytes that were hashed and signed), the pending pool, the clock offset,
the solidified height and the energy-price changes made at run time (each with the first block
it applies to; a file without them is a chain that never changed its price). Loading replays
the blocks from the deterministic genesis, each at the energy price it was charged at, which
rebuilds balances, receipts and block ids; the stored head id checks that the replay arrived
at the same chain (it would not if the genesis key or the fee schedule had changed).

The file is rewritten after every block, rollback and accepted broadcast. An empty block is
stored as its bare timestamp, so a devnet producing a block every 3 s grows by well under a
megabyte a day. Writes go to a temporary file that is then renamed over the old one, so a crash
leaves either the old or the new state, never a torn file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kassa_dev.devnet.tron.transactions import SignedTransaction, raw_from_bytes

FORMAT = "kassa-tron-devnet/1"


class StateFileError(Exception):
    """The state file is unreadable or belongs to another chain."""


@dataclass(frozen=True)
class StoredBlock:
    timestamp: int
    transactions: tuple[SignedTransaction, ...]


@dataclass(frozen=True)
class StoredChain:
    genesis_address: str
    head_id: str
    clock_offset_ms: int
    last_timestamp: int
    solid_height: int
    blocks: tuple[StoredBlock, ...]
    """Blocks 1..head in order (the genesis block is rebuilt from the configuration); empty
    when saving, as the blocks then come as prepared records."""
    pending: tuple[SignedTransaction, ...]
    energy_prices: tuple[tuple[int, int], ...] = ()
    """(first block, sun per energy unit) of each run-time change of the energy price."""


def _tx_to_json(tx: SignedTransaction) -> list[Any]:
    return [tx.raw_bytes.hex(), [signature.hex() for signature in tx.signatures]]


def _tx_from_json(item: Any) -> SignedTransaction:
    raw_hex, signatures = item
    raw_bytes = bytes.fromhex(raw_hex)
    return SignedTransaction(
        raw=raw_from_bytes(raw_bytes),
        raw_bytes=raw_bytes,
        signatures=tuple(bytes.fromhex(signature) for signature in signatures),
    )


def block_record(block: StoredBlock) -> str:
    """One block's entry in the file, serialized once when the block is made: a long-running
    devnet rewrites the file after every block, and re-encoding every old block each time
    would make that write grow slower by the day."""
    if not block.transactions:
        return str(block.timestamp)
    return json.dumps(
        {"t": block.timestamp, "tx": [_tx_to_json(tx) for tx in block.transactions]},
        separators=(",", ":"),
    )


def save(path: Path, chain: StoredChain, records: Sequence[str]) -> None:
    """Write `chain`, whose blocks are given as their `block_record`s, atomically to `path`."""
    header = json.dumps(
        {
            "format": FORMAT,
            "genesis_address": chain.genesis_address,
            "head_id": chain.head_id,
            "clock_offset_ms": chain.clock_offset_ms,
            "last_timestamp": chain.last_timestamp,
            "solid_height": chain.solid_height,
            "pending": [_tx_to_json(tx) for tx in chain.pending],
            "energy_prices": [list(change) for change in chain.energy_prices],
        },
        separators=(",", ":"),
    )
    text = header[:-1] + ',"blocks":[' + ",".join(records) + "]}"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load(path: Path) -> StoredChain:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("format") != FORMAT:
            raise StateFileError(f"{path}: not a {FORMAT} state file")
        blocks = tuple(
            StoredBlock(timestamp=int(item), transactions=())
            if isinstance(item, int)
            else StoredBlock(
                timestamp=int(item["t"]),
                transactions=tuple(_tx_from_json(tx) for tx in item["tx"]),
            )
            for item in document["blocks"]
        )
        return StoredChain(
            genesis_address=str(document["genesis_address"]),
            head_id=str(document["head_id"]),
            clock_offset_ms=int(document["clock_offset_ms"]),
            last_timestamp=int(document["last_timestamp"]),
            solid_height=int(document["solid_height"]),
            blocks=blocks,
            pending=tuple(_tx_from_json(tx) for tx in document["pending"]),
            energy_prices=tuple(
                (int(first), int(price)) for first, price in document.get("energy_prices", [])
            ),
        )
    except StateFileError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise StateFileError(f"{path}: unreadable state file: {error}") from error
