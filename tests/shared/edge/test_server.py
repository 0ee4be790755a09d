"""The gRPC server every Sentinel service builds (`shared.edge.server`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import CollectorRegistry

from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from shared.edge import server as edge_server
from shared.settings import SecuritySettings


async def test_each_call_is_taken_up_by_waiting_on_one_pending_call_not_one_per_method(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """grpc.aio's accept loop `asyncio.wait`s on one pending call per registered method for every call
    it takes up (~35 methods here). The server serves its methods through the generic handlers alone,
    so the loop waits on one, and every call is still answered."""
    waited: list[int] = []
    real_wait = asyncio.wait

    def counting_wait(fs: Iterable[Awaitable[Any]], **kwargs: Any) -> Any:
        fs = list(fs)
        waited.append(len(fs))
        return real_wait(fs, **kwargs)

    monkeypatch.setattr(asyncio, "wait", counting_wait)
    server = edge_server.build(registry=CollectorRegistry(), tracing=None, security=SecuritySettings())
    pb_grpc.add_TestExecutionServicer_to_server(pb_grpc.TestExecutionServicer(), server)  # type: ignore[abstract]
    pb_grpc.add_QueueAdminServicer_to_server(pb_grpc.QueueAdminServicer(), server)  # type: ignore[abstract]
    health, port = edge_server.open_port(
        server,
        services=["sentinel.v1.TestExecution"],
        redis=None,
        host="127.0.0.1",
        port=0,
        security=SecuritySettings(),
        variable="API_GRPC_PORT",
    )
    await server.start()
    await health.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            checks = [health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest()) for _ in range(5)]
            answers = await asyncio.wait_for(asyncio.gather(*checks), timeout=20)
            with pytest.raises(grpc.aio.AioRpcError) as unimplemented:  # the servicer's own default answer
                await pb_grpc.QueueAdminStub(channel).GetStats(pb.GetStatsRequest(), timeout=20)
    finally:
        await server.stop(None)
    assert [a.status for a in answers] == [health_pb2.HealthCheckResponse.SERVING] * 5
    assert unimplemented.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert len(waited) >= 6  # the accept loop's wait, once per call taken up
    assert max(waited) == 1


async def test_a_second_server_on_a_port_in_use_is_refused_naming_why_and_the_setting() -> None:
    """gRPC sets SO_REUSEPORT by default: a second server (an API started twice, an executor on the
    API's port) would bind the same port and take every other connection. It is refused instead."""
    first = edge_server.build(registry=CollectorRegistry(), tracing=None, security=SecuritySettings())
    second = edge_server.build(registry=CollectorRegistry(), tracing=None, security=SecuritySettings())

    def open_port(server: grpc.aio.Server, port: int, variable: str) -> int:
        _, bound = edge_server.open_port(
            server,
            services=["sentinel.v1.TestExecution"],
            redis=None,
            host="127.0.0.1",
            port=port,
            security=SecuritySettings(),
            variable=variable,
        )
        return bound

    port = open_port(first, 0, "A_PORT")
    await first.start()
    try:
        with pytest.raises(
            OSError, match=rf"^cannot listen on 127\.0\.0\.1:{port}: Address already in use \(B_PORT\)$"
        ):
            open_port(second, port, "B_PORT")
    finally:
        await first.stop(None)
