"""Both SDK clients behind the async one's face, so each scenario runs against `Client` and `AsyncClient`.

`Threaded` drives the blocking `Client` from an async test: every call runs in a worker thread and
every iterator is pulled a step at a time there, so the test exercises the blocking client's own
code (its channel, its retry and resume loops) and not a wrapper around the async one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generator
from typing import Any, cast

import grpc

from sentinel_client import AsyncClient, Client, JobHandle, RunHandle

FLAVORS = ("async", "sync")
#: The clients' methods (and their handles') that return iterators rather than results.
_ITERATORS = {
    "events",
    "jobs",
    "dead_letters",
    "watch_events",
    "run_events",
    "schedules",
    "alert_rules",
    "deliveries",
}


class Threaded:
    """A blocking `Client`, `JobHandle` or `RunHandle` with awaitable methods and async iterators."""

    def __init__(self, target: Any) -> None:
        self._target = target

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr
        if name in _ITERATORS:
            return lambda *args, **kwargs: _pull(attr(*args, **kwargs))
        if name in ("job", "run"):
            return lambda *args, **kwargs: Threaded(attr(*args, **kwargs))

        async def call(*args: Any, **kwargs: Any) -> Any:
            result = await asyncio.to_thread(attr, *args, **kwargs)
            return Threaded(result) if isinstance(result, JobHandle | RunHandle) else result

        return call


async def _pull(items: Generator[Any, None, None]) -> AsyncGenerator[Any, None]:
    end = object()
    try:
        while (item := await asyncio.to_thread(next, items, end)) is not end:
            yield item
    finally:
        await asyncio.to_thread(items.close)


@contextlib.asynccontextmanager
async def connect(flavor: str, target: str, **options: Any) -> AsyncIterator[AsyncClient]:
    """A client of `flavor` ("async" or "sync") with the constructor's `options`, typed as the async one."""
    if flavor == "async":
        async with AsyncClient(target, **options) as client:
            yield client
        return
    blocking = Client(target, **options)
    try:
        yield cast(AsyncClient, Threaded(blocking))
    finally:
        blocking.close()


def unavailable_error(flavor: str) -> grpc.RpcError:
    """What a channel of `flavor` raises when the API cannot be reached."""
    if flavor == "async":
        return grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "lost")
    return _BlockingUnavailable()


class _BlockingUnavailable(grpc.RpcError):
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return "lost"


class Calls:
    """A client interceptor for either flavor that counts the calls to each method and can lose a
    reply: `lose` names methods whose first reply is received and then dropped as if the connection
    failed after the API acted (UNAVAILABLE)."""

    def __init__(self, flavor: str, *, lose: tuple[str, ...] = ()) -> None:
        self.flavor = flavor
        self.made: dict[str, int] = {}
        self._lose = set(lose)

    def _before(self, method: str | bytes) -> bool:
        name = (method.decode() if isinstance(method, bytes) else method).rsplit("/", 1)[-1]
        self.made[name] = self.made.get(name, 0) + 1
        if name in self._lose:
            self._lose.discard(name)
            return True
        return False

    def interceptor(self) -> Any:
        return _AsyncCalls(self) if self.flavor == "async" else _BlockingCalls(self)


class _AsyncCalls(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, calls: Calls) -> None:
        self._calls = calls

    async def intercept_unary_unary(
        self, continuation: Callable[..., Awaitable[Any]], client_call_details: Any, request: Any
    ) -> Any:
        lose = self._calls._before(client_call_details.method)
        call = await continuation(client_call_details, request)
        if lose:
            await call  # the API has acted on it; only the answer goes missing
            raise unavailable_error("async")
        return call


class _BlockingCalls(grpc.UnaryUnaryClientInterceptor):
    def __init__(self, calls: Calls) -> None:
        self._calls = calls

    def intercept_unary_unary(self, continuation: Callable[..., Any], client_call_details: Any, request: Any) -> Any:
        lose = self._calls._before(client_call_details.method)
        outcome = continuation(client_call_details, request)
        if lose:
            outcome.result()
            raise unavailable_error("sync")
        return outcome
