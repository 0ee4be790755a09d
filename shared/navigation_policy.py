"""What a test's page (or a webhook delivery) may reach: the navigation policy, checked after DNS resolution.

- the scheme must be http or https (ws or wss for WebSockets);
- every address the host resolves to must be globally routable: loopback, link-local
  (169.254.0.0/16, where cloud metadata services live), private ranges, carrier-grade NAT,
  unspecified, multicast and reserved addresses are refused;
- `SENTINEL_NAVIGATION_ALLOW` (hosts, host:port or CIDRs) opens exceptions; alert webhooks are
  checked by the same rules with their own list, `SENTINEL_WEBHOOK_ALLOW` (`variable` names it).

`NavigationPolicy.vet` answers with the reason for a refusal, or with the addresses it checked:
the egress proxy (executor_service/egress.py) and the webhook sender (shared/alerts/sender.py)
connect to those and no others. Pure policy: it opens no connection of its own.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from shared.errors import ConfigError

__all__ = ["AllowRule", "IpAddress", "NavigationPolicy", "Resolver", "Verdict", "is_denied_address", "resolve"]

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[IpAddress]]]

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_WEB_SCHEMES = frozenset({"http", "https"})
_SOCKET_SCHEMES = frozenset({"ws", "wss"})
_HOST_RE = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?")
_RESOLVE_TIMEOUT_S = 10.0
#: The variable whose entries open exceptions, named in errors and refusals.
NAVIGATION_ALLOW = "SENTINEL_NAVIGATION_ALLOW"


@dataclass(frozen=True)
class AllowRule:
    """One allow-list entry: a host name, a host:port, or a network (CIDR or IP)."""

    host: str = ""
    port: int | None = None
    network: IpNetwork | None = None

    @classmethod
    def parse(cls, text: str, *, variable: str = NAVIGATION_ALLOW) -> AllowRule:
        raw = text.strip().lower()
        try:
            return cls(network=ipaddress.ip_network(raw, strict=False))
        except ValueError:
            pass
        host, port = raw, None
        if raw.startswith("["):  # [v6]:port
            inner, _, rest = raw[1:].partition("]")
            host, port = inner, _port_of(rest.removeprefix(":"), text, variable) if rest else None
        elif raw.count(":") == 1:
            host, _, port_text = raw.partition(":")
            port = _port_of(port_text, text, variable)
        if not host or not (_HOST_RE.fullmatch(host) or _is_ip(host)):
            raise ConfigError(f"{variable} entries must be hosts, host:port or CIDRs, got {text!r}")
        return cls(host=host.rstrip("."), port=port)

    def allows_name(self, host: str, port: int) -> bool:
        return bool(self.host) and self.host == host and (self.port is None or self.port == port)

    def allows_address(self, address: IpAddress, port: int) -> bool:
        if self.network is not None:
            return address in self.network
        # An IP written as a host (`127.0.0.1:8080`) allows that address (on that port).
        return _is_ip(self.host) and ipaddress.ip_address(self.host) == address and self.port in (None, port)


def _port_of(text: str, entry: str, variable: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigError(f"{variable}: bad port in {entry!r}")
    return int(text)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


#: IPv6 prefixes whose last 32 bits are an IPv4 address that traffic to them reaches: IPv4-compatible
#: (::a.b.c.d, deprecated), IPv4-translated (SIIT, ::ffff:0:a.b.c.d) and NAT64's well-known prefix
#: (64:ff9b::a.b.c.d, which a NAT64 gateway forwards to that IPv4 address).
_EMBEDDING_IPV4 = tuple(ipaddress.IPv6Network(prefix) for prefix in ("::/96", "::ffff:0:0:0/96", "64:ff9b::/96"))
#: NAT64's local-use prefix (RFC 8215): where its IPv4 address sits depends on the network's setup.
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")


def is_denied_address(address: IpAddress) -> bool:
    """True for every address a test must not reach unless allowed: anything not global, and
    multicast — for an IPv6 address that carries an IPv4 one (mapped, compatible, translated, NAT64,
    6to4), by the IPv4 address it reaches."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in _LOCAL_NAT64:
            return True
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and any(address in network for network in _EMBEDDING_IPV4):
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            address = embedded
    return not address.is_global or address.is_multicast


@dataclass(frozen=True)
class NavigationPolicy:
    rules: tuple[AllowRule, ...] = ()
    #: How names are resolved (None: the system's resolver); tests give their own answers.
    resolver: Resolver | None = field(default=None, compare=False)
    #: The variable the rules came from, named in refusals and errors.
    variable: str = NAVIGATION_ALLOW

    @classmethod
    def from_rules(cls, entries: Sequence[str], *, variable: str = NAVIGATION_ALLOW) -> NavigationPolicy:
        """Parse the entries of `variable`; raises ConfigError on a malformed one."""
        return cls(rules=tuple(AllowRule.parse(e, variable=variable) for e in entries if e.strip()), variable=variable)

    async def vet(self, url: str, *, websocket: bool = False) -> Verdict:
        """The verdict on `url`: why it is refused, or the addresses it may be reached at.

        Raises:
            OSError: the host cannot be resolved.
        """
        try:
            parts = urlsplit(url)
            scheme = parts.scheme.lower()
            host = (parts.hostname or "").rstrip(".")
            port = parts.port or _DEFAULT_PORTS.get(scheme, 0)
        except ValueError:
            return Verdict(reason=f"malformed URL {url[:200]!r}")
        if scheme not in (_SOCKET_SCHEMES if websocket else _WEB_SCHEMES):
            return Verdict(reason=f"the scheme {scheme or '(none)'!r} is not allowed")
        if not host:
            return Verdict(reason="the URL has no host")
        addresses = tuple(dict.fromkeys(await (self.resolver or resolve)(host, port)))
        if any(rule.allows_name(host, port) for rule in self.rules):
            return Verdict(addresses=addresses)
        for address in addresses:
            if is_denied_address(address) and not any(rule.allows_address(address, port) for rule in self.rules):
                why = f"{host} resolves to {address}, a non-public address (allow it with {self.variable})"
                return Verdict(reason=why)
        return Verdict(addresses=addresses)


@dataclass(frozen=True)
class Verdict:
    """A refusal's reason, or (reason None) the checked addresses the request may go to."""

    reason: str | None = None
    addresses: tuple[IpAddress, ...] = ()


async def resolve(host: str, port: int) -> list[IpAddress]:
    """The addresses `host` resolves to (itself when it is an IP address)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout=_RESOLVE_TIMEOUT_S)
    # Strip an IPv6 zone ("fe80::1%eth0") before parsing.
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
