"""One way to build and open a Sentinel gRPC server, for the API and the executor alike.

Every Sentinel server runs the same interceptors in the same order — RPC metrics, tracing spans,
API keys and roles, then request decoding (malformed bytes answer INVALID_ARGUMENT) — serves
health and reflection, and listens with TLS when it is configured. A service only adds its
servicers between `build` and `open`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable, Sequence

import grpc
import redis.asyncio as aioredis
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from shared.edge.auth import interceptor_for
from shared.edge.rpc_metrics import RpcMetricsInterceptor
from shared.edge.serving import SERVER_OPTIONS, HealthReporter, enable_reflection
from shared.edge.tls import listen
from shared.edge.wire import MalformedRequestInterceptor
from shared.settings import SecuritySettings
from shared.telemetry import server_interceptors


def build(
    *, registry: CollectorRegistry, tracing: TracerProvider | None, security: SecuritySettings
) -> grpc.aio.Server:
    """A server with Sentinel's interceptors; add servicers to it, then call `open`."""
    interceptors = [
        RpcMetricsInterceptor(registry),
        *server_interceptors(tracing),
        interceptor_for(security),
        MalformedRequestInterceptor(),
    ]
    server = grpc.aio.server(options=SERVER_OPTIONS, interceptors=interceptors)
    # Every generated `add_*Servicer_to_server` adds its methods twice: as a generic handler and as
    # "registered" methods. grpc.aio's accept loop keeps one pending call future per registered
    # method and `asyncio.wait`s on all of them for every call it takes up: ~35 methods made ~400
    # Python calls of bookkeeping per RPC, most of a health check's Python work. Served through the
    # generic handlers alone, the loop waits on one future; the methods and answers are the same.
    server.add_registered_method_handlers = _not_registered  # type: ignore[method-assign]
    return server


def _not_registered(service_name: str, method_handlers: object) -> None:
    """Registered methods are left out: the generic handler added beside them serves each call."""


def open_port(
    server: grpc.aio.Server,
    *,
    services: Sequence[str],
    redis: aioredis.Redis | None,
    host: str,
    port: int,
    security: SecuritySettings,
    variable: str,
    without_redis: Sequence[str] = (),
    redis_back: Callable[[], Awaitable[None]] | None = None,
) -> tuple[HealthReporter, int]:
    """Add health and reflection for `services` (and the health names `without_redis`, which
    follow draining only) and listen on `host:port`.

    Returns:
        The health reporter (start it once the server runs) and the bound port.

    Raises:
        OSError: the port cannot be opened; the message names `variable`, the setting to change.
        ConfigError: a TLS file is unreadable, holds no PEM, or its key is another's or encrypted.
    """
    health = HealthReporter(server, services, redis, without_redis=without_redis, redis_back=redis_back)
    enable_reflection(server, services)
    bound = listen(server, host, port, security.tls)
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port}: {_bind_error(host, port)} ({variable})")
    return health, bound


def _bind_error(host: str, port: int) -> str:
    """Why `host:port` cannot be bound, as the system says it ("Address already in use"); gRPC
    only says that it failed."""
    try:
        with socket.create_server((host.strip("[]"), port)):
            return "gRPC could not bind it"
    except OSError as exc:
        return os.strerror(exc.errno) if exc.errno else str(exc)
