"""gRPC plumbing both services share: health reporting, reflection, server options.

The health status follows Redis reachability (NOT_SERVING while Redis does not answer PING; a
service that runs without Redis, in SENTINEL_EXECUTION=direct, has none to follow) and the
service's own state (NOT_SERVING once it starts draining). One more name, `liveness`,
answers SERVING for as long as the process serves at all: liveness probes ask it, so a Redis
outage takes pods out of rotation (readiness) without restarting them. An executor also answers
for `direct`: SERVING until it drains, whatever Redis does, since a hybrid API sends it jobs
directly exactly while Redis is away (the readiness of executors a hybrid API reaches through a
Service asks for it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import grpc
import redis.asyncio as aioredis
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from shared.redis_errors import REDIS_OR_OS_ERRORS
from shared.tasks import Periodic

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 4 * 1024 * 1024

#: The grpc.health.v1 service name of liveness probes: SERVING while the process runs, whatever Redis does.
LIVENESS_SERVICE = "liveness"
#: The name an executor answers for its direct runs: SERVING until it drains, whatever Redis does.
DIRECT_SERVICE = "direct"

#: Calls that arrived but that the server has not taken up yet. grpc.aio takes them up one at a time,
#: so a burst (thousands of clients opening progress streams, or reconnecting after a restart) waits
#: here; past gRPC's defaults (1,000, and 3,000 at most) it drops a growing share of them at random,
#: and their clients see CANCELLED. The bound stays, well above the subscribers one API serves.
MAX_PENDING_CALLS = 50_000

SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.server.max_pending_requests", MAX_PENDING_CALLS),
    ("grpc.server.max_pending_requests_hard_limit", 2 * MAX_PENDING_CALLS),
    # gRPC sets SO_REUSEPORT by default: a second server on a port already in use would bind it too and
    # take every other connection. A port in use is refused at start instead, as the HTTP port is.
    ("grpc.so_reuseport", 0),
]


def _run_ids(server: Mapping[str, Any]) -> tuple[str, ...]:
    """The run ids in an `INFO server` answer: one server's, or a cluster client's (by node)."""
    if "run_id" in server:
        return (str(server["run_id"]),)
    return tuple(sorted(str(node.get("run_id", "")) for node in server.values() if isinstance(node, Mapping)))


class HealthReporter:
    """Keeps grpc.health.v1 statuses in line with Redis reachability and draining."""

    def __init__(
        self,
        server: grpc.aio.Server,
        services: Sequence[str],
        redis: aioredis.Redis | None,
        *,
        without_redis: Sequence[str] = (),
        redis_back: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """`services` follow Redis and draining; `without_redis` names follow draining only;
        `redis_back` is awaited when Redis is another server than at the last check (it restarted, or
        another took over), however briefly it was away."""
        self.servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.servicer, server)
        self._services = ["", *services]
        self._without_redis = list(without_redis)
        self._redis = redis
        self._draining = False
        self._redis_ok = False
        self._run: tuple[str, ...] | None = None  # the Redis server(s) last seen: their run ids
        self._redis_back = redis_back
        self._watch: Periodic | None = None

    async def start(self, interval_s: float = 1.0) -> None:
        await self.servicer.set(LIVENESS_SERVICE, health_pb2.HealthCheckResponse.SERVING)
        await self._check()
        self._watch = Periodic("health-watch", self._check, interval_s=interval_s, first_now=False)
        self._watch.start()

    async def drain(self) -> None:
        self._draining = True
        await self._publish()
        if self._watch is not None:
            await self._watch.stop()

    async def _check(self) -> None:
        if self._redis is None:
            self._redis_ok = True
            await self._publish()
            return
        try:
            server = await asyncio.wait_for(self._redis.info("server"), timeout=2)
            ok = True
        except REDIS_OR_OS_ERRORS:
            server, ok = {}, False
        if ok != self._redis_ok:
            log.log(logging.INFO if ok else logging.WARNING, "redis %s", "reachable" if ok else "unreachable")
        # Redis restarted (or another server took over) since the last check, however briefly it was
        # away: what it came back with is to be looked at.
        run = _run_ids(server)
        back = ok and self._run is not None and run != self._run
        if ok:
            self._run = run
        if back and self._redis_back is not None:
            with contextlib.suppress(*REDIS_OR_OS_ERRORS):
                await self._redis_back()
        self._redis_ok = ok
        await self._publish()

    async def _publish(self) -> None:
        for names, serving in (
            (self._services, self._redis_ok and not self._draining),
            (self._without_redis, not self._draining),
        ):
            status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
            for name in names:
                await self.servicer.set(name, status)


def enable_reflection(server: grpc.aio.Server, services: Sequence[str]) -> None:
    reflection.enable_server_reflection([*services, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
