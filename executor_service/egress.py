"""The egress proxy: the one way out of a guarded browser context.

Each guarded context gets its own forward proxy on a loopback port, and Chromium sends all of the
context's traffic through it, loopback included: plain HTTP as absolute-form requests, HTTPS and
WebSockets as CONNECT tunnels. For each one the proxy resolves the host *once*, checks every
address against the navigation policy, and connects to one of exactly those addresses. So:

- a DNS answer that changes between the check and the connection (rebinding) cannot take a test
  anywhere the check did not allow — the proxy never resolves the name a second time;
- every redirect hop, which Chromium requests anew, is checked like the first request;
- a refused request gets `403` from the proxy and is reported to the context's guard; not a byte
  reaches the target.

A target that cannot be reached fails in the browser as a network error, as it would without a
proxy: a CONNECT gets `502` (Chromium: ERR_TUNNEL_CONNECTION_FAILED), a plain request has its
connection closed unanswered (ERR_EMPTY_RESPONSE) — a 502 page would look like the site's own
answer. The reason (refused, unreachable, unresolvable) is reported to the guard, which puts it in
the step's error message.

Plain HTTP requests go upstream with `Connection: close`, one request per connection, so a
connection the proxy opened for one checked host never carries a request for another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from urllib.parse import urlsplit

from executor_service.navigation_policy import NavigationPolicy

__all__ = ["EgressProxy"]

log = logging.getLogger(__name__)

#: Most bytes of a request line and headers the proxy reads before it gives up on a request.
MAX_HEAD = 64 * 1024
_CONNECT_TIMEOUT_S = 10.0
_CHUNK = 64 * 1024
#: Request headers meant for the proxy or for one hop only; never forwarded.
_HOP_HEADERS = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "upgrade"})

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class EgressProxy:
    """A forward proxy that connects only where `policy` allows, for one browser context."""

    def __init__(
        self, policy: NavigationPolicy, *, refused: Callable[[str, str], None], failed: Callable[[str, str], None]
    ) -> None:
        """Args: refused / failed: told (url, why) of every request the policy refuses / that cannot be reached."""
        self._policy = policy
        self._refused = refused
        self._failed = failed
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        """The proxy's address, for Playwright's `proxy={"server": ...}`."""
        if self._server is None:
            raise RuntimeError("the egress proxy is not started")
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def start(self) -> str:
        """Listen on a free loopback port; returns the proxy's URL."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, limit=MAX_HEAD)
        return self.url

    async def close(self) -> None:
        """Stop listening and cut every open connection. Safe to call more than once."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        await asyncio.sleep(0)  # connections accepted just now get their task started, so it can be cut
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), timeout=5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            await self._relay(reader, writer)
        except _Answered:
            pass
        except asyncio.CancelledError:
            # Cut by `close` (the context is gone): the connection just ends. Letting the cancellation
            # out would have Python 3.11's stream server log it as an error for every open connection.
            pass
        except (OSError, EOFError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            log.debug("egress connection ended: %s", exc)
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n"))[:-4].decode("latin-1")
        request_line, *header_lines = head.split("\r\n")
        method, target, version = request_line.split(" ", 2)
        if method.upper() == "CONNECT":
            host, _, port_text = target.rpartition(":")
            if not host or not port_text.isdigit():
                return await _answer(writer, 400, "bad CONNECT target")
            upstream = await self._open(f"https://{target}/", host.strip("[]"), int(port_text), writer)
            if upstream is None:
                return await _answer(writer, 502, "the target cannot be reached")
            writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            return await _pipe((reader, writer), upstream)
        parts = urlsplit(target)
        if parts.scheme.lower() != "http" or not parts.hostname:
            return await _answer(writer, 400, "the proxy takes absolute http:// requests and CONNECT only")
        upstream = await self._open(target, parts.hostname, parts.port or 80, writer)
        if upstream is None:
            return None  # closed unanswered: the browser sees a network error
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = [line for line in header_lines if line.partition(":")[0].strip().lower() not in _HOP_HEADERS]
        head = "\r\n".join([f"{method} {path} {version}", *headers, "Connection: close"])
        return await _pipe((reader, writer), upstream, first=f"{head}\r\n\r\n".encode("latin-1"))

    async def _open(self, url: str, host: str, port: int, writer: asyncio.StreamWriter) -> Streams | None:
        """A connection to an address of `host` that the policy allows, or None: a refusal is answered
        403 here; an unreachable target is reported, and the caller fails the request."""
        try:
            verdict = await self._policy.vet(url)
        except (OSError, TimeoutError, UnicodeError) as exc:
            self._failed(url, f"cannot resolve {host}: {exc or type(exc).__name__}")
            return None
        if verdict.reason is not None:
            self._refused(url, verdict.reason)
            await _answer(writer, 403, f"refused by the navigation guard: {verdict.reason}")
            raise _Answered
        error: Exception | None = None
        for address in verdict.addresses:  # exactly the addresses that were checked
            try:
                # asyncio.timeout rather than wait_for: a wait_for cancelled (the proxy closing) just as
                # the connection is made can drop the open connection unclosed; here the cancellation
                # reaches open_connection itself, which closes what it opened.
                async with asyncio.timeout(_CONNECT_TIMEOUT_S):
                    return await asyncio.open_connection(str(address), port)
            except (OSError, TimeoutError) as exc:
                error = exc
        self._failed(url, f"cannot connect to {host}:{port}: {error or 'no address'}")
        return None


class _Answered(Exception):
    """The client has its answer (a refusal); the connection only needs closing."""


async def _answer(writer: asyncio.StreamWriter, status: int, text: str) -> None:
    body = text.encode("utf-8", "replace")
    reason = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}[status]
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\nX-Sentinel-Guard: {status}\r\n\r\n".encode("latin-1")
        + body
    )
    with contextlib.suppress(OSError):
        await writer.drain()


async def _copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    while chunk := await source.read(_CHUNK):
        sink.write(chunk)
        await sink.drain()


async def _pipe(client: Streams, upstream: Streams, *, first: bytes = b"") -> None:
    """Send `first` upstream, then copy both ways until either side is done; closes the upstream side."""
    up_writer = upstream[1]
    copies: list[asyncio.Task[None]] = []
    try:
        up_writer.write(first)
        copies = [
            asyncio.create_task(_copy(client[0], up_writer)),
            asyncio.create_task(_copy(upstream[0], client[1])),
        ]
        await asyncio.wait(copies, return_when=asyncio.FIRST_COMPLETED)
    finally:
        # Closed first: `close` may cancel this task again while it waits for the copies below.
        up_writer.close()
        for task in copies:
            task.cancel()
        await asyncio.gather(*copies, return_exceptions=True)
