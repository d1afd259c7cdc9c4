"""``[webhooks]``: retries, timeouts, secret rotation and which addresses deliveries may reach.

Outside the devnet every endpoint must be ``https://`` and resolve only to public addresses.
``allowed_hosts`` names hosts (or IP literals) exempt from both rules, for a receiver on the
operator's own network; ``allowed_networks`` lists address ranges (CIDR) that may be connected
to, over plain HTTP too. The devnet adds the loopback ranges, so a receiver on this machine
works with no settings at all.
"""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Seconds to wait after the n-th failed attempt (the first attempt is immediate): about
#: 2.8 days from the first attempt to the last.
DEFAULT_RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000, 36000, 36000, 36000, 36000)
LOOPBACK_NETWORKS = ("127.0.0.0/8", "::1/128")


class WebhookSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        default=True, description="Run the delivery loops in `kassa worker` and `kassa up`"
    )
    retry_schedule_seconds: tuple[int, ...] = Field(
        default=DEFAULT_RETRY_SCHEDULE,
        min_length=1,
        description="Wait after each failed attempt; when it runs out the delivery has failed",
    )
    jitter_percent: int = Field(
        default=10, ge=0, le=50, description="Each wait is moved by up to this share, at random"
    )
    disable_after_failing_seconds: int = Field(
        default=5 * 24 * 3600,
        ge=60,
        description="An endpoint failing every attempt for this long is disabled",
    )
    rotation_overlap_seconds: int = Field(
        default=24 * 3600,
        ge=0,
        description="After a rotation, deliveries carry the old secret's signature this long too",
    )
    connect_timeout_seconds: float = Field(default=3.0, gt=0, le=30)
    timeout_seconds: float = Field(
        default=10.0, gt=0, le=60, description="Whole attempt: connect, send, read the answer"
    )
    max_response_bytes: int = Field(
        default=65_536, ge=256, description="More of an answer than this is not read"
    )
    snippet_bytes: int = Field(
        default=1024, ge=0, le=65_536, description="How much of each answer the log keeps"
    )
    allowed_hosts: tuple[str, ...] = Field(
        default=(), description="Hosts exempt from the HTTPS and public-address rules"
    )
    allowed_networks: tuple[str, ...] = Field(
        default=(), description="Address ranges (CIDR) deliveries may connect to, HTTP included"
    )
    lease_seconds: int = Field(
        default=60,
        ge=5,
        description="A claimed delivery returns to the queue after this (longer when its "
        "batch could take longer: batch ÷ concurrency × timeout)",
    )
    batch_size: int = Field(default=100, ge=1, le=1000)
    concurrency: int = Field(default=8, ge=1, le=64, description="Requests in flight per sender")
    poll_interval_seconds: float = Field(default=1.0, gt=0)

    @field_validator("allowed_networks")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            ipaddress.ip_network(item, strict=False)
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(host.strip().lower().rstrip(".") for host in value if host.strip())

    def with_loopback(self) -> WebhookSettings:
        """These settings with the loopback ranges allowed (the devnet's)."""
        extra = [n for n in LOOPBACK_NETWORKS if n not in self.allowed_networks]
        return self.model_copy(update={"allowed_networks": (*self.allowed_networks, *extra)})
