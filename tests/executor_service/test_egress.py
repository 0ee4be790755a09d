"""The egress proxy on its own, spoken to over raw loopback sockets: it forwards what the policy
allows (plain HTTP and CONNECT tunnels), refuses the rest with 403 before connecting anywhere,
and connects only to the addresses it checked."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from executor_service.egress import EgressProxy
from executor_service.navigation_policy import IpAddress, NavigationPolicy, resolve
from tests.support import free_port


@dataclass
class Upstream:
    """A loopback HTTP server that records each request head it gets."""

    port: int = 0
    heads: list[str] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        self.heads.append(head)
        body = b"hello from upstream"
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    up = Upstream()
    server = await asyncio.start_server(up.handle, "127.0.0.1", 0)
    up.port = server.sockets[0].getsockname()[1]
    try:
        yield up
    finally:
        server.close()


async def _names(host: str, port: int) -> list[IpAddress]:
    """`good.test` is the loopback server; `gone.test` does not resolve; the rest as usual."""
    if host == "good.test":
        return [ipaddress.ip_address("127.0.0.1")]
    if host == "gone.test":
        raise OSError("Name or service not known")
    return await resolve(host, port)


@dataclass
class Proxied:
    proxy: EgressProxy
    port: int
    refused: list[tuple[str, str]]
    failed: list[tuple[str, str]]


@pytest.fixture
async def proxied(upstream: Upstream) -> AsyncIterator[Proxied]:
    refused: list[tuple[str, str]] = []
    failed: list[tuple[str, str]] = []
    policy = NavigationPolicy(rules=NavigationPolicy.from_rules(["good.test"]).rules, resolver=_names)
    proxy = EgressProxy(policy, refused=lambda u, r: refused.append((u, r)), failed=lambda u, r: failed.append((u, r)))
    url = await proxy.start()
    try:
        yield Proxied(proxy, int(url.rsplit(":", 1)[1]), refused, failed)
    finally:
        await proxy.close()


async def exchange(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()


async def test_plain_http_goes_to_the_checked_address_one_request_per_connection(
    proxied: Proxied, upstream: Upstream
) -> None:
    request = (
        f"GET http://good.test:{upstream.port}/page?q=1 HTTP/1.1\r\nHost: good.test:{upstream.port}\r\n"
        "Proxy-Connection: keep-alive\r\nProxy-Authorization: Basic c2VjcmV0\r\nAccept: */*\r\n\r\n"
    )
    reply = await exchange(proxied.port, request.encode())
    assert reply.startswith(b"HTTP/1.1 200 OK") and reply.endswith(b"hello from upstream")
    [head] = upstream.heads
    assert head.startswith("GET /page?q=1 HTTP/1.1\r\n")
    assert f"Host: good.test:{upstream.port}" in head and "Accept: */*" in head
    assert "Connection: close" in head and "Proxy-" not in head
    assert proxied.refused == []


async def test_connect_opens_a_tunnel_to_an_allowed_host(proxied: Proxied, upstream: Upstream) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxied.port)
    try:
        writer.write(f"CONNECT good.test:{upstream.port} HTTP/1.1\r\nHost: good.test:{upstream.port}\r\n\r\n".encode())
        established = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert established == b"HTTP/1.1 200 Connection Established\r\n\r\n"
        writer.write(b"GET /through HTTP/1.1\r\nHost: good.test\r\n\r\n")  # the tunnel carries bytes as they are
        reply = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    assert reply.endswith(b"hello from upstream")
    assert upstream.heads[0].startswith("GET /through HTTP/1.1")


@pytest.mark.parametrize("verb", ["GET", "CONNECT"])
async def test_a_denied_address_gets_403_and_is_never_connected(
    proxied: Proxied, upstream: Upstream, verb: str
) -> None:
    target = f"127.0.0.1:{upstream.port}"
    line = f"GET http://{target}/secret HTTP/1.1" if verb == "GET" else f"CONNECT {target} HTTP/1.1"
    reply = await exchange(proxied.port, f"{line}\r\nHost: {target}\r\n\r\n".encode())
    assert reply.startswith(b"HTTP/1.1 403 Forbidden") and b"127.0.0.1, a non-public address" in reply
    assert [url for url, _ in proxied.refused] == [f"http://{target}/secret" if verb == "GET" else f"https://{target}/"]
    assert upstream.heads == []


async def test_an_unreachable_target_is_a_network_error_and_reported(proxied: Proxied) -> None:
    closed = free_port()
    # Plain HTTP: closed unanswered, so the browser fails the load (a 502 page would pass for the site's own).
    assert await exchange(proxied.port, b"GET http://gone.test/ HTTP/1.1\r\nHost: gone.test\r\n\r\n") == b""
    assert await exchange(proxied.port, f"GET http://good.test:{closed}/ HTTP/1.1\r\n\r\n".encode()) == b""
    # A tunnel: 502, which Chromium reports as ERR_TUNNEL_CONNECTION_FAILED.
    tunnel = await exchange(proxied.port, f"CONNECT good.test:{closed} HTTP/1.1\r\n\r\n".encode())
    assert tunnel.startswith(b"HTTP/1.1 502 Bad Gateway")
    reasons = [why.split(":")[0] for _, why in proxied.failed]
    assert reasons == ["cannot resolve gone.test", "cannot connect to good.test", "cannot connect to good.test"]
    assert proxied.refused == []


async def test_malformed_requests_are_answered_not_forwarded(proxied: Proxied) -> None:
    for bad in (b"GET /relative HTTP/1.1\r\n\r\n", b"CONNECT nowhere HTTP/1.1\r\n\r\n"):
        assert (await exchange(proxied.port, bad)).startswith(b"HTTP/1.1 400 Bad Request")
    assert proxied.refused == proxied.failed == []


async def test_close_cuts_open_tunnels_quietly(proxied: Proxied) -> None:
    held = asyncio.Event()
    loop = asyncio.get_running_loop()
    errors: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _, context: errors.append(context))

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.set()
        await reader.read()  # until the proxy lets go
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", proxied.port)
    try:
        writer.write(f"CONNECT good.test:{port} HTTP/1.1\r\n\r\n".encode())
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        await asyncio.wait_for(held.wait(), 10)
        await asyncio.wait_for(proxied.proxy.close(), 10)
        assert await asyncio.wait_for(reader.read(), 10) == b""  # the tunnel is gone
        await asyncio.sleep(0)
        assert errors == [], "a cut connection reached the event loop's error handler"
    finally:
        loop.set_exception_handler(None)
        writer.close()
        server.close()
