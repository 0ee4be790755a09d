"""Tracing: OpenTelemetry set-up, W3C trace context in and out of stream entries, step spans.

Off unless the standard OTEL_* variables switch it on (`TelemetrySettings`); then spans go to the
OTLP exporter. The producer's context travels as a W3C `traceparent` string in the job hash and
every lane entry (submit, promote, requeue and release carry it), so the executor's job span
continues the trace that started at Submit, however often the job was retried or delayed.

Nothing here reads the environment itself, and with tracing off every helper is a cheap no-op.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared.settings import TelemetrySettings

_PROPAGATOR = TraceContextTextMapPropagator()
#: The tracer of the job running in this task (set by the executor around a run), for step spans.
_job_tracer: ContextVar[Tracer | None] = ContextVar("sentinel_job_tracer", default=None)


@contextlib.contextmanager
def tracing_from_env(service: str) -> Iterator[TracerProvider | None]:
    """A service's tracer provider for its lifetime, from the OTEL_* variables (None: tracing off);
    flushes and shuts it down at the end."""
    provider = tracer_provider(TelemetrySettings.from_env(service=service))
    try:
        yield provider
    finally:
        if provider is not None:
            provider.shutdown()


def tracer_provider(settings: TelemetrySettings) -> TracerProvider | None:
    """A provider exporting over OTLP when tracing is on, else None."""
    if not settings.enabled:
        return None
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.endpoint or None)))
    return provider


def server_interceptors(provider: TracerProvider | None) -> list[Any]:
    """gRPC server span interceptors for `grpc.aio.server(interceptors=...)` (none when tracing is off)."""
    if provider is None:
        return []
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    return [aio_server_interceptor(tracer_provider=provider)]  # type: ignore[no-untyped-call]


def client_interceptors(provider: TracerProvider | None) -> list[Any]:
    """gRPC client span interceptors for `grpc.aio.insecure_channel(interceptors=...)`."""
    if provider is None:
        return []
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    return list(aio_client_interceptors(tracer_provider=provider))  # type: ignore[no-untyped-call]


def current_traceparent() -> str:
    """The W3C traceparent of the current span ('' when there is none)."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent", "")


def producer_traceparent() -> str:
    """The traceparent a new job carries: the current span's, or a fresh trace id when there is
    none (tracing off), so the job's log lines in every service still share one trace id."""
    current = current_traceparent()
    if current:
        return current
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def context_from(traceparent: str) -> Context | None:
    """The remote context a stored traceparent names, or None when it names none."""
    if not traceparent:
        return None
    ctx = _PROPAGATOR.extract({"traceparent": traceparent})
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


def trace_id_of(traceparent: str) -> str:
    """The 32-hex trace id inside a traceparent ('' when malformed)."""
    parts = traceparent.split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else ""


def set_job_tracer(tracer: Tracer | None) -> None:
    """Make `tracer` the one `record_step` uses in this task (and the tasks it starts)."""
    _job_tracer.set(tracer)


def record_step(index: int, name: str, *, duration_ms: int, error: str = "") -> None:
    """A step that just ended as a child span of the current job span (nothing when tracing is off).

    Recorded after the fact with the step's real start and end, so the runner needs no span
    bookkeeping around each action (and a cancelled step leaves no span open).
    """
    tracer = _job_tracer.get()
    if tracer is None:
        return
    end_ns = time.time_ns()
    span = tracer.start_span(
        f"step {index + 1}: {name}"[:200],
        start_time=end_ns - duration_ms * 1_000_000,
        attributes={"sentinel.step.index": index, "sentinel.step.outcome": "failed" if error else "passed"},
    )
    if error:
        span.set_status(Status(StatusCode.ERROR, error[:500]))
    span.end(end_time=end_ns)
