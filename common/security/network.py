"""Which client a per-IP limit counts, and which network a login lockout blames and the
activity log shows.

An IPv6 host usually holds a whole /64 and picks addresses from it at will, so limits keyed on
single IPv6 addresses are no limits: they are keyed on the /64. A lockout is scoped to the
client's network (IPv4 /24, IPv6 /64), so failures from a stranger's network do not lock the
account's owner out of theirs. The activity log and the session list keep only that network,
never the full address.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from common.models.text import strip_control

IPV6_PREFIX = 64
IPV4_LOCKOUT_PREFIX = 24


def _address(client: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def rate_limit_key(client: str) -> str:
    """An IPv4 address as it is, an IPv6 address as its /64 (anything else as it is)."""
    address = _address(client)
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    return str(address) if address is not None else client


def client_network(client: str) -> str:
    """The /24 of an IPv4 address, the /64 of an IPv6 one (anything else as it is)."""
    address = _address(client)
    if isinstance(address, ipaddress.IPv4Address):
        return str(ipaddress.IPv4Network((address, IPV4_LOCKOUT_PREFIX), strict=False))
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    return client


USER_AGENT_MAX_LENGTH = 256


@dataclass(frozen=True, slots=True)
class Client:
    """Where a request came from: `ip` as the per-IP limits count it (`rate_limit_key`), and
    the user agent it claimed (free text: control characters dropped, length capped)."""

    ip: str
    user_agent: str | None = None

    @classmethod
    def of(cls, ip: str, user_agent: str | None) -> Client:
        agent = strip_control(user_agent or "")[:USER_AGENT_MAX_LENGTH].strip()
        return cls(ip, agent or None)

    @property
    def network(self) -> str:
        return client_network(self.ip)
