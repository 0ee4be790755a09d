"""Connections only to the addresses the navigation policy checked: a pinned resolver for aiohttp.

`NavigationPolicy.vet` resolves a URL's host once and checks every address it got. A client that
then resolved the name again could be sent elsewhere by a DNS answer that changed in between
(rebinding). `pinned_connector` gives aiohttp a resolver that answers every name with the checked
addresses and nothing else, so the connection goes to one of exactly those. A host given as an IP
address is not resolved at all (aiohttp connects to it as written, which is what was checked).

Used by the webhook sender (shared/alerts/sender.py) and the executor's standalone HTTP client
(executor_service/http_client.py), one request per connector.
"""

from __future__ import annotations

import socket
import ssl

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from shared.navigation_policy import IpAddress

__all__ = ["PinnedResolver", "pinned_connector"]


class PinnedResolver(AbstractResolver):
    """Answers every name with the addresses the policy checked, and nothing else."""

    def __init__(self, addresses: tuple[IpAddress, ...]) -> None:
        self._addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host=str(a),
                port=port,
                family=socket.AF_INET6 if a.version == 6 else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for a in self._addresses
        ]

    async def close(self) -> None:
        return None


def pinned_connector(
    addresses: tuple[IpAddress, ...] | None, *, tls: ssl.SSLContext | None = None
) -> aiohttp.TCPConnector:
    """A connector for one request: to `addresses` only (None: the system's resolver, unguarded),
    never keeping a connection for another request. `tls` checks the server's certificate (None:
    aiohttp's default, the system's trust store), always for the name in the URL."""
    verify: ssl.SSLContext | bool = tls if tls is not None else True
    if addresses is None:
        return aiohttp.TCPConnector(force_close=True, ssl=verify)
    return aiohttp.TCPConnector(resolver=PinnedResolver(addresses), use_dns_cache=False, force_close=True, ssl=verify)
