"""Server-Sent Events: a domain follower (progress, queue events) written to an HTTP response.

Each item is `id: <cursor>`, `event: <name>`, `data: <JSON>`, so a client that reconnects with
`Last-Event-ID: <last cursor>` resumes right after it, missing nothing and repeating nothing (the
followers in `shared.progress` and `shared.events` replay from a cursor). A comment line goes out
every `keepalive_s` seconds of silence so that proxies keep the connection open. A stream that
starts at "now" sends its position first (`position`: an `id:` line alone, which sets the client's
last event id without dispatching an event), so even a client that drops before the first event
resumes where it began.

Lifecycle: the follower is the handler's own async generator. When the client goes away the
server cancels the handler (the runner is built with `handler_cancellation`), which cancels the
pending read and closes the follower at once (its subscription to the stream hub goes with it).
When the API shuts down the hub ends every follower with `ShuttingDown`; the stream then ends
cleanly with a comment saying to reconnect. Any other error after the headers went out is sent as
an `error` event (the envelope's error JSON), then the stream ends. Never a stack trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any, TypeVar

from aiohttp import hdrs, web

from api_service.http.context import ADMIT
from api_service.http.envelope import error_body
from shared.edge.codes import INTERNAL, code_name
from shared.errors import ShuttingDown

log = logging.getLogger(__name__)

T = TypeVar("T")

HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


def frame(*, cursor: str, event: str, data: Any) -> bytes:
    """One event; the JSON is on one line, so `data:` never needs splitting."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"id: {cursor}\nevent: {event}\ndata: {text}\n\n".encode()


def position(cursor: str) -> bytes:
    """The stream's position, dispatching no event: EventSource sets `lastEventId` from it."""
    return f"id: {cursor}\n\n".encode()


async def ticking(events: AsyncIterator[T], every: float) -> AsyncGenerator[T | None, None]:
    """`events`, with None whenever `every` seconds pass without one; closes `events` when closed."""
    pending: asyncio.Future[T] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(events))
            done, _ = await asyncio.wait({pending}, timeout=every)
            if not done:
                yield None
                continue
            try:
                item = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield item
    finally:
        if pending is not None:
            if not pending.done():
                pending.cancel()
            # Read what it ended with (even a read that finished as we were closed), so nothing is
            # left as an exception "never retrieved".
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, Exception):
                await pending
        if isinstance(events, AsyncGenerator):
            await events.aclose()


async def stream(
    request: web.Request,
    events: AsyncIterator[T],
    render: Callable[[T], bytes],
    *,
    keepalive_s: float,
    opening: bytes = b"",
) -> web.StreamResponse:
    """Send `events` as SSE until they end (or the client leaves, or the API stops), after
    `opening` (e.g. a `position`); to a HEAD request, only the headers (what the GET would answer,
    checked as it is checked)."""
    response = web.StreamResponse(status=200, headers=HEADERS)
    try:
        await response.prepare(request)
        started = request.method != hdrs.METH_HEAD  # HEAD: the headers alone, as the GET answers them
        if started:
            await response.write(b": connected\n\n" + opening)
    except ConnectionResetError:
        started = False  # the client left before the stream began: an ordinary goodbye, not an error
    if not started:
        if isinstance(events, AsyncGenerator):
            await events.aclose()
        return response
    ticks = ticking(events, keepalive_s)
    admit = request.get(ADMIT)
    try:
        async for item in ticks:
            if admit is not None:
                admit()  # a key taken out of the keys file gets nothing more (an `error` event ends it)
            await response.write(b": keep-alive\n\n" if item is None else render(item))
    except ShuttingDown:
        await _try_write(response, b": the server is shutting down; reconnect with Last-Event-ID\n\n")
    except (ConnectionResetError, asyncio.CancelledError):
        raise  # the client went away: nothing more to send
    except Exception as exc:
        if code_name(exc) == INTERNAL:
            log.exception("event stream failed", exc_info=exc)
        _, body = error_body(exc)
        await _try_write(response, f"event: error\ndata: {json.dumps(body, separators=(',', ':'))}\n\n".encode())
    finally:
        await ticks.aclose()
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


async def _try_write(response: web.StreamResponse, data: bytes) -> None:
    with contextlib.suppress(ConnectionResetError):
        await response.write(data)
