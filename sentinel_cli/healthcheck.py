"""Container health probe: ``python -m sentinel_cli.healthcheck HOST:PORT [SERVICE]``.

Asks a server's standard ``grpc.health.v1.Health/Check`` and exits 0 when the answer is
``SERVING``, 1 for anything else (another status, an RPC error, nothing listening, bad usage),
printing what it saw. Docker, Compose and Kubernetes exec probes call it, so it must stay
synchronous, quick (one RPC, 3 s deadline) and never exit with 2, which Docker reserves.
It must never import the services themselves: a probe that needs Redis or Chromium to start
would report the wrong thing.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shared.edge.tls import channel_credentials, channel_options
from shared.errors import ConfigError
from shared.settings import ClientSettings

DEADLINE_SECONDS = 3.0
EXIT_SERVING = 0
EXIT_UNHEALTHY = 1

USAGE = "usage: python -m sentinel_cli.healthcheck HOST:PORT [SERVICE]"


def check(target: str, service: str = "", *, timeout: float = DEADLINE_SECONDS) -> str:
    """Call Health/Check once and return the serving status name (e.g. ``"SERVING"``).

    Args:
        target: ``host:port`` of the gRPC server.
        service: the service name to ask about; empty means the server as a whole.
        timeout: the RPC deadline in seconds, connection time included.

    Raises:
        grpc.RpcError: the server could not be reached or answered with an error status.
    """
    with _channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))


def _channel(target: str) -> grpc.Channel:
    """Plaintext, or TLS (and mTLS) as SENTINEL_TLS / SENTINEL_TLS_CA / SENTINEL_TLS_CLIENT_* say."""
    settings = ClientSettings.from_env()
    if not settings.tls:
        return grpc.insecure_channel(target)
    return grpc.secure_channel(target, channel_credentials(settings), options=channel_options(settings))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the probe; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(USAGE)
        return EXIT_SERVING
    if not 1 <= len(args) <= 2 or not args[0]:
        print(USAGE, file=sys.stderr)
        return EXIT_UNHEALTHY
    target = args[0]
    service = args[1] if len(args) == 2 else ""
    label = f"{target} {service!r}" if service else target
    try:
        status = check(target, service)
    except ConfigError as exc:
        print(f"{label}: configuration error: {exc}", file=sys.stderr)
        return EXIT_UNHEALTHY
    except grpc.RpcError as exc:
        # A failed RPC raised by grpc is also a grpc.Call carrying the status code and details.
        code = exc.code() if hasattr(exc, "code") else None
        details = exc.details() if hasattr(exc, "details") else str(exc)
        name = code.name if code is not None else "ERROR"
        print(f"{label}: {name}: {details}", file=sys.stderr)
        return EXIT_UNHEALTHY
    print(f"{label}: {status}")
    return EXIT_SERVING if status == "SERVING" else EXIT_UNHEALTHY


if __name__ == "__main__":
    sys.exit(main())
