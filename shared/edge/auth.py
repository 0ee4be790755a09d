"""Who is calling a gRPC method: the auth interceptor and the tenant of a request.

`AuthInterceptor` runs before every RPC but health and reflection: it finds the caller's key in
the `authorization: Bearer <key>` metadata, checks it against the key ring (`shared.access`) and
the role the method needs (`METHOD_ROLES`), and keeps the caller for the servicers'
`tenant_of(context)`. With auth disabled (SENTINEL_AUTH=disabled) every caller is tenant `default`
with the operator role. Denials become status codes in `shared.edge.status` like every other error.
Nothing here may log or store a key in clear.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextvars import ContextVar
from typing import Any

import grpc

from shared import access
from shared.access import KeyFile, Keys, Principal, Role
from shared.edge.status import Context, abort
from shared.errors import SentinelError, UnauthenticatedError
from shared.settings import SecuritySettings

__all__ = [
    "METHOD_ROLES",
    "AuthInterceptor",
    "figures_scope",
    "interceptor_for",
    "keyring_for",
    "tenant_of",
]


_EXEC = "/sentinel.v1.TestExecution/"
_ADMIN = "/sentinel.v1.QueueAdmin/"
_EXECUTOR = "/sentinel.v1.Executor/"
_SCHEDULES = "/sentinel.v1.Schedules/"
_ALERTS = "/sentinel.v1.Alerts/"

#: The role each method needs. A method not listed here (and not open) needs ADMIN.
METHOD_ROLES: dict[str, Role] = {
    _EXEC + "Submit": Role.SUBMITTER,
    _EXEC + "SubmitBatch": Role.SUBMITTER,
    _EXEC + "Cancel": Role.SUBMITTER,
    _EXEC + "Retry": Role.SUBMITTER,
    _EXEC + "Status": Role.VIEWER,
    _EXEC + "StreamProgress": Role.VIEWER,
    _EXEC + "ListJobs": Role.VIEWER,
    _EXEC + "ListArtifacts": Role.VIEWER,
    _EXEC + "GetArtifact": Role.VIEWER,
    _EXEC + "SubmitRun": Role.SUBMITTER,
    _EXEC + "CancelRun": Role.SUBMITTER,
    _EXEC + "GetRun": Role.VIEWER,
    _EXEC + "StreamRun": Role.VIEWER,
    _ADMIN + "GetStats": Role.VIEWER,
    _ADMIN + "GetHealth": Role.VIEWER,
    _ADMIN + "WatchEvents": Role.VIEWER,
    _ADMIN + "Pause": Role.OPERATOR,  # the whole queue: every tenant's work stops
    _ADMIN + "Resume": Role.OPERATOR,
    _ADMIN + "ListDeadLetters": Role.ADMIN,
    _ADMIN + "RequeueDeadLetter": Role.ADMIN,
    _ADMIN + "PurgeDeadLetters": Role.ADMIN,
    _ADMIN + "Clean": Role.ADMIN,
    _SCHEDULES + "CreateSchedule": Role.SUBMITTER,
    _SCHEDULES + "UpdateSchedule": Role.SUBMITTER,
    _SCHEDULES + "DeleteSchedule": Role.SUBMITTER,
    _SCHEDULES + "PauseSchedule": Role.SUBMITTER,
    _SCHEDULES + "ResumeSchedule": Role.SUBMITTER,
    _SCHEDULES + "TriggerSchedule": Role.SUBMITTER,
    _SCHEDULES + "GetSchedule": Role.VIEWER,
    _SCHEDULES + "ListSchedules": Role.VIEWER,
    _EXECUTOR + "GetWorkerStatus": Role.VIEWER,
    # An executor serves every tenant: draining it stops everyone's work, and Run takes any
    # tenant's job (and writes its artifacts) as the caller says, so no tenant's admin may.
    _EXECUTOR + "Drain": Role.OPERATOR,
    _EXECUTOR + "Run": Role.OPERATOR,  # the API's own key (SENTINEL_EXECUTOR_API_KEY)
    _ALERTS + "CreateAlertRule": Role.SUBMITTER,
    _ALERTS + "DeleteAlertRule": Role.SUBMITTER,
    _ALERTS + "ListAlertRules": Role.VIEWER,
    _ALERTS + "ListDeliveries": Role.VIEWER,
}

#: Services anyone may call: load balancers and grpcurl need them without a key.
OPEN_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)


_caller: ContextVar[Principal | None] = ContextVar("sentinel_caller", default=None)


def _principal() -> Principal:
    caller = _caller.get()
    if caller is None:
        raise UnauthenticatedError("this call was not authenticated")
    return caller


def tenant_of(context: Context) -> str:
    """The tenant the caller acts for, as the auth interceptor established it.

    Raises:
        UnauthenticatedError: no interceptor vouched for this call (fail closed).
    """
    return _principal().tenant


def figures_scope(context: Context) -> str | None:
    """Whose figures GetStats and GetHealth answer with (`shared.access.figures_scope`).

    Raises:
        UnauthenticatedError: no interceptor vouched for this call (fail closed).
    """
    return access.figures_scope(_principal())


def bearer_key(metadata: Sequence[tuple[str, Any]] | None) -> str:
    """The API key of an `authorization: Bearer <key>` header ("" when there is none)."""
    for name, value in metadata or ():
        if name.lower() == "authorization":
            return access.bearer_key(value.decode("latin-1") if isinstance(value, bytes) else str(value))
    return ""


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates every call but health and reflection, and checks its method's role."""

    def __init__(self, keys: Keys | None) -> None:
        """Args: keys: the key ring; None means auth is disabled (everyone is default/operator)."""
        self._keys = keys

    def authorize(self, method: str, metadata: Sequence[tuple[str, Any]] | None) -> Principal:
        """The caller of `method`, if allowed.

        Raises:
            UnauthenticatedError: no key, or an unknown one.
            PermissionDeniedError: the key's role is below what the method needs.
        """
        return access.authorize(
            self._keys,
            bearer_key(metadata),
            needed=METHOD_ROLES.get(method, Role.ADMIN),
            action=method.rsplit("/", 1)[-1],
            how="the metadata 'authorization: Bearer <key>'",
        )

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method = str(details.method)
        if method.startswith(OPEN_PREFIXES):
            return await continuation(details)
        try:
            principal = self.authorize(method, details.invocation_metadata)
        except SentinelError as exc:
            handler = await continuation(details)
            return _denying(handler, exc) if handler is not None else None
        # The handler runs in this same task, so it sees the caller through `tenant_of`.
        _caller.set(principal)
        handler = await continuation(details)
        if handler is None or not handler.response_streaming or self._keys is None:
            return handler
        return _rechecking(
            handler, lambda: access.still_admitted(principal, self.authorize(method, details.invocation_metadata))
        )


def _rechecking(
    handler: grpc.RpcMethodHandler[Any, Any], admit: Callable[[], object]
) -> grpc.RpcMethodHandler[Any, Any]:
    """`handler`, its stream ending with the caller's key: before each message its key is checked
    again, so a key taken out of the keys file (or given a lower role) gets nothing more, and the
    stream ends UNAUTHENTICATED (or PERMISSION_DENIED)."""
    # Sentinel's streaming methods are async generators (`shared.edge.status.streaming`).
    behavior: Callable[[Any, Context], AsyncGenerator[Any]] = handler.unary_stream or handler.stream_stream  # type: ignore[assignment]

    async def streaming(request: Any, context: Context) -> Any:
        async with contextlib.aclosing(behavior(request, context)) as messages:
            async for message in messages:
                try:
                    admit()
                except SentinelError as exc:
                    await abort(context, exc)
                yield message

    options = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(streaming, **options)
    return grpc.stream_stream_rpc_method_handler(streaming, **options)


def _denying(handler: grpc.RpcMethodHandler[Any, Any], exc: SentinelError) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same shape as `handler` that fails with `exc`'s status, running nothing."""

    async def unary(request: Any, context: Context) -> Any:
        await abort(context, exc)

    async def streaming(request: Any, context: Context) -> Any:
        await abort(context, exc)
        yield  # pragma: no cover - makes this an async generator

    options = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(unary, **options)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(streaming, **options)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(unary, **options)
    return grpc.stream_stream_rpc_method_handler(streaming, **options)


def keyring_for(security: SecuritySettings) -> Keys | None:
    """The keys of these settings, loaded (and checked) from the keys file, which is read again when
    it changes (`shared.access.KeyFile`); None: auth is disabled."""
    return None if security.auth_disabled else KeyFile(security.keys_file)


def interceptor_for(security: SecuritySettings) -> AuthInterceptor:
    """The interceptor for these settings; loads (and checks) the keys file."""
    return AuthInterceptor(keyring_for(security))
