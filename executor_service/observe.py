"""What the executor tells the outside about each run: metrics, the job span and log context.

`JobObserver.run(claim)` is opened around one run of a job (in the worker, around `run_job`):

- every log line of the run carries the job id, tenant, attempt and trace id;
- with tracing on, a job span continues the trace the producer started at Submit (its W3C
  context travels in the stream entry): the span's parent is the Submit span and it also links
  to it; each step becomes a child span (`shared.telemetry.record_step`);
- the run's wait in its lane, its duration and its outcome go to the executor's metrics.

The default observer (no metrics, no tracing) only binds the log context. Nothing here changes
a job or talks to Redis.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, get_current_span

from executor_service.metrics import ExecutorMetrics
from executor_service.store import Claim
from shared import logcontext, telemetry
from shared.clock import now_ms
from shared.model import JobState
from shared.streams import parse_id


@dataclass
class Run:
    """Set `ended` to the state the run ended in (None: the run lost its job)."""

    claim: Claim
    ended: JobState | None = None
    finished: bool = False


def log_fields(claim: Claim) -> dict[str, str]:
    """The job's log context as `extra=` for a line logged outside its run (the claim, …)."""
    job = claim.job
    return {
        "job_id": job.job_id,
        "tenant": job.metadata.tenant_id,
        "attempt": str(job.attempt),
        "trace_id": telemetry.trace_id_of(claim.trace),
    }


def _outcome(run: Run) -> str:
    if not run.finished:
        return "interrupted"  # shutdown cancelled it: handed back, or reclaimed after its lease
    if run.ended is None:
        return "lost"
    return "retrying" if run.ended is JobState.SCHEDULED else run.ended.value


class JobObserver:
    def __init__(self, *, metrics: ExecutorMetrics | None = None, tracing: TracerProvider | None = None) -> None:
        self._metrics = metrics
        self._tracer = tracing.get_tracer("sentinel.executor") if tracing is not None else None

    @contextlib.contextmanager
    def run(self, claim: Claim) -> Iterator[Run]:
        run = Run(claim=claim)
        token = logcontext.bind(log_fields(claim))
        started = time.monotonic()
        outcome = "interrupted"
        if self._metrics is not None:
            waited_ms = max(now_ms() - parse_id(claim.entry_id)[0], 0)
            self._metrics.wait.labels(claim.lane.value).observe(waited_ms / 1000)
        try:
            with self._span(claim) as span:
                try:
                    yield run
                    run.finished = True
                finally:
                    outcome = _outcome(run)
                    if span is not None:
                        span.set_attribute("sentinel.job.outcome", outcome)
                        if outcome not in ("completed", "interrupted"):
                            span.set_status(Status(StatusCode.ERROR, outcome))
        finally:
            logcontext.unbind(token)
            if self._metrics is not None:
                self._record(claim, outcome, time.monotonic() - started)

    @contextlib.contextmanager
    def _span(self, claim: Claim) -> Iterator[Span | None]:
        if self._tracer is None:
            yield None
            return
        parent = telemetry.context_from(claim.trace)
        links = [Link(get_current_span(parent).get_span_context())] if parent is not None else []
        job = claim.job
        with self._tracer.start_as_current_span(
            f"job {job.definition.name}"[:200],
            context=parent,
            kind=SpanKind.CONSUMER,
            links=links,
            attributes={
                "sentinel.job.id": job.job_id,
                "sentinel.job.tenant": job.metadata.tenant_id,
                "sentinel.job.attempt": job.attempt,
                "sentinel.job.lane": claim.lane.value,
            },
        ) as span:
            telemetry.set_job_tracer(self._tracer)
            try:
                yield span
            finally:
                telemetry.set_job_tracer(None)

    def _record(self, claim: Claim, outcome: str, seconds: float) -> None:
        assert self._metrics is not None
        self._metrics.jobs.labels(claim.lane.value, outcome).inc()
        self._metrics.duration.labels(outcome).observe(seconds)
        if outcome == "retrying":
            self._metrics.retries.inc()

    def reclaimed(self, *, claims: int, stalled: int) -> None:
        """Count runs taken over from dead executors, and jobs failed for stalling."""
        if self._metrics is not None:
            self._metrics.reclaims.inc(claims)
            self._metrics.stalled.inc(stalled)
