"""The API service: builds the grpc.aio server and runs it until told to stop.

Shutdown (STYLE: saq / grpc graceful-shutdown): health flips to NOT_SERVING, open progress
streams end with UNAVAILABLE so clients reconnect elsewhere with their cursor, then
`server.stop(grace)` lets in-flight unary calls finish.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import grpc
import redis.asyncio as aioredis

from api_service.admin import QueueAdminServicer
from api_service.servicers import TestExecutionServicer
from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from shared.queue import Queue, connect
from shared.serving import SERVER_OPTIONS, HealthReporter, enable_reflection
from shared.settings import ApiSettings, QueueSettings, RedisSettings
from shared.streams import StreamHub

log = logging.getLogger(__name__)

SERVICES = [
    pb.DESCRIPTOR.services_by_name["TestExecution"].full_name,
    pb.DESCRIPTOR.services_by_name["QueueAdmin"].full_name,
]


@dataclass
class ApiServer:
    server: grpc.aio.Server
    port: int
    queue: Queue
    hub: StreamHub
    health: HealthReporter
    reader: aioredis.Redis

    @classmethod
    async def start(cls, *, redis: RedisSettings, queue_settings: QueueSettings, api: ApiSettings) -> ApiServer:
        client = connect(redis)
        queue = Queue.open(client, queue_settings)
        reader = connect(redis, single_connection_client=True, socket_timeout=None)
        hub = StreamHub(reader, client)
        server = grpc.aio.server(options=SERVER_OPTIONS)
        pb_grpc.add_TestExecutionServicer_to_server(TestExecutionServicer(queue, hub), server)
        pb_grpc.add_QueueAdminServicer_to_server(QueueAdminServicer(queue), server)
        health = HealthReporter(server, SERVICES, client)
        enable_reflection(server, SERVICES)
        port = server.add_insecure_port(f"{api.host}:{api.port}")
        if port == 0:
            raise OSError(f"cannot listen on {api.host}:{api.port} (API_GRPC_PORT)")
        try:
            await queue.ensure_groups()
        except Exception as exc:  # Redis down at start: serve NOT_SERVING and keep trying.
            log.warning("redis not reachable at start: %s", exc)
        await hub.start()
        await server.start()
        await health.start()
        log.info("api listening on %s:%d", api.host, port)
        return cls(server=server, port=port, queue=queue, hub=hub, health=health, reader=reader)

    async def stop(self, grace_s: float) -> None:
        await self.health.drain()
        await self.hub.stop()
        await self.server.stop(grace_s)
        await self.reader.aclose()
        await self.queue.redis.aclose()

    async def wait(self) -> None:
        await self.server.wait_for_termination()


async def serve(stop: asyncio.Event, *, redis: RedisSettings, queue_settings: QueueSettings, api: ApiSettings) -> None:
    server = await ApiServer.start(redis=redis, queue_settings=queue_settings, api=api)
    await stop.wait()
    log.info("api stopping")
    await server.stop(api.shutdown_grace_ms / 1000)
