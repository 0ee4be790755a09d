"""The CLI's gRPC client side: submit a definition file, follow its progress, show results."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncGenerator, AsyncIterable, Callable
from contextvars import ContextVar
from typing import TextIO, TypeVar

import grpc
from opentelemetry.sdk.trace import TracerProvider

from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from sentinel_cli import recorder
from shared.edge.tls import open_channel
from shared.settings import ClientSettings
from shared.telemetry import client_interceptors

T = TypeVar("T")

TERMINAL = {pb.JOB_STATE_COMPLETED, pb.JOB_STATE_FAILED, pb.JOB_STATE_TIMEOUT, pb.JOB_STATE_CANCELLED}
PRIORITIES = {"high": pb.PRIORITY_HIGH, "medium": pb.PRIORITY_MEDIUM, "low": pb.PRIORITY_LOW}


def state_name(state: int) -> str:
    return str(pb.JobState.Name(state)).removeprefix("JOB_STATE_")


#: The CLI's tracer provider while a command runs (None: tracing is off); `main` sets it from OTEL_*.
TRACING: ContextVar[TracerProvider | None] = ContextVar("sentinel_cli_tracing", default=None)


def channel(address: str) -> grpc.aio.Channel:
    """A channel to the API at `address`, with TLS and the API key as SENTINEL_TLS* / SENTINEL_API_KEY say,
    and a client span for every call when tracing is on (its context travels to the API's server span)."""
    return open_channel(ClientSettings.from_env(), address, interceptors=client_interceptors(TRACING.get()))


def load_request(path: str, priority: str | None) -> pb.SubmitRequest:
    with open(path, encoding="utf-8") as f:
        request = recorder.load_submit_file(f.read())
    if priority:
        request.options.priority = PRIORITIES[priority]
    return request


class ProgressView:
    """Renders progress events: a live bar on a terminal, one line per change otherwise."""

    def __init__(self, out: TextIO, *, label: str = "") -> None:
        self._out = out
        self._tty = out.isatty()
        self._label = f"{label} " if label else ""
        self._last = ""

    def show(self, event: pb.ProgressEvent) -> None:
        p = event.progress
        filled = p.percentage * 30 // 100
        bar = "█" * filled + "░" * (30 - filled)
        steps = f" step {p.current_step}/{p.total_steps}" if p.total_steps else ""
        line = f"{self._label}[{bar}] {p.percentage:3d}% {state_name(event.state):<9}{steps}  {p.message}"
        if self._tty:
            self._out.write("\r\x1b[2K" + line[:160])
            if event.terminal:
                self._out.write("\n")
        elif line != self._last:
            self._out.write(line + "\n")
        self._last = line
        self._out.flush()


async def resumable(
    open_stream: Callable[[str], AsyncIterable[T]],
    cursor_of: Callable[[T], str],
    *,
    cursor: str = "",
    reconnect_deadline_s: float = 60.0,
) -> AsyncGenerator[T, None]:
    """Items of a server stream, reopened from the last item's cursor whenever the server goes away.

    Gives up (re-raising UNAVAILABLE) when no item arrived for `reconnect_deadline_s`; the stream's
    own end ends the iteration.
    """
    loop = asyncio.get_running_loop()
    retry_until = 0.0
    while True:
        try:
            async for item in open_stream(cursor):
                cursor = cursor_of(item) or cursor
                retry_until = 0.0
                yield item
            return
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            retry_until = retry_until or loop.time() + reconnect_deadline_s
            if loop.time() > retry_until:
                raise
            await asyncio.sleep(0.5)


async def follow(
    stub: pb_grpc.TestExecutionStub,
    job_id: str,
    on_event: Callable[[pb.ProgressEvent], None],
    *,
    reconnect_deadline_s: float = 60.0,
) -> None:
    """Stream a job's progress to its end, reconnecting with the last cursor when the server goes away."""
    events = resumable(
        lambda cursor: stub.StreamProgress(pb.StreamProgressRequest(job_id=job_id, cursor=cursor)),
        lambda event: str(event.cursor),
        reconnect_deadline_s=reconnect_deadline_s,
    )
    async with contextlib.aclosing(events):
        async for event in events:
            on_event(event)
            if event.terminal:
                return


def render_result(job: pb.Job, out: TextIO) -> None:
    """A per-step table with each step's evidence, a one-line verdict, and how to fetch the artifacts."""
    result = job.result
    out.write(f"\nJob {job.job_id} — {state_name(job.state)} (attempt {job.attempt} of {job.max_attempts})\n")
    if result.steps:
        width = max(len(s.name) for s in result.steps)
        width = min(max(width, 4), 60)
        out.write(f"  {'#':>3}  {'step':<{width}}  {'result':<7}  {'time':>8}\n")
        for s in result.steps:
            verdict = "skipped" if s.skipped else ("ok" if s.success else "FAILED")
            out.write(f"  {s.index + 1:>3}  {s.name[:width]:<{width}}  {verdict:<7}  {s.duration_ms:>6}ms\n")
            if s.error:
                out.write(f"       ↳ {s.error}\n")
            evidence = (("artifact", s.artifacts), ("console", s.console_errors), ("request", s.failed_requests))
            for label, lines in evidence:
                for line in lines:
                    out.write(f"       ↳ {label}: {line}\n")
    if result.execution_time_ms:
        out.write(f"  executed in {result.execution_time_ms} ms on {result.worker_id}\n")
    if job.error.message and not result.steps:
        out.write(f"  error ({convert_category(job.error.category)}): {job.error.message}\n")
    for note in result.artifact_notes:
        out.write(f"  note: {note}\n")
    names = {*result.artifacts, *(a for s in result.steps for a in s.artifacts)}
    if names:
        out.write(f"  artifacts: sentinel artifacts {job.job_id}\n")
    if any(name.endswith("/trace.zip") for name in names):
        out.write(f"  trace:     sentinel trace {job.job_id}\n")


def convert_category(category: int) -> str:
    return str(pb.ErrorCategory.Name(category)).removeprefix("ERROR_CATEGORY_").lower()


async def submit_and_follow(address: str, path: str, *, priority: str | None, follow_progress: bool) -> int:
    """`sentinel submit`: 0 when submitted (or, with --follow, when the test passed), else 1."""
    return await submit_request(address, load_request(path, priority), follow_progress=follow_progress)


async def submit_request(address: str, request: pb.SubmitRequest, *, follow_progress: bool) -> int:
    """Submit `request`; with `follow_progress`, show its progress and result (0 = it passed)."""
    async with channel(address) as ch:
        stub = pb_grpc.TestExecutionStub(ch)
        reply = await stub.Submit(request, timeout=30)
        print(f"submitted {reply.job_id}{' (duplicate of an earlier submit)' if reply.duplicate else ''}")
        if not follow_progress:
            return 0
        view = ProgressView(sys.stdout)
        await follow(stub, reply.job_id, view.show)
        job = await stub.Status(pb.StatusRequest(job_id=reply.job_id), timeout=30)
        render_result(job, sys.stdout)
        return 0 if job.state == pb.JOB_STATE_COMPLETED else 1


async def show_status(address: str, job_id: str) -> int:
    async with channel(address) as ch:
        stub = pb_grpc.TestExecutionStub(ch)
        job = await stub.Status(pb.StatusRequest(job_id=job_id), timeout=30)
        p = job.progress
        print(f"{job.job_id}  {state_name(job.state)}  {p.percentage}%  {p.message}")
        if job.state in TERMINAL:
            render_result(job, sys.stdout)
        return 0


async def cancel_job(address: str, job_id: str) -> int:
    async with channel(address) as ch:
        job = await pb_grpc.TestExecutionStub(ch).Cancel(pb.CancelRequest(job_id=job_id), timeout=30)
        print(f"{job.job_id}  {state_name(job.state)}")
        return 0
