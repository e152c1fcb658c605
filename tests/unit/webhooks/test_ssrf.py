"""The SSRF guard on its own, with an injected resolver: nothing here connects anywhere."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable

import pytest

from gpucloud.webhooks.ssrf import UnsafeTarget, check_url


def resolver_to(*addresses: str) -> Callable[[str, int], Awaitable[list[str]]]:
    async def resolve(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolve


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.5.6.7",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # the cloud metadata service
        "100.64.0.1",  # shared address space (carrier NAT)
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fd00:ec2::254",  # AWS's IPv6 metadata service
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "::ffff:169.254.169.254",
    ],
)
async def test_non_public_addresses_are_refused_after_resolution(address: str) -> None:
    with pytest.raises(UnsafeTarget) as refused:
        await check_url("https://hooks.example.com/in", allow_private=False, resolver=resolver_to(address))
    assert refused.value.param == "url"


async def test_one_bad_address_among_good_ones_is_refused() -> None:
    with pytest.raises(UnsafeTarget):
        await check_url(
            "https://hooks.example.com/",
            allow_private=False,
            resolver=resolver_to("93.184.216.34", "10.0.0.1"),
        )


async def test_literal_addresses_are_checked_without_resolving() -> None:
    async def never(host: str, port: int) -> list[str]:
        raise AssertionError("a literal address must not be resolved")

    for url in ("http://127.0.0.1:8080/x", "http://[::1]/", "http://169.254.169.254/latest/meta-data/"):
        with pytest.raises(UnsafeTarget):
            await check_url(url, allow_private=False, resolver=never)


async def test_public_target_is_pinned_to_the_checked_address() -> None:
    target = await check_url(
        "https://hooks.example.com:8443/in?x=1", allow_private=False, resolver=resolver_to("93.184.216.34")
    )
    assert (target.host, target.port, target.address) == ("hooks.example.com", 8443, "93.184.216.34")


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "file:///etc/passwd", "http://user:pw@example.com/", "http:///nohost"]
)
async def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(UnsafeTarget):
        await check_url(url, allow_private=True, resolver=resolver_to("93.184.216.34"))


async def test_unresolvable_host_is_refused() -> None:
    async def fail(host: str, port: int) -> list[str]:
        raise OSError("no such host")

    with pytest.raises(UnsafeTarget):
        await check_url("https://nowhere.invalid/", allow_private=False, resolver=fail)


async def test_allow_private_and_allowed_networks() -> None:
    loopback = resolver_to("127.0.0.1")
    assert (
        await check_url("http://hooks.local/", allow_private=True, resolver=loopback)
    ).address == "127.0.0.1"
    net = [ipaddress.ip_network("10.20.0.0/16")]
    inside = await check_url(
        "http://a/", allow_private=False, networks=net, resolver=resolver_to("10.20.3.4")
    )
    assert inside.address == "10.20.3.4"
    with pytest.raises(UnsafeTarget):
        await check_url("http://a/", allow_private=False, networks=net, resolver=resolver_to("10.21.0.1"))
