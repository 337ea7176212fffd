"""The SSRF guard: which webhook URLs and addresses are refused, and why it says so."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from common.webhooks.targets import (
    RefusedTarget,
    WebhookTarget,
    check_target,
    parse_target,
    refusal_reason,
    resolve_target,
    system_resolver,
)
from tests.support.webhook_receiver import FakeDNS


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.255.0.9", "a loopback address"),
        ("10.0.0.1", "a private address (RFC 1918)"),
        ("172.16.5.4", "a private address (RFC 1918)"),
        ("172.31.255.255", "a private address (RFC 1918)"),
        ("192.168.1.1", "a private address (RFC 1918)"),
        ("169.254.169.254", "a cloud metadata address"),
        ("169.254.170.2", "a cloud metadata address"),
        ("100.100.100.200", "a cloud metadata address"),
        ("169.254.1.1", "a link-local address"),
        ("100.64.0.1", "a carrier-grade NAT address (RFC 6598)"),
        ("100.127.255.254", "a carrier-grade NAT address (RFC 6598)"),
        ("0.0.0.0", "an unspecified ('this network') address"),
        ("0.1.2.3", "an unspecified ('this network') address"),
        ("224.0.0.1", "a multicast address"),
        ("239.255.255.250", "a multicast address"),
        ("240.0.0.1", "a reserved address"),
        ("255.255.255.255", "a reserved address"),
        ("192.0.2.10", "a documentation address"),
        ("198.18.0.1", "a benchmarking address"),
        ("192.0.0.8", "an IETF protocol assignment"),
        ("::1", "a loopback address"),
        ("::", "the unspecified address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("fd12:3456:789a::1", "a unique local address (ULA)"),
        ("fc00::1", "a unique local address (ULA)"),
        ("fe80::1", "a link-local address"),
        ("fe80::1%eth0", "a link-local address"),
        ("febf::1", "a link-local address"),
        ("fec0::1", "a deprecated site-local address"),
        ("ff02::1", "a multicast address"),
        ("2001:db8::1", "a documentation address"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "a Teredo address"),
        ("100::1", "a discard-only address"),
        ("2001:2::1", "not a public address"),  # benchmarking: IANA's registry, via is_global
        ("::7f00:1", "a deprecated IPv4-compatible address"),
        ("64:ff9b:1::a00:1", "a local-use NAT64 address"),
        ("::ffff:0:7f00:1", "an IPv4-translated address"),
        # IPv4-mapped, NAT64 and 6to4 forms carry an IPv4 address; it is what gets checked.
        ("::ffff:127.0.0.1", "a loopback address, inside an IPv6 address"),
        ("::ffff:7f00:1", "a loopback address, inside an IPv6 address"),
        ("::ffff:10.0.0.1", "a private address (RFC 1918), inside an IPv6 address"),
        ("::ffff:169.254.169.254", "a cloud metadata address, inside an IPv6 address"),
        ("::ffff:100.64.0.1", "a carrier-grade NAT address (RFC 6598), inside an IPv6 address"),
        ("64:ff9b::a9fe:a9fe", "a cloud metadata address, inside an IPv6 address"),
        ("64:ff9b::10.1.2.3", "a private address (RFC 1918), inside an IPv6 address"),
        ("2002:7f00:1::1", "a loopback address, inside an IPv6 address"),
        ("2002:c0a8:101::1", "a private address (RFC 1918), inside an IPv6 address"),
    ],
)
def test_non_public_addresses_are_refused_with_their_reason(address: str, reason: str) -> None:
    parsed = ipaddress.ip_address(address)
    assert refusal_reason(parsed, allow_insecure=False) == reason
    if not parsed.is_loopback and "127.0.0.1" not in address and "7f00:1" not in address:
        assert refusal_reason(parsed, allow_insecure=True) == reason


@pytest.mark.parametrize(
    "address",
    [
        "93.184.215.14",
        "8.8.8.8",
        "1.1.1.1",
        "2606:4700:4700::1111",
        "2a00:1450:4001:82b::200e",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
    ],
)
def test_public_addresses_pass(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address), allow_insecure=False) is None


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.53", "::1", "::ffff:127.0.0.1"])
def test_allow_insecure_lets_loopback_through_and_nothing_else(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address), allow_insecure=True) is None


# The URL itself


def test_a_url_is_normalised() -> None:
    target = parse_target("HTTPS://Hooks.Example.COM./in/t%C3%A4sks?x=1&y=ä", allow_insecure=False)
    assert target == WebhookTarget(
        url="https://hooks.example.com/in/t%C3%A4sks?x=1&y=%C3%A4",
        scheme="https",
        host="hooks.example.com",
        port=443,
        target="/in/t%C3%A4sks?x=1&y=%C3%A4",
        address=None,
    )
    assert target.host_header == "hooks.example.com"


def test_an_explicit_port_and_an_empty_path() -> None:
    target = parse_target("https://hooks.example.com:8443", allow_insecure=False)
    assert (target.url, target.port, target.target) == (
        "https://hooks.example.com:8443/",
        8443,
        "/",
    )
    assert target.host_header == "hooks.example.com:8443"


def test_an_international_host_name_becomes_its_ascii_form() -> None:
    target = parse_target("https://bücher.example/hook", allow_insecure=False)
    assert target.host == "xn--bcher-kva.example"


def test_a_public_address_in_the_url_is_kept_and_bracketed_when_ipv6() -> None:
    v4 = parse_target("https://93.184.215.14/hook", allow_insecure=False)
    assert v4.address == ipaddress.ip_address("93.184.215.14")
    v6 = parse_target("https://[2606:4700:4700::1111]:8443/hook", allow_insecure=False)
    assert v6.url == "https://[2606:4700:4700::1111]:8443/hook"
    assert v6.host_header == "[2606:4700:4700::1111]:8443"


@pytest.mark.parametrize(
    ("url", "detail"),
    [
        ("http://hooks.example.com/", "only https URLs are accepted, not 'http'"),
        ("ftp://hooks.example.com/", "only https URLs are accepted, not 'ftp'"),
        ("file:///etc/passwd", "only https URLs are accepted"),
        ("hooks.example.com/in", "only https URLs are accepted, not ''"),
        ("https://user:secret@hooks.example.com/", "credentials in the URL (user:password@)"),
        ("https://user@hooks.example.com/", "credentials in the URL"),
        ("https://hooks.example.com\\@127.0.0.1/", "credentials in the URL"),
        ("https://hooks.example.com/#part", "#fragment"),
        ("https://hooks.example.com/ in", "spaces or control characters"),
        ("https://hooks.example.com/\r\nX: y", "spaces or control characters"),
        ("https:///hook", "the URL has no host"),
        ("https://hooks.example.com:0/", "port 0"),
        ("https://hooks.example.com:99999/", "the URL is not valid"),
        ("https://[::1/", "the URL is not valid"),
        ("https://" + "a" * 2050 + ".com/", "longer than 2048 characters"),
        ("https://exa_mple.com/", "exa_mple.com is not a valid host name"),
        ("https://-bad-.example.com/", "is not a valid host name"),
        ("https://%31%32%37.0.0.1/", "is not a valid host name"),
        ("https://%31%32%37.example/", "is not a valid host name"),
        ("https://127.0.0.1/", "127.0.0.1 is a loopback address"),
        ("https://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata"),
        ("https://10.0.0.1/", "10.0.0.1 is a private address (RFC 1918)"),
        ("https://[::1]/", "::1 is a loopback address"),
        ("https://[::ffff:127.0.0.1]/", "a loopback address, inside an IPv6 address"),
        ("https://[fd00:ec2::254]/", "a cloud metadata address"),
        ("https://[fe80::1%25eth0]/", "a link-local address"),
        ("https://0x7f000001/", "0x7f000001 is not an address in standard form"),
        ("https://2130706433/", "2130706433 is not an address in standard form"),
        ("https://0177.0.0.1/", "0177.0.0.1 is not an address in standard form"),
        ("https://127.1/", "127.1 is not an address in standard form"),
        ("https://0x7f.0.0.1/", "is not an address in standard form"),
        ("https://10.0.0.1./", "10.0.0.1 is a private address"),
        (
            "https://\uff11\uff12\uff17.\uff10.\uff10.\uff11/",
            "127.0.0.1 is a loopback address",
        ),  # fullwidth
        (
            "https://\uff10\uff58\uff17\uff46\uff10\uff10\uff10\uff10\uff10\uff11/",
            "0x7f000001 is not an address in standard form",
        ),  # fullwidth
        ("https://1.2.3.256/", "is not an address in standard form"),
        ("https://metadata.google.internal/computeMetadata/v1/", "a cloud metadata service"),
        ("https://METADATA/", "metadata is a cloud metadata service"),
        ("https://vault.service.internal/", "is in a private DNS zone"),
        ("https://printer.local/", "is in a private DNS zone"),
    ],
)
def test_a_refused_url_says_why(url: str, detail: str) -> None:
    with pytest.raises(RefusedTarget) as refused:
        parse_target(url, allow_insecure=False)
    assert detail in refused.value.detail
    assert refused.value.status == 400
    assert refused.value.extra["errors"][0]["field"] == "url"


def test_allow_insecure_accepts_http_and_loopback_but_not_private_or_metadata() -> None:
    assert parse_target("http://127.0.0.1:8080/hook", allow_insecure=True).scheme == "http"
    assert parse_target("http://[::1]:8080/hook", allow_insecure=True).host == "::1"
    for url in ("http://10.0.0.1/", "http://169.254.169.254/", "https://[fd00:ec2::254]/"):
        with pytest.raises(RefusedTarget):
            parse_target(url, allow_insecure=True)
    with pytest.raises(RefusedTarget, match="only https and http URLs are accepted"):
        parse_target("gopher://127.0.0.1/", allow_insecure=True)


# After DNS


async def test_a_host_name_is_refused_if_any_of_its_addresses_is() -> None:
    resolver = FakeDNS({"hooks.example.com": ["93.184.215.14", "10.0.0.7"]})
    target = parse_target("https://hooks.example.com/", allow_insecure=False)
    with pytest.raises(RefusedTarget) as refused:
        await resolve_target(target, allow_insecure=False, resolver=resolver)
    assert "10.0.0.7" not in refused.value.detail  # internal DNS answers stay ours
    assert refused.value.detail == (
        "hooks.example.com resolves to a private address (RFC 1918); "
        "webhooks go to public addresses only"
    )


async def test_every_address_of_a_public_name_is_returned_in_order_mapped_ones_as_ipv4() -> None:
    resolver = FakeDNS({"hooks.example.com": ["2606:4700::6810:84e5", "::ffff:93.184.215.14"]})
    target = parse_target("https://hooks.example.com/", allow_insecure=False)
    addresses = await resolve_target(target, allow_insecure=False, resolver=resolver)
    assert addresses == [
        ipaddress.ip_address("2606:4700::6810:84e5"),
        ipaddress.ip_address("93.184.215.14"),
    ]


async def test_a_mapped_address_in_the_url_is_connected_to_as_ipv4() -> None:
    target = parse_target("https://[::ffff:93.184.215.14]/", allow_insecure=False)
    assert await resolve_target(target, allow_insecure=False) == [
        ipaddress.ip_address("93.184.215.14")
    ]


async def test_an_address_in_the_url_is_not_looked_up() -> None:
    resolver = FakeDNS({"93.184.215.14": ["10.0.0.1"]})
    target = parse_target("https://93.184.215.14/", allow_insecure=False)
    assert await resolve_target(target, allow_insecure=False, resolver=resolver) == [
        ipaddress.ip_address("93.184.215.14")
    ]
    assert resolver.lookups == []


async def test_no_answer_is_a_dns_failure_for_the_caller() -> None:
    target = parse_target("https://hooks.example.com/", allow_insecure=False)
    with pytest.raises(socket.gaierror, match="has no addresses"):
        await resolve_target(
            target, allow_insecure=False, resolver=FakeDNS({"hooks.example.com": []})
        )


async def test_localhost_is_refused_because_of_what_it_resolves_to() -> None:
    # The real system resolver: localhost is 127.0.0.1 (and ::1) on every machine.
    with pytest.raises(RefusedTarget, match=r"localhost resolves to .*a loopback address"):
        await check_target("https://localhost/hook", allow_insecure=False)
    allowed = await check_target("http://localhost:8080/hook", allow_insecure=True)
    assert allowed.host_header == "localhost:8080"


async def test_the_system_resolver_gives_each_address_once() -> None:
    addresses = await system_resolver("localhost", 443)
    assert "127.0.0.1" in addresses
    assert len(addresses) == len(set(addresses))


async def test_creation_refuses_a_name_that_does_not_resolve() -> None:
    resolver = FakeDNS({})
    with pytest.raises(RefusedTarget, match=r"nowhere\.example could not be resolved"):
        await check_target("https://nowhere.example/", allow_insecure=False, resolver=resolver)


async def test_creation_accepts_a_public_name() -> None:
    resolver = FakeDNS({"hooks.example.com": ["93.184.215.14"]})
    target = await check_target(
        "https://hooks.example.com/in", allow_insecure=False, resolver=resolver
    )
    assert target.url == "https://hooks.example.com/in"
    assert resolver.lookups == ["hooks.example.com"]
