"""Deliveries reach only where they may: HTTPS, public resolved addresses, no redirects, capped
answers — unless the settings allow a host or a range. Refusals happen before any connection
(the receivers record nothing); the private address below is only ever resolved, never
contacted."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

import pytest

from kassa.webhooks.errors import InvalidWebhookEndpoint
from kassa.webhooks.settings import WebhookSettings
from kassa.webhooks.transport import AddressPolicy, IpAddress, SafeTransport

if TYPE_CHECKING:
    from tests.webhook_receiver import Receiver

STRICT = WebhookSettings()
BODY = b'{"id":"evt_1"}'
HEADERS = {"webhook-id": "evt_1", "content-type": "application/json"}


def transport(settings: WebhookSettings = STRICT, **names: str) -> SafeTransport:
    """The transport with a resolver that knows only `names` (host → address)."""

    def resolve(host: str, _port: int) -> list[IpAddress]:
        if host not in names:
            raise OSError(f"unknown host {host}")
        return [ipaddress.ip_address(names[host])]

    return SafeTransport(settings, resolver=resolve)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:{port}/hook", "loopback"),
        ("https://127.0.0.1:{port}/hook", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://[::1]:{port}/hook", "loopback"),
        ("https://[::ffff:127.0.0.1]:{port}/hook", "mapped into IPv6"),
        ("https://10.0.0.1/hook", "private"),
        ("https://0.0.0.0:{port}/hook", "unspecified"),
        ("http://example.com/hook", "must be https://"),
        ("https://user:pw@example.com/hook", "user name"),
        ("ftp://example.com/hook", "must start with https://"),
    ],
)
def test_endpoints_that_name_forbidden_places_are_refused(
    receiver: Receiver, url: str, why: str
) -> None:
    target = url.format(port=receiver.port)
    with pytest.raises(InvalidWebhookEndpoint, match=why):
        AddressPolicy.of(STRICT).check_url(target)
    answer = transport().post(target, HEADERS, BODY)
    assert answer.status_code is None and answer.error is not None
    assert answer.error.startswith("refused:") and why in answer.error
    assert receiver.received == []


def test_a_name_resolving_to_a_private_address_is_refused_on_delivery() -> None:
    AddressPolicy.of(STRICT).check_url("https://internal.example/hook")  # a name: fine now
    answer = transport(STRICT, **{"internal.example": "10.0.0.1"}).post(
        "https://internal.example/hook", HEADERS, BODY
    )
    assert answer.error == (
        "refused: internal.example resolves to 10.0.0.1: 10.0.0.1 is a private address; refused"
    )
    metadata = transport(STRICT, **{"meta.example": "169.254.169.254"}).post(
        "https://meta.example/", HEADERS, BODY
    )
    assert metadata.error is not None and "link-local" in metadata.error


def test_loopback_is_reached_when_the_settings_allow_it(receiver: Receiver) -> None:
    answer = transport(STRICT.with_loopback()).post(receiver.url(), HEADERS, BODY)
    assert (answer.status_code, answer.error, answer.address) == (200, None, "127.0.0.1")
    [got] = receiver.received
    assert got.body == BODY and got.headers["webhook-id"] == "evt_1"


def test_the_connection_goes_to_the_checked_address_under_the_name(receiver: Receiver) -> None:
    """The name is resolved once, by us; the request goes to that address with the name as
    Host (a second lookup that answered differently would never be used)."""
    allowed = WebhookSettings(allowed_hosts=("hooks.test",))
    answer = transport(allowed, **{"hooks.test": "127.0.0.1"}).post(
        f"http://hooks.test:{receiver.port}/hook", HEADERS, BODY
    )
    assert answer.status_code == 200, answer.error
    [got] = receiver.received
    assert got.headers["host"] == f"hooks.test:{receiver.port}"


def test_a_redirect_to_loopback_is_not_followed(receiver: Receiver) -> None:
    inner = type(receiver)()
    try:
        receiver.script("/hook", then=302, headers={"location": inner.url("/metadata")})
        allowed = WebhookSettings(allowed_hosts=("localhost",))
        answer = transport(allowed, localhost="127.0.0.1").post(
            f"http://localhost:{receiver.port}/hook", HEADERS, BODY
        )
        assert answer.status_code == 302 and not answer.succeeded
        assert len(receiver.received) == 1
        assert inner.received == []
    finally:
        inner.close()


def test_answers_are_read_only_up_to_the_cap(receiver: Receiver) -> None:
    receiver.script("/hook", then=200, body=b"x" * 300_000)
    settings = WebhookSettings(max_response_bytes=1000).with_loopback()
    answer = transport(settings).post(receiver.url(), HEADERS, BODY)
    assert answer.status_code == 200 and len(answer.body) == 1000


def test_an_unreachable_endpoint_is_a_failed_attempt_not_an_error(receiver: Receiver) -> None:
    receiver.down()
    answer = transport(STRICT.with_loopback()).post(receiver.url(), HEADERS, BODY)
    assert answer.status_code is None and "ConnectError" in (answer.error or "")
    missing = transport().post("https://nowhere.invalid/", HEADERS, BODY)
    assert missing.error is not None and "does not resolve" in missing.error
    receiver.up()
