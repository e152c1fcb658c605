"""The SSRF guard for outbound webhook requests: only http(s) to public addresses.

A URL's host is resolved and every address it resolves to must be global (no loopback, private,
link-local — which holds the cloud metadata address 169.254.169.254 —, shared, multicast, reserved
or unspecified address, IPv4-mapped ones included). The request is then sent to the address that
was checked (the Host header and TLS name stay the host's), so a DNS answer that changes between
the check and the connection cannot point it elsewhere; each redirect is checked the same way.
`allow_private` turns the address rule off; `networks` (the operator's `allow_networks`) lets
chosen non-public networks through, e.g. an internal receiver's.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from gpucloud.errors import InvalidRequest

Resolver = Callable[[str, int], Awaitable[list[str]]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class UnsafeTarget(InvalidRequest):
    """The URL may not be called (not http(s), or it leads to a non-public address)."""


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL: where to connect (`address`) and what the server is to be told (`host`)."""

    url: str
    scheme: str
    host: str
    port: int
    address: str


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def allowed(address: IPAddress, networks: Sequence[Network] = ()) -> bool:
    """A public address, or one in a network the operator allowed."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address.version == net.version and address in net for net in networks):
        return True
    return address.is_global and not address.is_multicast


async def check_url(
    url: str,
    *,
    allow_private: bool,
    networks: Sequence[Network] = (),
    resolver: Resolver = system_resolver,
) -> Target:
    """The target `url` leads to, or UnsafeTarget (a 400 naming `url`) saying why not."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeTarget("url must be an http or https URL with a host.", param="url")
    if parts.username or parts.password:
        raise UnsafeTarget("url must not carry credentials.", param="url")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeTarget("url has an invalid port.", param="url") from None
    host = parts.hostname
    addresses = await _addresses(host, port, resolver)
    if not allow_private:
        for address in addresses:
            if not allowed(ipaddress.ip_address(address.split("%", 1)[0]), networks):
                raise UnsafeTarget(
                    "url leads to a loopback, private, link-local or otherwise non-public address.",
                    param="url",
                    code="unsafe_url",
                )
    return Target(url, parts.scheme, host, port, addresses[0])


async def _addresses(host: str, port: int, resolver: Resolver) -> list[str]:
    """A literal address as it is (never resolved), else what the resolver answers (never empty)."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        addresses = await resolver(host, port)
    except OSError:
        addresses = []
    if not addresses:
        raise UnsafeTarget(f"The host {host!r} of url does not resolve.", param="url")
    return addresses
