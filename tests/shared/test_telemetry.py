"""Tracing settings, trace context round trips, and the job context on log lines."""

from __future__ import annotations

import io
import json
import logging

import pytest
from opentelemetry.sdk.trace import TracerProvider

from sentinel_cli.runtime import make_handler
from shared import logcontext, telemetry
from shared.errors import ConfigError
from shared.settings import TelemetrySettings


def test_tracing_is_off_by_default_and_on_with_otlp() -> None:
    assert not TelemetrySettings.from_env({}).enabled
    assert telemetry.tracer_provider(TelemetrySettings.from_env({})) is None
    on = TelemetrySettings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}, service="sentinel-api")
    assert on.enabled and on.endpoint == "http://collector:4317" and on.service_name == "sentinel-api"
    assert TelemetrySettings.from_env({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SERVICE_NAME": "x"}).service_name == "x"
    assert not TelemetrySettings.from_env({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "h"}).enabled
    assert not TelemetrySettings.from_env({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}).enabled
    with pytest.raises(ConfigError, match="OTEL_TRACES_EXPORTER"):
        TelemetrySettings.from_env({"OTEL_TRACES_EXPORTER": "zipkin"})


def test_traceparent_round_trip() -> None:
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert telemetry.trace_id_of(parent) == "0af7651916cd43dd8448eb211c80319c"
    assert telemetry.context_from(parent) is not None
    assert telemetry.context_from("") is None and telemetry.context_from("garbage") is None
    assert telemetry.current_traceparent() == ""  # no span here


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_lines_about_a_job_carry_its_context(fmt: str) -> None:
    out = io.StringIO()
    log = logging.getLogger("tests.job")
    log.addHandler(make_handler(fmt, stream=out))
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        log.info("outside any job")
        token = logcontext.bind({"job_id": "j-1", "tenant": "acme", "attempt": "2", "trace_id": "abc"})
        try:
            log.info("step done")
        finally:
            logcontext.unbind(token)
        log.info("after")
    finally:
        log.handlers.clear()
        log.propagate = True
    lines = out.getvalue().splitlines()
    if fmt == "json":
        records = [json.loads(line) for line in lines]
        assert "job_id" not in records[0] and "job_id" not in records[2]
        assert {k: records[1][k] for k in logcontext.FIELDS} == {
            "job_id": "j-1",
            "tenant": "acme",
            "attempt": "2",
            "trace_id": "abc",
        }
    else:
        assert lines[0].endswith("outside any job") and lines[2].endswith("after")
        assert lines[1].endswith("step done [job=j-1 tenant=acme attempt=2 trace=abc]")


def test_a_job_gets_a_trace_id_even_with_tracing_off() -> None:
    first, second = telemetry.producer_traceparent(), telemetry.producer_traceparent()
    assert first != second
    assert len(telemetry.trace_id_of(first)) == 32 and telemetry.context_from(first) is not None
    provider = TracerProvider()
    with provider.get_tracer("t").start_as_current_span("submit") as span:
        inside = telemetry.producer_traceparent()
    assert telemetry.trace_id_of(inside) == format(span.get_span_context().trace_id, "032x")
    provider.shutdown()
