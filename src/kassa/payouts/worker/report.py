"""What one round did (for logs, the CLI and tests)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field


@dataclass
class RoundReport:
    """What one round did, filled in by each stage as it goes."""

    signed: list[uuid.UUID] = field(default_factory=list)
    broadcast: list[str] = field(default_factory=list)
    confirmed: list[uuid.UUID] = field(default_factory=list)
    failed: list[uuid.UUID] = field(default_factory=list)
    waiting: dict[uuid.UUID, str] = field(default_factory=dict)
    resigned: list[uuid.UUID] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """Unexpected errors of single transactions or batches (logged; the others went on)."""

    @property
    def idle(self) -> bool:
        return not (
            self.signed
            or self.broadcast
            or self.confirmed
            or self.failed
            or self.resigned
            or self.replaced
        )
