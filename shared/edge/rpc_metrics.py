"""A grpc.aio server interceptor counting calls and timing them, by method and status code.

Installed first on both services' servers so it sees the status a servicer aborted with (the
`shared.edge.status` wrapper aborts with the mapped code). Streaming calls are timed to their end.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram

from shared.edge.handlers import Wrapped

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def _code(context: Any, default: str) -> str:
    try:
        code = context.code()
    except Exception:
        return default
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    return default if code is None else str(code)


class RpcMetricsInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, registry: CollectorRegistry) -> None:
        self.calls = Counter(
            "sentinel_rpc_requests", "gRPC calls handled", ["service", "method", "code"], registry=registry
        )
        self.latency = Histogram(
            "sentinel_rpc_duration_seconds",
            "Time to handle a gRPC call (a stream: to its end)",
            ["service", "method"],
            registry=registry,
            buckets=_BUCKETS,
        )
        self._wrapped = Wrapped()
        self._series: dict[tuple[str, str], tuple[Counter, Histogram]] = {}

    def _record(self, method: str, context: Any, started: float, default: str) -> None:
        code = _code(context, default)
        series = self._series.get((method, code))
        if series is None:  # each method's and code's children, looked up once
            service, _, name = method.lstrip("/").partition("/")
            series = self._series[method, code] = (
                self.calls.labels(service, name, code),
                self.latency.labels(service, name),
            )
        calls, latency = series
        calls.inc()
        latency.observe(time.perf_counter() - started)

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], handler_call_details: Any) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = str(handler_call_details.method)
        return self._wrapped.get(method, handler, lambda below: self._wrap(method, below))

    def _wrap(self, method: str, handler: Any) -> Any:
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None and inspect.isasyncgenfunction(handler.unary_stream):
            return grpc.unary_stream_rpc_method_handler(
                self._stream(method, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _unary(self, method: str, behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def unary(request: Any, context: Any) -> Any:
            started = time.perf_counter()
            outcome = "UNKNOWN"
            try:
                reply = await behavior(request, context)
                outcome = "OK"
                return reply
            except asyncio.CancelledError:
                outcome = "CANCELLED"
                raise
            finally:
                self._record(method, context, started, outcome)

        return unary

    def _stream(self, method: str, behavior: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
        async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
            started = time.perf_counter()
            outcome = "UNKNOWN"
            try:
                async for item in behavior(request, context):
                    yield item
                outcome = "OK"
            except (asyncio.CancelledError, GeneratorExit):
                outcome = "CANCELLED"  # the client went away
                raise
            finally:
                self._record(method, context, started, outcome)

        return stream
