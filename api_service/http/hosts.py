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
from urllib.parse import urlsplit

from aiohttp import hdrs, web

from api_service.http.context import BACKEND

#: Where the app listens (API_HTTP_HOST): a `Host` naming it is the API's own.
LISTEN_HOST = web.AppKey("sentinel_listen_host", str)


def _hostname(authority: str) -> str:
    """The host of a `Host` header or an origin's authority, lowercased, without port or brackets."""
    try:
        return (urlsplit(f"//{authority}").hostname or "").rstrip(".")
    except ValueError:
        return ""


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
    origins = request.app[BACKEND].cors_origins
    return host == request.app[LISTEN_HOST].lower() or host in {_hostname(o.partition("://")[2]) for o in origins}
