"""The QueueAdmin servicer (thin): stats, health, pause/resume, events, clean and dead letters.

Each method converts, calls a plain async function (`shared.stats`, `shared.queue_health`,
`shared.pausing`, `shared.events`, `shared.retention`, `shared.dead_letters`) and converts back.
A request's `queue` must be empty or this server's queue: one API serves one queue.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from google.protobuf.message import Message

from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from shared import dead_letters, pausing, queue_health, retention
from shared.artifact_store import ArtifactStore
from shared.edge import convert
from shared.edge.auth import figures_scope, tenant_of
from shared.edge.convert_admin import event_to_proto, health_to_proto, stats_to_proto
from shared.edge.status import Context, abort, streaming, unary
from shared.errors import ConflictError, FieldViolation, NotFoundError, ValidationError
from shared.events import follow_events
from shared.model import JobState
from shared.paging import page_size
from shared.queue import Queue
from shared.stats import get_stats
from shared.streams import StreamHub


class QueueAdminServicer(pb_grpc.QueueAdminServicer):
    def __init__(self, queue: Queue, hub: StreamHub, *, store: ArtifactStore | None = None) -> None:
        """Args: store: where the jobs' artifacts are; Clean deletes those of the jobs it removes."""
        self._queue = queue
        self._hub = hub
        self._store = store

    def _check_queue(self, name: str) -> None:
        if name and name != self._queue.settings.name:
            raise NotFoundError(f"queue {name!r} not found; this server serves {self._queue.settings.name!r}")

    @unary
    async def GetStats(self, request: pb.GetStatsRequest, context: Context) -> pb.QueueStats:
        self._check_queue(request.queue)
        return stats_to_proto(await get_stats(self._queue, tenant=figures_scope(context)))

    @unary
    async def GetHealth(self, request: pb.GetHealthRequest, context: Context) -> pb.QueueHealth:
        self._check_queue(request.queue)
        return health_to_proto(await queue_health.assess(self._queue, tenant=figures_scope(context)))

    @unary
    async def Pause(self, request: pb.PauseRequest, context: Context) -> pb.QueueState:
        self._check_queue(request.queue)
        await pausing.pause(self._queue)
        return pb.QueueState(queue=self._queue.settings.name, paused=True)

    @unary
    async def Resume(self, request: pb.ResumeRequest, context: Context) -> pb.QueueState:
        self._check_queue(request.queue)
        await pausing.resume(self._queue)
        return pb.QueueState(queue=self._queue.settings.name, paused=False)

    @streaming
    async def WatchEvents(self, request: pb.WatchEventsRequest, context: Context) -> AsyncIterator[pb.QueueEvent]:
        states = [convert.state_from_proto(s) for s in request.states]
        if any(s is None for s in states):
            raise ValidationError([FieldViolation("states", "must be job states other than UNSPECIFIED")])
        events = follow_events(
            self._queue,
            self._hub,
            states=[s for s in states if s is not None],
            kinds=list(request.kinds),
            tag=request.tag,
            cursor=request.cursor,
            tenant=tenant_of(context),
        )
        async for event in events:
            yield event_to_proto(event)

    @unary
    async def Clean(self, request: pb.CleanRequest, context: Context) -> pb.CleanResponse:
        state = convert.state_from_proto(request.state)
        if state is not None and not state.terminal:
            finished = ", ".join(s.name for s in JobState if s.terminal)
            raise ValidationError([FieldViolation("state", f"must be a finished state ({finished}) or unspecified")])
        removed = await retention.clean(
            self._queue,
            state=state,
            older_than_ms=request.older_than_ms,
            limit=request.limit,
            tenant=tenant_of(context),
            store=self._store,
        )
        return pb.CleanResponse(removed=removed)

    @unary
    async def ListDeadLetters(self, request: pb.ListDeadLettersRequest, context: Context) -> pb.ListDeadLettersResponse:
        page = await dead_letters.list_dead_letters(
            self._queue,
            tenant=tenant_of(context),
            category=convert.error_category_from_proto(request.category),
            tag=request.tag,
            page_size=page_size(request.page_size),
            page_token=request.page_token,
        )
        return pb.ListDeadLettersResponse(
            dead_letters=[convert.dead_letter_to_proto(j) for j in page.items], next_page_token=page.next_token
        )

    @unary
    async def RequeueDeadLetter(self, request: pb.RequeueDeadLetterRequest, context: Context) -> pb.Job:
        job = await dead_letters.requeue_dead_letter(
            self._queue,
            request.job_id,
            tenant=tenant_of(context),
            priority=convert.priority_from_proto(request.priority),
        )
        return convert.job_to_proto(job)

    @unary
    async def PurgeDeadLetters(
        self, request: pb.PurgeDeadLettersRequest, context: Context
    ) -> pb.PurgeDeadLettersResponse:
        purged = await dead_letters.purge_dead_letters(
            self._queue, tenant=tenant_of(context), older_than_ms=request.older_than_ms
        )
        return pb.PurgeDeadLettersResponse(purged=purged)


def without_queue(service_name: str, reason: str) -> grpc.GenericRpcHandler:
    """The service `service_name` (QueueAdmin, Schedules, Alerts) for an API with no queue
    (SENTINEL_EXECUTION=direct): every method answers FAILED_PRECONDITION with `reason`, after the
    same auth as always."""
    service = pb.DESCRIPTOR.services_by_name[service_name]

    async def refuse(request: Message, context: Context) -> Message:
        await abort(context, ConflictError(reason))
        raise AssertionError("unreachable")

    async def refuse_stream(request: Message, context: Context) -> AsyncIterator[Message]:
        await abort(context, ConflictError(reason))
        yield request  # never reached: abort raises

    handlers: dict[str, grpc.RpcMethodHandler[Message, Message]] = {}
    for method in service.methods:
        request_type = getattr(pb, method.input_type.name)
        serialize = Message.SerializeToString
        if method.server_streaming:
            handlers[method.name] = grpc.unary_stream_rpc_method_handler(
                refuse_stream, request_deserializer=request_type.FromString, response_serializer=serialize
            )
        else:
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                refuse, request_deserializer=request_type.FromString, response_serializer=serialize
            )
    return grpc.method_handlers_generic_handler(service.full_name, handlers)
