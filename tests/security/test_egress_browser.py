"""Real Chromium through a guarded context's egress proxy: HTTPS and WebSockets (CONNECT tunnels).

The sites answer to names only the policy's resolver knows (`*.test` → 127.0.0.1). Chromium cannot
resolve them itself, so a page that loads proves the egress proxy resolved the name, checked the
address and carried the connection.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import ipaddress
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from executor_service.guard import ClosingProxies, Guard, open_guarded_context
from executor_service.navigation_policy import IpAddress, NavigationPolicy, resolve
from tests.support import CHROMIUM_ARGS, chromium_path, make_cert, wait_for

_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PAGE = (
    b"<title>Sockets</title><p id='m'>waiting</p><script>"
    b"const ws = new WebSocket('ws://' + location.host + '/ws');"
    b"ws.onmessage = (e) => { document.getElementById('m').textContent = e.data; };"
    b"ws.onerror = () => { document.getElementById('m').textContent = 'error'; };</script>"
)


async def _names(host: str, port: int) -> list[IpAddress]:
    if host.endswith(".test"):
        return [ipaddress.ip_address("127.0.0.1")]
    return await resolve(host, port)


POLICY = NavigationPolicy(rules=NavigationPolicy.from_rules(["secure.test", "sockets.test"]).rules, resolver=_names)


@dataclass
class Guarded:
    """A browser, and the egress proxies of its closed contexts, which its owner waits for."""

    browser: Browser
    closing: ClosingProxies


@pytest.fixture
async def guarded() -> AsyncIterator[Guarded]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=chromium_path(), args=list(CHROMIUM_ARGS))
        closing = ClosingProxies()
        try:
            yield Guarded(chromium, closing)
        finally:
            await chromium.close()
            await closing.settle()


async def _site(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An HTTP page, or a WebSocket that says hello and stays open."""
    try:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head.split("\r\n")[1:])}
        if headers.get("upgrade", "").lower() == "websocket":
            accept = base64.b64encode(hashlib.sha1((headers["sec-websocket-key"] + _WS_GUID).encode()).digest())
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            text = b"hello over the tunnel"
            writer.write(bytes([0x81, len(text)]) + text)  # one unmasked text frame
            await writer.drain()
            await reader.read()  # until the page goes away
        else:
            body = PAGE if head.startswith("GET / ") else b"<title>Secure</title><p id='ok'>secure page</p>"
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def test_an_https_page_goes_through_a_connect_tunnel(guarded: Guarded, tmp_path: Path) -> None:
    make_cert(tmp_path, "secure", None)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(tmp_path / "secure.pem", tmp_path / "secure.key")
    server = await asyncio.start_server(_site, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    session = await open_guarded_context(guarded.browser, POLICY, closing=guarded.closing, ignore_https_errors=True)
    try:
        page = await session.context.new_page()
        await page.goto(f"https://secure.test:{port}/secure", timeout=10_000)
        assert await page.text_content("#ok") == "secure page"
        guard = session.guard
        assert guard is not None and guard.take_refusals() == [] and guard.take_failures() == []
    finally:
        await session.close()
        server.close()


@dataclass
class Sockets:
    page: Page
    port: int
    guard: Guard


@pytest.fixture
async def sockets(guarded: Guarded) -> AsyncIterator[Sockets]:
    """The sockets page (it opens a WebSocket to its own host) loaded in a guarded context."""
    server = await asyncio.start_server(_site, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    session = await open_guarded_context(guarded.browser, POLICY, closing=guarded.closing)
    try:
        page = await session.context.new_page()
        await page.goto(f"http://sockets.test:{port}/", timeout=10_000)
        assert session.guard is not None
        yield Sockets(page, port, session.guard)
    finally:
        await session.close()
        server.close()


async def test_a_websocket_goes_through_a_connect_tunnel(sockets: Sockets) -> None:
    await sockets.page.wait_for_function("document.getElementById('m').textContent !== 'waiting'", timeout=10_000)
    assert await sockets.page.text_content("#m") == "hello over the tunnel"


async def test_a_websocket_to_a_refused_address_is_refused(sockets: Sockets) -> None:
    # The page is allowed by name; a socket to the bare loopback address is not.
    await sockets.page.evaluate(
        f"() => {{ const s = new WebSocket('ws://127.0.0.1:{sockets.port}/ws');"
        " s.onmessage = (e) => { document.getElementById('m').textContent = 'leaked: ' + e.data; }; }"
    )

    async def refused() -> bool:
        return any("127.0.0.1" in r.url for r in sockets.guard.refusals)

    await wait_for(refused, within=10, what="the socket to be refused")
    assert not (await sockets.page.text_content("#m") or "").startswith("leaked")


WEBRTC_PAGE = (
    "<title>WebRTC</title><p id='state'>new</p><script>"
    "const pc = new RTCPeerConnection({iceServers: [{urls: 'stun:127.0.0.1:%d'},"
    " {urls: 'turn:127.0.0.1:%d?transport=udp', username: 'u', credential: 'p'}]});"
    "pc.createDataChannel('d');"
    "pc.onicegatheringstatechange = () => { document.getElementById('state').textContent = pc.iceGatheringState; };"
    "pc.createOffer().then((offer) => pc.setLocalDescription(offer));"
    "</script>"
)


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[tuple[bytes, object]] = []

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.received.append((data, addr))


async def test_a_page_cannot_send_udp_around_the_egress_proxy_with_webrtc(guarded: Guarded) -> None:
    """WebRTC's STUN and TURN go over UDP, which no HTTP proxy carries: a page on an allowed site
    could otherwise probe any internal UDP service (a STUN request to it, a TURN one with a username
    the page chose). Chromium is launched to send WebRTC only through the proxy (TCP, checked there)."""
    loop = asyncio.get_running_loop()
    udp, listener = await loop.create_datagram_endpoint(_Datagrams, local_addr=("127.0.0.1", 0))
    udp_port = udp.get_extra_info("sockname")[1]
    page_bytes = (WEBRTC_PAGE % (udp_port, udp_port)).encode()

    async def site(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n" % len(page_bytes)
            writer.write(head + page_bytes)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(site, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    session = await open_guarded_context(guarded.browser, POLICY, closing=guarded.closing)
    try:
        page = await session.context.new_page()
        await page.goto(f"http://secure.test:{port}/", timeout=10_000)
        # Gathering ends once every STUN/TURN server was asked, or could not be (at once, when only
        # the proxy may be used): by then any request Chromium would send has been sent. Through
        # UDP, gathering waits for the servers' answers, and the first request arrives at once.

        async def settled() -> bool:
            return bool(listener.received) or await page.text_content("#state") == "complete"

        await wait_for(settled, within=20, what="ICE gathering to complete, or a UDP datagram")
        assert listener.received == [], f"WebRTC reached a UDP port the page may not reach: {listener.received[:2]}"
    finally:
        await session.close()
        server.close()
        udp.close()
