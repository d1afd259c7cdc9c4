"""The only way a delivery reaches the network: HTTPS, public addresses, no redirects.

Server-side request forgery is what a webhook sender invites: a customer names a URL and Kassa
connects to it from inside the operator's network. So, for every attempt:

1. the URL must be ``https://`` (``http://`` only for a host in ``allowed_hosts`` or an
   address in ``allowed_networks``), carry no user name or password, and name a host;
2. the host is resolved here, once; every address it resolves to must be public (not private,
   loopback, link-local — the cloud metadata service lives there — multicast, reserved,
   shared, unspecified, or an IPv4 address mapped into IPv6), unless the host is in
   ``allowed_hosts`` or the address in ``allowed_networks``;
3. the connection goes to the address checked in step 2 — the URL's host is replaced by it, the
   ``Host`` header and the TLS server name (SNI, and so the certificate check) stay the name —
   so a DNS answer that changes between the check and the connect (DNS rebinding) cannot
   redirect the request;
4. redirects are not followed (a ``3xx`` is a failed attempt), proxies from the environment
   are ignored, the answer is read up to ``max_response_bytes``, and the attempt has a connect
   timeout and a total deadline.

Connections are pooled per (scheme, name, address, port), never per address alone, so a TLS
connection made for one name never carries a request for another.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx

from kassa.webhooks.errors import InvalidWebhookEndpoint
from kassa.webhooks.settings import WebhookSettings

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[IpAddress]]
"""Host and port to the addresses a connection may use (the system's DNS by default)."""

MAX_URL_LENGTH = 2000


def system_resolver(host: str, port: int) -> list[IpAddress]:
    found: list[IpAddress] = []
    for _family, _type, _proto, _name, sockaddr in socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM
    ):
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


class Refused(Exception):
    """This attempt may not connect where the URL leads; the reason is in words."""


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str
    """Lower case, without brackets or a trailing dot."""
    port: int
    parts: SplitResult

    @property
    def literal(self) -> IpAddress | None:
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    allowed_hosts: frozenset[str]
    allowed_networks: tuple[IpNetwork, ...]

    @classmethod
    def of(cls, settings: WebhookSettings) -> AddressPolicy:
        return cls(
            frozenset(settings.allowed_hosts),
            tuple(ipaddress.ip_network(n, strict=False) for n in settings.allowed_networks),
        )

    def in_allowed_network(self, address: IpAddress) -> bool:
        return any(address.version == n.version and address in n for n in self.allowed_networks)

    def refusal(self, address: IpAddress) -> str | None:
        """Why `address` may not be connected to, or None."""
        if self.in_allowed_network(address):
            return None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            return f"{address} is an IPv4 address mapped into IPv6"
        for flag, words in (
            ("is_loopback", "a loopback"),
            ("is_unspecified", "an unspecified"),
            ("is_link_local", "a link-local (cloud metadata)"),
            ("is_private", "a private"),
            ("is_multicast", "a multicast"),
            ("is_reserved", "a reserved"),
        ):
            if getattr(address, flag):
                return f"{address} is {words} address"
        if not address.is_global:
            return f"{address} is not a public address"
        return None

    def check_url(self, url: str) -> Target:
        """`url` as a target, or `InvalidWebhookEndpoint` with the reason (no DNS lookup: a
        name is checked again on every attempt, on the addresses it resolves to then)."""
        if len(url) > MAX_URL_LENGTH:
            raise InvalidWebhookEndpoint(f"the URL is longer than {MAX_URL_LENGTH} characters")
        if any(ord(c) <= 32 or ord(c) == 127 for c in url):
            raise InvalidWebhookEndpoint("the URL may not contain spaces or control characters")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as error:
            raise InvalidWebhookEndpoint(f"not a URL: {error}") from None
        scheme = parts.scheme.lower()
        if scheme not in ("https", "http"):
            raise InvalidWebhookEndpoint("the URL must start with https://")
        if parts.username is not None or parts.password is not None:
            raise InvalidWebhookEndpoint("the URL may not carry a user name or password")
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise InvalidWebhookEndpoint("the URL names no host")
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidWebhookEndpoint(f"{host!r} is not a valid host name") from None
        if parts.fragment:
            raise InvalidWebhookEndpoint("the URL may not have a #fragment")
        target = Target(scheme, host, port or (443 if scheme == "https" else 80), parts)
        literal = target.literal
        if host in self.allowed_hosts:
            return target
        if literal is not None:
            reason = self.refusal(literal)
            if reason is not None:
                raise InvalidWebhookEndpoint(f"deliveries may not go there: {reason}")
        loopback_name = host == "localhost" and self.in_allowed_network(
            ipaddress.ip_address("127.0.0.1")
        )
        literal_allowed = literal is not None and self.in_allowed_network(literal)
        if scheme == "http" and not (literal_allowed or loopback_name):
            raise InvalidWebhookEndpoint(
                f"the URL must be https:// ({host} is not among the hosts allowed plain "
                "HTTP in [webhooks] allowed_hosts)"
            )
        return target

    def addresses(self, target: Target, resolver: Resolver) -> list[IpAddress]:
        """The addresses `target` may be connected to now: every one it resolves to, each
        checked, or `Refused`."""
        literal = target.literal
        try:
            found = [literal] if literal is not None else resolver(target.host, target.port)
        except OSError as error:
            raise Refused(f"{target.host} does not resolve: {error}") from None
        if not found:
            raise Refused(f"{target.host} resolves to no address")
        exempt = target.host in self.allowed_hosts
        for address in found:
            reason = None if exempt else self.refusal(address)
            if reason is not None:
                raise Refused(f"{target.host} resolves to {address}: {reason}; refused")
            if target.scheme == "http" and not exempt and not self.in_allowed_network(address):
                raise Refused(f"plain HTTP to {target.host} ({address}) is not allowed")
        return found


@dataclass(frozen=True, slots=True)
class Answer:
    """What one attempt got: an HTTP status, or an error saying why not."""

    status_code: int | None
    body: bytes
    error: str | None
    latency_ms: int
    address: str | None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class SafeTransport:
    """POSTs to endpoints under an `AddressPolicy`; thread-safe, one per sender."""

    def __init__(self, settings: WebhookSettings, *, resolver: Resolver = system_resolver) -> None:
        self.policy = AddressPolicy.of(settings)
        self.resolver = resolver
        self.settings = settings
        self._clients: dict[tuple[str, str, str, int], httpx.Client] = {}
        self._lock = threading.Lock()

    def post(self, url: str, headers: Mapping[str, str], body: bytes) -> Answer:
        started = time.monotonic()
        address: IpAddress | None = None
        try:
            target = self.policy.check_url(url)
            address = self.policy.addresses(target, self.resolver)[0]
            status, answer = self._post(target, address, headers, body, started)
        except (Refused, InvalidWebhookEndpoint) as error:
            return self._failed(f"refused: {_words(error)}", started, address)
        except httpx.TimeoutException as error:
            return self._failed(f"timed out: {type(error).__name__}", started, address)
        except httpx.HTTPError as error:
            return self._failed(f"{type(error).__name__}: {error}", started, address)
        except Exception as error:
            return self._failed(f"{type(error).__name__}: {error}", started, address)
        return Answer(status, answer, None, _ms(started), str(address))

    def _failed(self, error: str, started: float, address: IpAddress | None) -> Answer:
        return Answer(None, b"", error, _ms(started), None if address is None else str(address))

    def _post(
        self,
        target: Target,
        address: IpAddress,
        headers: Mapping[str, str],
        body: bytes,
        started: float,
    ) -> tuple[int, bytes]:
        deadline = started + self.settings.timeout_seconds
        netloc = f"[{address}]" if address.version == 6 else str(address)
        pinned = urlunsplit(
            (
                target.scheme,
                f"{netloc}:{target.port}",
                target.parts.path or "/",
                target.parts.query,
                "",
            )
        )
        default_port = 443 if target.scheme == "https" else 80
        shown = f"[{target.host}]" if ":" in target.host else target.host
        host_header = shown if target.port == default_port else f"{shown}:{target.port}"
        sent = {**headers, "host": host_header, "user-agent": "Kassa-Webhooks/1"}
        client = self._client(target, address)
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        with client.stream(
            "POST", pinned, content=body, headers=sent, extensions=extensions
        ) as response:
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_raw():
                chunks.append(chunk)
                size += len(chunk)
                if size >= self.settings.max_response_bytes or time.monotonic() > deadline:
                    break
            if time.monotonic() > deadline:
                raise httpx.ReadTimeout("the total deadline passed")
            return response.status_code, b"".join(chunks)[: self.settings.max_response_bytes]

    def _client(self, target: Target, address: IpAddress) -> httpx.Client:
        key = (target.scheme, target.host, str(address), target.port)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                settings = self.settings
                client = httpx.Client(
                    follow_redirects=False,
                    trust_env=False,
                    timeout=httpx.Timeout(
                        settings.timeout_seconds, connect=settings.connect_timeout_seconds
                    ),
                    limits=httpx.Limits(max_connections=settings.concurrency),
                )
                self._clients[key] = client
            return client

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _words(error: Exception) -> str:
    return error.detail if isinstance(error, InvalidWebhookEndpoint) else str(error)
