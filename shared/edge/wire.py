"""Malformed requests answer INVALID_ARGUMENT, not UNKNOWN.

grpc decodes a request before any servicer code runs, and a body that is not valid protobuf
would surface as UNKNOWN ("Unexpected DecodeError"). This interceptor decodes it itself and turns
a failure into a `ValidationError`, mapped like every other error in `shared.edge.status`. A
request whose own enum fields hold a number the enum does not define (proto3 enums are open) is
refused the same way, naming the field, rather than read as "unspecified".
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from shared.edge.convert_enums import refuse_unknown_enums
from shared.edge.handlers import Wrapped
from shared.edge.status import Context, abort
from shared.errors import FieldViolation, ValidationError


@dataclass(frozen=True)
class _Malformed:
    error: ValidationError


def _safe(decode: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if decode is None:
        return None
    has_enums: bool | None = None  # whether the method's request has enum fields of its own

    def decode_or_mark(raw: bytes) -> Any:
        nonlocal has_enums
        try:
            request = decode(raw)
        except DecodeError as exc:
            reason = f"is not a valid protobuf message: {str(exc)[:200]}"
            return _Malformed(ValidationError([FieldViolation("request", reason)]))
        if has_enums is None:
            has_enums = any(f.enum_type is not None for f in request.DESCRIPTOR.fields)
        if has_enums:
            # An enum number this server does not know (a priority, a state filter) is refused here
            # for every method; the enums of the messages inside a submit, where they convert.
            try:
                refuse_unknown_enums((request, ""))
            except ValidationError as exc:
                return _Malformed(exc)
        return request

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
                await abort(context, request.error)
            return await behavior(request, context)

        return grpc.unary_unary_rpc_method_handler(unary, **options)
    streaming_behavior = handler.unary_stream

    async def streaming(request: Any, context: Context) -> AsyncIterator[Any]:
        if isinstance(request, _Malformed):
            await abort(context, request.error)
        async for item in streaming_behavior(request, context):
            yield item

    return grpc.unary_stream_rpc_method_handler(streaming, **options)
