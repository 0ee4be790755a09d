"""Which `Host` a request may name while auth is disabled: the guard against DNS rebinding.

A page at `http://attacker.example:8080` whose name the attacker then points at 127.0.0.1 is
same-origin with itself, so the origin check lets its requests through, and with
`SENTINEL_AUTH=disabled` no key stops them. What gives it away is its `Host`: the attacker's name.
With auth disabled, `api_service.http.server.guard_origin` answers only requests whose `Host` is
one `trusted_host` accepts. With keys on, the key is what admits a caller, and a rebound page has
none. Reads headers and settings only; never a DNS lookup.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from aiohttp import hdrs, web

#: The names a `Host` may give besides loopback and addresses (`named_hosts`), made once with the app.
NAMED_HOSTS = web.AppKey("sentinel_named_hosts", frozenset[str])


def _hostname(authority: str) -> str:
    """The host of a `Host` header or an origin's authority, lowercased, without port or brackets."""
    try:
        return (urlsplit(f"//{authority}").hostname or "").rstrip(".")
    except ValueError:
        return ""


def named_hosts(listen_host: str, cors_origins: Iterable[str]) -> frozenset[str]:
    """The listen address (API_HTTP_HOST) and the hosts of the CORS origins, as `_hostname` spells them."""
    return frozenset({listen_host.lower(), *(_hostname(o.partition("://")[2]) for o in cors_origins)} - {""})


def trusted_host(request: web.Request) -> bool:
    """Whether the request's `Host` is one no DNS-rebinding page can send.

    An IP address is trusted whatever it is: a page whose URL names an address is the page of
    whoever listens there, so it reaches this API only if this API served it. A name is trusted
    when it is loopback (`localhost`, `*.localhost`, which browsers resolve to loopback
    themselves), the listen address, or the host of an origin in API_HTTP_CORS_ORIGINS."""
    if hdrs.HOST not in request.headers:
        return True  # not a browser: every browser sends Host
    host = _hostname(request.headers[hdrs.HOST])
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return True
    return host in request.app[NAMED_HOSTS]
