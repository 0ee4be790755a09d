"""Thin gRPC servicers: convert the request, call a plain async function, convert back.

No business logic lives here: validation is `shared.validation`, submits, status, progress,
cancels and lists go to the jobs backend of the execution mode (`shared.direct.backend`: the queue,
direct runs on executors, or both), artifacts are `shared.artifacts`, conversions are
`shared.edge.convert`, and errors become status codes in `shared.edge.status`. Retries and runs
need the queue: without one (SENTINEL_EXECUTION=direct) they answer FAILED_PRECONDITION. Artifacts
find their job through the jobs backend too, so a direct job's are served from the store as well.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from functools import partial

from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from shared import artifacts, dead_letters, runs
from shared.artifact_store import ArtifactStore
from shared.direct.backend import JobsBackend, QueueBackend
from shared.edge import convert
from shared.edge.auth import tenant_of
from shared.edge.status import Context, streaming, to_status, unary
from shared.errors import ConflictError, FieldViolation, SentinelError, ValidationError
from shared.model import ProgressEvent, SubmitCommand
from shared.paging import page_size
from shared.queue import Queue
from shared.sealed import Sealer, seal_run
from shared.streams import StreamHub
from shared.submit_checks import SubmitChecks
from shared.telemetry import producer_traceparent

#: Most jobs one SubmitBatch may carry.
MAX_BATCH = 1000


class TestExecutionServicer(pb_grpc.TestExecutionServicer):
    __test__ = False

    def __init__(
        self,
        queue: Queue | None,
        hub: StreamHub | None,
        sealer: Sealer | None = None,
        *,
        store: ArtifactStore | None = None,
        jobs: JobsBackend | None = None,
    ) -> None:
        """Args:
        queue, hub: the queue (None: none, in SENTINEL_EXECUTION=direct).
        sealer: seals secret fill values (None: secret values are refused).
        store: where the jobs' artifacts are (None: the artifact RPCs answer UNAVAILABLE).
        jobs: where submits, status, progress, cancels and lists go (None: the queue).
        """
        self._queue_or_none = queue
        self._hub_or_none = hub
        self._sealer = sealer
        self._checks = SubmitChecks(sealer)
        self._store = store
        if jobs is None:
            assert queue is not None and hub is not None, "without a jobs backend the queue is the backend"
            jobs = QueueBackend(queue, hub)
        self._jobs = jobs

    @property
    def _queue(self) -> Queue:
        if self._queue_or_none is None:
            raise ConflictError("this needs the queue, and this API runs without one (SENTINEL_EXECUTION=direct)")
        return self._queue_or_none

    @property
    def _hub(self) -> StreamHub:
        if self._hub_or_none is None:
            raise ConflictError("this needs the queue, and this API runs without one (SENTINEL_EXECUTION=direct)")
        return self._hub_or_none

    @unary
    async def Submit(self, request: pb.SubmitRequest, context: Context) -> pb.SubmitResponse:
        raw = request.SerializeToString(deterministic=True)
        command = self._checks.command(raw, partial(convert.submit_from_proto, request))
        submitted = await self._jobs.submit(command, tenant=tenant_of(context), trace=producer_traceparent())
        return pb.SubmitResponse(job_id=submitted.job_id, duplicate=submitted.duplicate)

    @unary
    async def SubmitBatch(self, request: pb.SubmitBatchRequest, context: Context) -> pb.SubmitBatchResponse:
        if len(request.requests) > MAX_BATCH:
            raise ValidationError(
                [FieldViolation("requests", f"at most {MAX_BATCH} jobs per batch, got {len(request.requests)}")]
            )
        items: list[pb.SubmitBatchItem] = []
        valid: list[tuple[int, SubmitCommand]] = []
        # Items that are byte for byte the same (one test submitted many times) are checked once and
        # share one command (`SubmitChecks`); an item in error is checked again each time, so each
        # error names its index.
        for index, item in enumerate(request.requests):
            try:
                command = self._checks.command(
                    item.SerializeToString(deterministic=True),
                    partial(convert.submit_from_proto, item),
                    prefix=f"requests[{index}].",
                )
            except SentinelError as exc:
                status = to_status(exc)
                error = pb.ItemError(code=status.code, message=status.message)
                if isinstance(exc, ValidationError):
                    error.field_violations.extend(convert.violations_to_proto(exc.violations))
                items.append(pb.SubmitBatchItem(index=index, error=error))
                continue
            valid.append((index, command))
        submitted = await self._jobs.submit_many(
            [c for _, c in valid], tenant=tenant_of(context), trace=producer_traceparent()
        )
        for (index, _), done in zip(valid, submitted, strict=True):
            if done.limited:
                status = to_status(self._jobs.limit_error(tenant_of(context)))
                items.append(
                    pb.SubmitBatchItem(index=index, error=pb.ItemError(code=status.code, message=status.message))
                )
            else:
                items.append(pb.SubmitBatchItem(index=index, job_id=done.job_id, duplicate=done.duplicate))
        items.sort(key=lambda i: i.index)
        return pb.SubmitBatchResponse(items=items)

    @unary
    async def Status(self, request: pb.StatusRequest, context: Context) -> pb.Job:
        job = await self._jobs.get_job(request.job_id, tenant=tenant_of(context))
        return convert.job_to_proto(job)

    @streaming
    async def StreamProgress(
        self, request: pb.StreamProgressRequest, context: Context
    ) -> AsyncIterator[pb.ProgressEvent]:
        events = self._jobs.follow(request.job_id, tenant=tenant_of(context), cursor=request.cursor)
        async for event in events:
            yield convert.progress_event_to_proto(event)

    @unary
    async def Cancel(self, request: pb.CancelRequest, context: Context) -> pb.Job:
        job = await self._jobs.cancel(request.job_id, tenant=tenant_of(context))
        return convert.job_to_proto(job)

    @unary
    async def Retry(self, request: pb.RetryRequest, context: Context) -> pb.Job:
        job = await dead_letters.retry_job(
            self._queue,
            request.job_id,
            tenant=tenant_of(context),
            priority=convert.priority_from_proto(request.priority),
        )
        return convert.job_to_proto(job)

    @unary
    async def ListJobs(self, request: pb.ListJobsRequest, context: Context) -> pb.ListJobsResponse:
        page = await self._jobs.list_jobs(
            tenant=tenant_of(context),
            state=convert.state_from_proto(request.state),
            tag=request.tag,
            schedule_id=request.schedule_id,
            page_size=page_size(request.page_size),
            page_token=request.page_token,
        )
        return pb.ListJobsResponse(
            jobs=[convert.job_to_proto(j) for j in page.items], next_page_token=page.next_token, partial=page.partial
        )

    @unary
    async def ListArtifacts(self, request: pb.ListArtifactsRequest, context: Context) -> pb.ListArtifactsResponse:
        found = await artifacts.list_artifacts(self._jobs, self._store, request.job_id, tenant=tenant_of(context))
        return pb.ListArtifactsResponse(artifacts=[convert.artifact_to_proto(a) for a in found])

    @streaming
    async def GetArtifact(self, request: pb.GetArtifactRequest, context: Context) -> AsyncIterator[pb.ArtifactChunk]:
        opened = await artifacts.open_artifact(
            self._jobs, self._store, request.job_id, request.name, tenant=tenant_of(context)
        )
        async with contextlib.aclosing(opened.chunks) as chunks:
            async for chunk in convert.artifact_chunks_to_proto(opened.artifact, chunks):
                yield chunk

    @unary
    async def SubmitRun(self, request: pb.SubmitRunRequest, context: Context) -> pb.SubmitRunResponse:
        command = convert.run_command_from_proto(request)
        runs.validate_run(command)
        command = seal_run(command, self._sealer)
        if request.validate_only:
            return pb.SubmitRunResponse()  # checked as a submit is; nothing stored, no key taken
        done = await runs.submit_run(self._queue, command, tenant=tenant_of(context), trace=producer_traceparent())
        return pb.SubmitRunResponse(run_id=done.run_id, job_ids=done.job_ids, duplicate=done.duplicate)

    @unary
    async def GetRun(self, request: pb.GetRunRequest, context: Context) -> pb.Run:
        return convert.run_to_proto(await runs.get_run(self._queue, request.run_id, tenant=tenant_of(context)))

    @streaming
    async def StreamRun(self, request: pb.StreamRunRequest, context: Context) -> AsyncIterator[pb.RunEvent]:
        async for item in runs.follow_run(self._queue, self._hub, request.run_id, tenant=tenant_of(context)):
            if isinstance(item, ProgressEvent):
                yield pb.RunEvent(progress=convert.progress_event_to_proto(item))
            else:
                yield pb.RunEvent(finished=convert.run_to_proto(item))

    @unary
    async def CancelRun(self, request: pb.CancelRunRequest, context: Context) -> pb.Run:
        return convert.run_to_proto(await runs.cancel_run(self._queue, request.run_id, tenant=tenant_of(context)))
