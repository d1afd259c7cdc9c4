"""Deposit-address derivers over the watch-only account keys of `kassa.chains.hd`."""

from __future__ import annotations

import hashlib

from kassa.chains.hd import AccountKey
from kassa.chains.network import Chain


class HdDeriver:
    """Addresses m/…/0/i of one account public key; `key_id` fingerprints the key, so addresses
    derived from an old key stay recognisable if the configured key ever changes."""

    def __init__(self, key: AccountKey) -> None:
        self._key = key
        self._chain = key.network.chain
        self._key_id = hashlib.sha256(key.text.encode()).hexdigest()[:16]

    @property
    def chain(self) -> Chain:
        return self._chain

    @property
    def key_id(self) -> str:
        return self._key_id

    def address_at(self, index: int) -> str:
        return str(self._key.address(index))
