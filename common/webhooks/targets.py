"""Where a webhook may go: the guard against server-side request forgery (SSRF).

A webhook URL is chosen by a user and called from inside our network, so it must not reach
what only we can reach: loopback, private and link-local networks, cloud metadata endpoints.
The guard runs at creation (`check_target`: a 400 naming the reason) and again at every
delivery (`resolve_target`, after DNS), because a host name's addresses can change at any time.
The delivery then connects to an address checked here and never resolves the name again, so a
DNS answer that changes between check and connect (DNS rebinding) cannot redirect it.

Refused: schemes other than https (http too with `allow_insecure`), user:password@ in the URL,
IPv4 spelt other than as four decimal numbers (`0x7f000001`, `2130706433`, `0177.0.0.1`,
`127.1`: browsers and many resolvers read them as addresses, and a check that does not would be
bypassed), names of the cloud metadata services and of private zones (`.internal`, `.local`),
and every address in `refusal_reason`'s table, also inside IPv4-mapped, NAT64 and 6to4 IPv6
forms. A host name is refused if ANY of its addresses is: checking only the one we would
connect to lets a name answer with a public and a private address.

`allow_insecure` (tests and `make run` only; the setting is refused in production) allows http
and loopback. Private, link-local and metadata addresses stay refused with it.

Background: OWASP's SSRF prevention cheat sheet, and the Standard Webhooks specification's
section on SSRF.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, quote, urlsplit

import idna

from common.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> the addresses the host name resolves to, as strings.
Resolver = Callable[[str, int], Awaitable[list[str]]]

MAX_URL_LENGTH = 2048
RESOLVE_TIMEOUT_SECONDS = 5.0
DEFAULT_PORTS = {"https": 443, "http": 80}

METADATA_ADDRESSES = {
    ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack, DigitalOcean, ...
    ipaddress.ip_address("169.254.170.2"),  # AWS ECS task metadata
    ipaddress.ip_address("fd00:ec2::254"),  # AWS IMDS over IPv6
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
}
METADATA_NAMES = {"metadata.google.internal", "metadata.goog", "metadata"}
PRIVATE_ZONES = (".internal", ".local", ".localdomain", ".home.arpa")

_PRIVATE = "a private address (RFC 1918)"
_DOCUMENTATION = "a documentation address"
REFUSED_NETWORKS = tuple(
    (ipaddress.ip_network(network), reason)
    for network, reason in (
        ("0.0.0.0/8", "an unspecified ('this network') address"),
        ("10.0.0.0/8", _PRIVATE),
        ("100.64.0.0/10", "a carrier-grade NAT address (RFC 6598)"),
        ("127.0.0.0/8", "a loopback address"),
        ("169.254.0.0/16", "a link-local address"),
        ("172.16.0.0/12", _PRIVATE),
        ("192.0.0.0/24", "an IETF protocol assignment"),
        ("192.0.2.0/24", _DOCUMENTATION),
        ("192.88.99.0/24", "a 6to4 relay address"),
        ("192.168.0.0/16", _PRIVATE),
        ("198.18.0.0/15", "a benchmarking address"),
        ("198.51.100.0/24", _DOCUMENTATION),
        ("203.0.113.0/24", _DOCUMENTATION),
        ("224.0.0.0/4", "a multicast address"),
        ("240.0.0.0/4", "a reserved address"),
        ("::/128", "the unspecified address"),
        ("::1/128", "a loopback address"),
        ("::/96", "a deprecated IPv4-compatible address"),
        ("::ffff:0:0:0/96", "an IPv4-translated address"),
        ("64:ff9b:1::/48", "a local-use NAT64 address"),
        ("100::/64", "a discard-only address"),
        ("2001::/32", "a Teredo address"),
        ("2001:db8::/32", _DOCUMENTATION),
        ("fc00::/7", "a unique local address (ULA)"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a deprecated site-local address"),
        ("ff00::/8", "a multicast address"),
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# A host whose last label is a number is read as an IPv4 address by the WHATWG URL standard.
_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)")
_UNSAFE_CHARACTERS = re.compile(r"[\x00-\x20\x7f]")
# Percent-encode what is not printable ASCII (a request line is ASCII); keep the rest as given.
_ASCII = "".join(map(chr, range(0x21, 0x7F)))


class RefusedTarget(InvalidInput):
    """A webhook URL that may not be called (400 on field `url`); the detail says why."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, field="url")


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """A parsed, syntactically safe webhook URL. Its addresses are checked separately."""

    url: str  # normalised: scheme://host[:port]/path?query
    scheme: str
    host: str  # ASCII (IDNA), lower case, no brackets, no trailing dot
    port: int
    target: str  # path and query, as they go into the request line
    address: IPAddress | None  # the address when the URL names one instead of a host name

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if isinstance(self.address, ipaddress.IPv6Address) else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def refusal_reason(address: IPAddress, *, allow_insecure: bool) -> str | None:
    """Why a delivery may not connect to `address`, or None if it may."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            reason = refusal_reason(embedded, allow_insecure=allow_insecure)
            return f"{reason}, inside an IPv6 address" if reason else None
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if allow_insecure and address.is_loopback:
        return None
    for network, reason in REFUSED_NETWORKS:
        if address in network:
            return reason
    if not address.is_global:
        return "not a public address"
    return None


def parse_target(url: str, *, allow_insecure: bool) -> WebhookTarget:
    """Check a URL's form and any address it names; no DNS. Raises RefusedTarget."""
    if len(url) > MAX_URL_LENGTH:
        raise RefusedTarget(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if _UNSAFE_CHARACTERS.search(url):
        raise RefusedTarget("the URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise RefusedTarget(f"the URL is not valid: {error}") from None
    scheme = parts.scheme.lower()
    allowed = ("https", "http") if allow_insecure else ("https",)
    if scheme not in allowed:
        raise RefusedTarget(f"only {' and '.join(allowed)} URLs are accepted, not {scheme!r}")
    if "@" in parts.netloc:
        raise RefusedTarget(
            "credentials in the URL (user:password@) are not accepted; "
            "deliveries are authenticated by their signature"
        )
    if parts.fragment:
        raise RefusedTarget("a URL with a #fragment is not accepted: it is never sent")
    if port == 0:
        raise RefusedTarget("port 0 is not a valid port")
    host, address = _host(parts, allow_insecure=allow_insecure)
    port = port or DEFAULT_PORTS[scheme]
    target = quote((parts.path or "/") + (f"?{parts.query}" if parts.query else ""), _ASCII)
    netloc = f"[{host}]" if isinstance(address, ipaddress.IPv6Address) else host
    if port != DEFAULT_PORTS[scheme]:
        netloc += f":{port}"
    return WebhookTarget(f"{scheme}://{netloc}{target}", scheme, host, port, target, address)


def _host(parts: SplitResult, *, allow_insecure: bool) -> tuple[str, IPAddress | None]:
    """The host as we will name it, and its address if the URL gives one (checked here)."""
    host = parts.hostname or ""
    if not host:
        raise RefusedTarget("the URL has no host")
    if parts.netloc.startswith("["):
        return _literal_address(host, allow_insecure=allow_insecure)
    try:
        # UTS 46 maps look-alikes first (fullwidth digits too), so the checks below see the
        # name that would be resolved.
        name = idna.encode(host.removesuffix("."), uts46=True).decode("ascii")
    except idna.IDNAError:
        raise RefusedTarget(f"{host} is not a valid host name") from None
    if _NUMERIC_LABEL.fullmatch(name.rsplit(".", 1)[-1]):
        return _literal_address(name, allow_insecure=allow_insecure)
    if name in METADATA_NAMES:
        raise RefusedTarget(f"{name} is a cloud metadata service")
    if name.endswith(PRIVATE_ZONES):
        raise RefusedTarget(f"{name} is in a private DNS zone")
    return name, None


def _literal_address(host: str, *, allow_insecure: bool) -> tuple[str, IPAddress]:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise RefusedTarget(
            f"{host} is not an address in standard form "
            "(IPv4 as four decimal numbers, IPv6 in brackets)"
        ) from None
    reason = refusal_reason(address, allow_insecure=allow_insecure)
    if reason:
        raise RefusedTarget(f"{address} is {reason}; webhooks go to public addresses only")
    return str(address), address


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host`, in its order of preference."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def resolve_target(
    target: WebhookTarget, *, allow_insecure: bool, resolver: Resolver = system_resolver
) -> list[IPAddress]:
    """The addresses to connect to, every one checked; RefusedTarget if any is refused.

    DNS failures raise OSError (`socket.gaierror`), for the caller to treat as a network error.
    An IPv4-mapped IPv6 answer comes back as its IPv4 address.
    """
    if target.address is not None:
        answers = [str(target.address)]  # checked by parse_target; unmapped below
    else:
        answers = await resolver(target.host, target.port)
    if not answers:
        raise socket.gaierror(f"{target.host} has no addresses")
    addresses = []
    for answer in answers:
        address = ipaddress.ip_address(answer)
        reason = refusal_reason(address, allow_insecure=allow_insecure)
        if reason:
            # The reason, not the address: our resolver's answers about names we can reach
            # are not for the caller to map (internal DNS).
            raise RefusedTarget(
                f"{target.host} resolves to {reason}; webhooks go to public addresses only"
            )
        mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        addresses.append(mapped or address)
    return addresses


async def check_target(
    url: str, *, allow_insecure: bool, resolver: Resolver = system_resolver
) -> WebhookTarget:
    """Validate a URL for a new or changed endpoint: its form, then every address it resolves to.

    A host that does not resolve is refused too: at creation that is almost always a typo.
    """
    target = parse_target(url, allow_insecure=allow_insecure)
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            await resolve_target(target, allow_insecure=allow_insecure, resolver=resolver)
    except (OSError, TimeoutError):
        raise RefusedTarget(f"{target.host} could not be resolved") from None
    return target
