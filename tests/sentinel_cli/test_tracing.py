"""The CLI's own calls are traced: with the standard OTEL_* variables set, `sentinel` exports a client
span per call over OTLP, and the API's server span continues the same trace.

The OTLP collector is a real gRPC TraceService on a loopback port; the CLI is the real console
script in its own process; the API runs here with an in-memory span exporter.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from api_service.server import ApiServer
from shared.settings import ApiSettings, QueueSettings, RedisSettings
from tests.support import RedisProcess, wait_for

SENTINEL = str(Path(sys.executable).with_name("sentinel"))


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """Keeps every span exported to it, with the service.name of its resource."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, Any]] = []

    async def Export(self, request: Any, context: Any) -> Any:
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                self.spans += [(attributes.get("service.name", ""), span) for span in scope.spans]
        return trace_service_pb2.ExportTraceServiceResponse()


@pytest.fixture
async def collector() -> AsyncIterator[tuple[Collector, int]]:
    server = grpc.aio.server()
    kept = Collector()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(kept, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield kept, port
    finally:
        await server.stop(0)


async def test_cli_calls_export_client_spans_that_the_api_continues(
    redis_server: RedisProcess, collector: tuple[Collector, int]
) -> None:
    kept, port = collector
    spans = InMemorySpanExporter()
    tracing = TracerProvider()
    tracing.add_span_processor(SimpleSpanProcessor(spans))
    api = await ApiServer.start(
        redis=RedisSettings(url=redis_server.url, configured=True),
        queue_settings=QueueSettings(),
        api=ApiSettings(host="127.0.0.1", port=0),
        tracing=tracing,
    )
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTINEL_", "OTEL_"))}
        env |= {
            "SENTINEL_API": f"127.0.0.1:{api.port}",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
        }
        process = await asyncio.create_subprocess_exec(
            SENTINEL, "stats", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode == 0, err.decode()
        assert "health HEALTHY" in out.decode()
    finally:
        await api.stop(0)
        tracing.shutdown()

    # The CLI flushed its spans before it exited.
    method = "/sentinel.v1.QueueAdmin/GetHealth"
    [(service, client)] = [(s, span) for s, span in kept.spans if span.name == method]
    assert service == "sentinel-cli"
    assert client.kind == trace_pb2.Span.SPAN_KIND_CLIENT

    async def server_span() -> Any:
        found = [s for s in spans.get_finished_spans() if s.name == method and s.kind is SpanKind.SERVER]
        return found[0] if found else None

    server = await wait_for(server_span, within=5, what="the API's server span")
    assert server.context.trace_id == int.from_bytes(client.trace_id, "big")
    assert server.parent is not None and server.parent.span_id == int.from_bytes(client.span_id, "big")
