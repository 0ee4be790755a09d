"""The one place Sentinel errors become gRPC status codes.

Servicers wrap their methods with `unary` / `streaming`; anything from the exception tree in
`shared.errors` (and Redis being unreachable) is turned into a status with a clear message. Which
code each error gets is decided by name in `shared.edge.codes`, shared with the HTTP front door.
Field violations travel as a `google.rpc.BadRequest` detail so clients can point at the field.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn, TypeAlias, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from shared.edge.codes import code_name, message_for, retry_pushback_ms
from shared.errors import ValidationError

log = logging.getLogger(__name__)

#: The trailer in which a server tells a client how long to wait before it retries (negative: never).
PUSHBACK = "grpc-retry-pushback-ms"

Req = TypeVar("Req")
Resp = TypeVar("Resp")

#: A call's context as servicers and the edge take it. grpc.aio's is generic over the request and response
#: types; code here handles every method alike, and a servicer's own signature already names them.
#: (A string: grpc.aio.ServicerContext cannot be subscripted at run time.)
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


def code_for(exc: BaseException) -> grpc.StatusCode:
    """The gRPC status code of `exc`, by the name `shared.edge.codes` gives it."""
    return grpc.StatusCode[code_name(exc)]


def to_status(exc: BaseException) -> status_pb2.Status:
    """A google.rpc.Status for `exc`, with a BadRequest detail for field violations."""
    code = code_for(exc)
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=message_for(exc))
    if isinstance(exc, ValidationError):
        detail = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                for v in exc.violations
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(detail)
        status.details.append(packed)
    return status


async def abort(context: Context, exc: BaseException) -> NoReturn:
    if code_for(exc) is grpc.StatusCode.INTERNAL:
        log.exception("unexpected error", exc_info=exc)
    status = rpc_status.to_status(to_status(exc))
    pushback = retry_pushback_ms(exc)
    if pushback is not None:  # gRPC's own way to tell a client not to retry (gRFC A6), read by the SDK
        status = status._replace(trailing_metadata=(*status.trailing_metadata, (PUSHBACK, str(pushback))))
    await context.abort_with_status(status)
    raise AssertionError("unreachable")  # abort_with_status always raises


def unary(
    method: Callable[[Any, Req, Context], Awaitable[Resp]],
) -> Callable[[Any, Req, Context], Awaitable[Resp]]:
    @functools.wraps(method)
    async def wrapper(self: Any, request: Req, context: Context) -> Resp:
        try:
            return await method(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await abort(context, exc)

    return wrapper


def streaming(
    method: Callable[[Any, Req, Context], AsyncIterator[Resp]],
) -> Callable[[Any, Req, Context], AsyncIterator[Resp]]:
    @functools.wraps(method)
    async def wrapper(self: Any, request: Req, context: Context) -> AsyncIterator[Resp]:
        try:
            async for item in method(self, request, context):
                yield item
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await abort(context, exc)

    return wrapper
