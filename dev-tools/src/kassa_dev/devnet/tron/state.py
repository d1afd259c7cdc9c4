"""World state: TRX accounts with their free bandwidth, and the USDT contract's storage.

A `WorldState` is a plain value that the chain copies once per block, so the state after every
block still open to a rollback (those above the solidified height) stays at hand without any
undo log. Accounts are small and a devnet holds few of them, so the copies are cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass
class Account:
    address: bytes
    balance: int
    """Sun."""
    create_time: int
    """Milliseconds since the epoch (the block time of the transfer that created it)."""
    is_contract: bool = False
    free_net_used: int = 0
    """Free bandwidth bytes used, as measured at `free_net_time`."""
    free_net_time: int = 0
    """Milliseconds: when free bandwidth was last consumed."""
    latest_operation_time: int = 0
    """Milliseconds: block time of the last transaction this account sent."""

    def free_net_used_at(self, now: int, window: int) -> int:
        """Free bandwidth still counted as used at `now`: usage recovers linearly over the
        window (java-tron's 24-hour recovery), rounded up so it is never under-counted."""
        elapsed = now - self.free_net_time
        if elapsed >= window:
            return 0
        if elapsed <= 0:
            return self.free_net_used
        return -(-self.free_net_used * (window - elapsed) // window)


@dataclass
class WorldState:
    accounts: dict[bytes, Account] = field(default_factory=dict)
    usdt_balances: dict[bytes, int] = field(default_factory=dict)
    """USDT minor units per holder; holders whose balance fell to zero stay with 0."""
    usdt_total_supply: int = 0

    def copy(self) -> WorldState:
        return WorldState(
            accounts={key: replace(account) for key, account in self.accounts.items()},
            usdt_balances=dict(self.usdt_balances),
            usdt_total_supply=self.usdt_total_supply,
        )

    def balance(self, address: bytes) -> int:
        account = self.accounts.get(address)
        return account.balance if account else 0

    def usdt_balance(self, address: bytes) -> int:
        return self.usdt_balances.get(address, 0)
