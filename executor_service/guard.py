"""The navigation guard: what a test's page may reach on the network.

A test runs someone else's script inside the executor's network. Every request a job's browser
context makes — navigations, frames, images, scripts, fetch/XHR, each hop of a redirect, and
WebSocket handshakes — is checked here *after DNS resolution* before it leaves the browser:

- the scheme must be http or https (ws or wss for WebSockets);
- every address the host resolves to must be globally routable: loopback, link-local
  (169.254.0.0/16, where cloud metadata services live), private ranges, carrier-grade NAT,
  unspecified, multicast and reserved addresses are refused;
- `SENTINEL_NAVIGATION_ALLOW` (hosts, host:port or CIDRs) opens exceptions.

A refused request is aborted inside the browser (it is never sent) and recorded; the runner turns
a recorded refusal into `NavigationRefused` (category POLICY, never retried). Redirects are
followed here, hop by hop, so that each hop is checked too: Playwright does not route a request
that a redirect starts.

Known limit: Chromium resolves the name again when it connects, so a DNS answer that changes
between the check and the connection (rebinding) is not caught for requests the browser sends
itself. This module never raises out of a route handler and never logs request bodies.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from playwright.async_api import APIRequestContext, APIResponse, BrowserContext, Route, WebSocketRoute
from playwright.async_api import Error as PlaywrightError

from shared.errors import ConfigError

__all__ = ["AllowRule", "Guard", "NavigationPolicy", "Refusal", "guard_of", "install"]

log = logging.getLogger(__name__)

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_WEB_SCHEMES = frozenset({"http", "https"})
_SOCKET_SCHEMES = frozenset({"ws", "wss"})
_HOST_RE = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: Most redirect hops followed for one request (Chromium's own limit is 20).
MAX_REDIRECTS = 20
_RESOLVE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class AllowRule:
    """One SENTINEL_NAVIGATION_ALLOW entry: a host name, a host:port, or a network (CIDR or IP)."""

    host: str = ""
    port: int | None = None
    network: IpNetwork | None = None

    @classmethod
    def parse(cls, text: str) -> AllowRule:
        raw = text.strip().lower()
        try:
            return cls(network=ipaddress.ip_network(raw, strict=False))
        except ValueError:
            pass
        host, port = raw, None
        if raw.startswith("["):  # [v6]:port
            inner, _, rest = raw[1:].partition("]")
            host, port = inner, _port_of(rest.removeprefix(":"), text) if rest else None
        elif raw.count(":") == 1:
            host, _, port_text = raw.partition(":")
            port = _port_of(port_text, text)
        if not host or not (_HOST_RE.fullmatch(host) or _is_ip(host)):
            raise ConfigError(f"SENTINEL_NAVIGATION_ALLOW entries must be hosts, host:port or CIDRs, got {text!r}")
        return cls(host=host.rstrip("."), port=port)

    def allows_name(self, host: str, port: int) -> bool:
        return bool(self.host) and self.host == host and (self.port is None or self.port == port)

    def allows_address(self, address: IpAddress, port: int) -> bool:
        if self.network is not None:
            return address in self.network
        # An IP written as a host (`127.0.0.1:8080`) allows that address (on that port).
        return _is_ip(self.host) and ipaddress.ip_address(self.host) == address and self.port in (None, port)


def _port_of(text: str, entry: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigError(f"SENTINEL_NAVIGATION_ALLOW: bad port in {entry!r}")
    return int(text)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def is_denied_address(address: IpAddress) -> bool:
    """True for every address a test must not reach unless allowed: anything not global, and multicast."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


@dataclass(frozen=True)
class NavigationPolicy:
    rules: tuple[AllowRule, ...] = ()

    @classmethod
    def from_rules(cls, entries: Sequence[str]) -> NavigationPolicy:
        """Parse SENTINEL_NAVIGATION_ALLOW entries; raises ConfigError on a malformed one."""
        return cls(rules=tuple(AllowRule.parse(e) for e in entries if e.strip()))

    async def check(self, url: str, *, websocket: bool = False) -> str | None:
        """Why `url` must not be requested, or None when it may.

        Raises:
            OSError: the host cannot be resolved (the caller fails the request as a network error).
        """
        try:
            parts = urlsplit(url)
            scheme = parts.scheme.lower()
            host = (parts.hostname or "").rstrip(".")
            port = parts.port or _DEFAULT_PORTS.get(scheme, 0)
        except ValueError:
            return f"malformed URL {url[:200]!r}"
        if scheme not in (_SOCKET_SCHEMES if websocket else _WEB_SCHEMES):
            return f"the scheme {scheme or '(none)'!r} is not allowed"
        if not host:
            return "the URL has no host"
        if any(rule.allows_name(host, port) for rule in self.rules):
            return None
        for address in await _resolve(host, port):
            if is_denied_address(address) and not any(rule.allows_address(address, port) for rule in self.rules):
                return f"{host} resolves to {address}, a non-public address (allow it with SENTINEL_NAVIGATION_ALLOW)"
        return None


async def _resolve(host: str, port: int) -> list[IpAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout=_RESOLVE_TIMEOUT_S)
    # Strip an IPv6 zone ("fe80::1%eth0") before parsing.
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


@dataclass(frozen=True)
class Refusal:
    url: str
    reason: str

    def describe(self) -> str:
        return f"navigation guard refused {self.url[:300]}: {self.reason}"


@dataclass(eq=False)
class Guard:
    """The guard of one browser context: checks its requests and keeps what it refused."""

    policy: NavigationPolicy
    requests: APIRequestContext  # the context's own client: it shares the context's cookies
    refusals: list[Refusal] = field(default_factory=list)

    def take_refusals(self) -> list[Refusal]:
        """The refusals since the last call (the runner asks after each step)."""
        taken, self.refusals = self.refusals, []
        return taken

    async def _refused(self, url: str, *, websocket: bool = False) -> bool:
        try:
            reason = await self.policy.check(url, websocket=websocket)
        except (OSError, TimeoutError, UnicodeError):
            return False  # unresolvable: the caller fails it as a network error, not a policy one
        if reason is None:
            return False
        log.warning("navigation guard refused %s: %s", url[:300], reason)
        self.refusals.append(Refusal(url=url, reason=reason))
        return True

    async def on_route(self, route: Route) -> None:
        request = route.request
        try:
            if await self._refused(request.url):
                await route.abort("blockedbyclient")
                return
            if not await _resolvable(request.url):
                await route.abort("namenotresolved")
                return
            first = await route.fetch(max_redirects=0)
            target = _redirect_target(first, request.url)
            if target is None:
                await route.fulfill(response=first)
                return
            final = await self._follow(route, target, method=request.method, status=first.status)
            if final is None:
                await route.abort("blockedbyclient")
                return
            # Every hop is checked: hand the browser the first response pointing at the last hop.
            await route.fulfill(response=first, headers={**first.headers, "location": final})
        except PlaywrightError as exc:
            log.debug("guarded request %s failed: %s", request.url[:300], exc)
            await _abort_quietly(route)

    async def _follow(self, route: Route, url: str, *, method: str, status: int) -> str | None:
        """Follow a redirect chain from `url`, checking each hop; its last URL, or None if refused."""
        request = route.request
        keep_method = status in (307, 308)
        for _ in range(MAX_REDIRECTS):
            if await self._refused(url):
                return None
            response = await self.requests.fetch(
                url,
                method=method if keep_method else "GET",
                data=request.post_data_buffer if keep_method else None,
                max_redirects=0,
            )
            nxt = _redirect_target(response, url)
            await response.dispose()
            if nxt is None:
                return url
            keep_method = keep_method and response.status in (307, 308)
            url = nxt
        raise PlaywrightError(f"more than {MAX_REDIRECTS} redirects")

    async def on_websocket(self, ws: WebSocketRoute) -> None:
        try:
            if await self._refused(ws.url, websocket=True):
                await ws.close(code=1008, reason="refused by the navigation guard")
                return
            ws.connect_to_server()
        except PlaywrightError as exc:
            log.debug("guarded websocket %s failed: %s", ws.url[:300], exc)


async def _resolvable(url: str) -> bool:
    try:
        parts = urlsplit(url)
        await _resolve(parts.hostname or "", parts.port or 0)
    except (OSError, TimeoutError, UnicodeError, ValueError):
        return False
    return True


def _redirect_target(response: APIResponse, url: str) -> str | None:
    if response.status not in _REDIRECTS:
        return None
    location = response.headers.get("location", "")
    return urljoin(url, location) if location else None


async def _abort_quietly(route: Route) -> None:
    with contextlib.suppress(PlaywrightError):  # the page or context may already be gone
        await route.abort("failed")


_guards: dict[int, Guard] = {}


async def install(context: BrowserContext, policy: NavigationPolicy) -> Guard:
    """Put `policy` in front of every request of `context`; returns its guard.

    Service workers are expected to be blocked on the context (they could fetch unrouted).
    """
    guard = Guard(policy, context.request)
    await context.route("**/*", guard.on_route)
    await context.route_web_socket(re.compile(".*"), guard.on_websocket)
    key = id(context)
    _guards[key] = guard

    def forget(_: BrowserContext) -> None:
        _guards.pop(key, None)

    context.on("close", forget)
    return guard


def guard_of(context: BrowserContext) -> Guard | None:
    """The guard installed on `context`, if any."""
    return _guards.get(id(context))
