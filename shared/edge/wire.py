"""Malformed requests answer INVALID_ARGUMENT, not UNKNOWN.

grpc decodes a request before any servicer code runs, and a body that is not valid protobuf
would surface as UNKNOWN ("Unexpected DecodeError"). This interceptor decodes it itself and turns
a failure into a `ValidationError`, mapped like every other error in `shared.edge.status`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from shared.edge.handlers import Wrapped
from shared.edge.status import Context, abort
from shared.errors import FieldViolation, ValidationError


@dataclass(frozen=True)
class _Malformed:
    reason: str


def _invalid(malformed: _Malformed) -> ValidationError:
    return ValidationError([FieldViolation("request", f"is not a valid protobuf message: {malformed.reason[:200]}")])


def _safe(decode: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if decode is None:
        return None

    def decode_or_mark(raw: bytes) -> Any:
        try:
            return decode(raw)
        except DecodeError as exc:
            return _Malformed(str(exc))

    return decode_or_mark


class MalformedRequestInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self) -> None:
        self._wrapped = Wrapped()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        typed = await continuation(details)
        # Only Sentinel's own services: their streaming methods are async generators.
        if typed is None or typed.request_streaming or not str(details.method).startswith("/sentinel.v1."):
            return typed
        return self._wrapped.get(str(details.method), typed, _checking)


def _checking(typed: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
    """`typed` with its request decoded here: a malformed one is refused before the servicer runs."""
    # The stubs type a handler's behaviours as sync functions; grpc.aio's are coroutine
    # functions and async generators, so from here on the handler is used untyped.
    handler: Any = typed
    options = {"request_deserializer": _safe(handler.request_deserializer)}
    options["response_serializer"] = handler.response_serializer
    if handler.unary_unary is not None:
        behavior = handler.unary_unary

        async def unary(request: Any, context: Context) -> Any:
            if isinstance(request, _Malformed):
                await abort(context, _invalid(request))
            return await behavior(request, context)

        return grpc.unary_unary_rpc_method_handler(unary, **options)
    streaming_behavior = handler.unary_stream

    async def streaming(request: Any, context: Context) -> AsyncIterator[Any]:
        if isinstance(request, _Malformed):
            await abort(context, _invalid(request))
        async for item in streaming_behavior(request, context):
            yield item

    return grpc.unary_stream_rpc_method_handler(streaming, **options)
