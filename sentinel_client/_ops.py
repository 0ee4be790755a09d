"""Every RPC the SDK makes, described once: its method, request, reply conversion and retry safety.

Both clients run these descriptions, one with a blocking channel and one with an asyncio channel,
so a call is built and its reply converted the same way whichever client makes it. Adding an RPC
is one function here plus a one-line method on each client (see `status` and `Client.get`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

import grpc
from google.protobuf.message import Message

from protos import sentinel_pb2 as pb
from sentinel_client import _convert as convert
from sentinel_client._convert import enum_to_proto, parse_enum
from sentinel_client._requests import with_scalars
from sentinel_client.errors import FailedPreconditionError
from sentinel_client.models import (
    Artifact,
    DeadLetter,
    ErrorCategory,
    Job,
    JobState,
    Page,
    Priority,
    ProgressEvent,
    QueueEvent,
    QueueHealth,
    QueueState,
    QueueStats,
    Run,
)

T = TypeVar("T")

_JOBS = "/sentinel.v1.TestExecution/"
_ADMIN = "/sentinel.v1.QueueAdmin/"


@dataclass(frozen=True)
class Unary(Generic[T]):
    """A unary call: `reply_type` comes back and `convert` makes it the SDK's value.

    `safe`: the call may be repeated after UNAVAILABLE without doing anything twice.
    """

    method: str
    request: Message
    reply_type: type[Message]
    convert: Callable[[Any], T]
    safe: bool

    @overload
    def bind(self, channel: grpc.aio.Channel) -> grpc.aio.UnaryUnaryMultiCallable[Any, Any]: ...
    @overload
    def bind(self, channel: grpc.Channel) -> grpc.UnaryUnaryMultiCallable[Any, Any]: ...
    def bind(self, channel: Any) -> Any:
        """The callable that makes this call on `channel`, blocking or asyncio."""
        return channel.unary_unary(self.method, request_serializer=_serialize, response_deserializer=self._parse)

    def _parse(self, data: bytes) -> Message:
        return self.reply_type.FromString(data)


@dataclass(frozen=True)
class Stream(Generic[T]):
    """A server stream that can be reopened after its last item's cursor (`request(cursor)`).

    The iteration ends after an item `last` accepts, or when the server ends the stream.
    """

    method: str
    request: Callable[[str], Message]
    reply_type: type[Message]
    convert: Callable[[Any], T]
    cursor_of: Callable[[T], str]
    last: Callable[[T], bool]
    cursor: str = ""

    @overload
    def bind(self, channel: grpc.aio.Channel) -> grpc.aio.UnaryStreamMultiCallable[Any, Any]: ...
    @overload
    def bind(self, channel: grpc.Channel) -> grpc.UnaryStreamMultiCallable[Any, Any]: ...
    def bind(self, channel: Any) -> Any:
        """The callable that opens this stream on `channel`, blocking or asyncio."""
        return channel.unary_stream(self.method, request_serializer=_serialize, response_deserializer=self._parse)

    def _parse(self, data: bytes) -> Message:
        return self.reply_type.FromString(data)


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


# --- TestExecution ------------------------------------------------------------------------------


def submit(request: pb.SubmitRequest) -> Unary[tuple[str, bool]]:
    """The new job's id, and whether an earlier submit with the same idempotency key made it."""
    # Safe: every request carries an idempotency key (see _requests), so a repeat returns the first job.
    assert request.options.idempotency_key, "a submit is retried only under an idempotency key"
    return Unary(_JOBS + "Submit", request, pb.SubmitResponse, lambda r: (r.job_id, r.duplicate), safe=True)


def status(job_id: str) -> Unary[Job]:
    return Unary(_JOBS + "Status", pb.StatusRequest(job_id=job_id), pb.Job, convert.job, safe=True)


def cancel(job_id: str) -> Unary[Job]:
    return Unary(_JOBS + "Cancel", pb.CancelRequest(job_id=job_id), pb.Job, convert.job, safe=True)


def retry(job_id: str, priority: Priority | str | None) -> Unary[Job]:
    lane = enum_to_proto(parse_enum(Priority, priority, "priority"))
    request = pb.RetryRequest(job_id=job_id, priority=lane)  # type: ignore[arg-type]
    return Unary(_JOBS + "Retry", request, pb.Job, convert.job, safe=False)


def list_jobs(
    state: JobState | str | None, tag: str, page_size: int, page_token: str, schedule_id: str = ""
) -> Unary[Page[Job]]:
    number = enum_to_proto(parse_enum(JobState, state, "state"))
    request = with_scalars(
        pb.ListJobsRequest(state=number, tag=tag, page_token=page_token, schedule_id=schedule_id),  # type: ignore[arg-type]
        page_size=page_size,
    )
    return Unary(_JOBS + "ListJobs", request, pb.ListJobsResponse, convert.job_page, safe=True)


def progress(job_id: str, cursor: str) -> Stream[ProgressEvent]:
    return Stream(
        _JOBS + "StreamProgress",
        lambda at: pb.StreamProgressRequest(job_id=job_id, cursor=at),
        pb.ProgressEvent,
        convert.progress_event,
        cursor_of=lambda event: event.cursor,
        last=lambda event: event.terminal,
        cursor=cursor,
    )


def list_artifacts(job_id: str) -> Unary[list[Artifact]]:
    request = pb.ListArtifactsRequest(job_id=job_id)
    return Unary(_JOBS + "ListArtifacts", request, pb.ListArtifactsResponse, convert.artifacts, safe=True)


def get_artifact(job_id: str, name: str) -> Stream[pb.ArtifactChunk]:
    """The chunks of one artifact (internal: the clients write them to a file, never hand them out)."""
    return Stream(
        _JOBS + "GetArtifact",
        lambda _: pb.GetArtifactRequest(job_id=job_id, name=name),
        pb.ArtifactChunk,
        lambda chunk: chunk,
        cursor_of=lambda _: "",
        last=lambda _: False,
    )


def submit_run(request: pb.SubmitRunRequest) -> Unary[tuple[str, tuple[str, ...], bool]]:
    """The run's id, its job ids, and whether an earlier SubmitRun with the same key made it."""
    assert request.options.idempotency_key, "a run is submitted again only under an idempotency key"
    return Unary(
        _JOBS + "SubmitRun", request, pb.SubmitRunResponse, lambda r: (r.run_id, tuple(r.job_ids), r.duplicate), True
    )


def validate_run(request: pb.SubmitRunRequest) -> Unary[None]:
    """SubmitRun's checks of `request` alone: nothing is submitted. Not repeated after UNAVAILABLE: an
    API older than `validate_only` ignores it and makes the run (said, not hidden: `_checked_only`)."""
    checked = pb.SubmitRunRequest()
    checked.CopyFrom(request)
    checked.validate_only = True
    return Unary(_JOBS + "SubmitRun", checked, pb.SubmitRunResponse, _checked_only, False)


def _checked_only(reply: pb.SubmitRunResponse) -> None:
    if reply.run_id:
        raise FailedPreconditionError(
            f"the API does not know validate_only (an older release): it submitted run {reply.run_id}"
            f" instead of only checking it (sentinel cancel {reply.run_id} stops it)"
        )


def get_run(run_id: str) -> Unary[Run]:
    return Unary(_JOBS + "GetRun", pb.GetRunRequest(run_id=run_id), pb.Run, convert.run, safe=True)


def cancel_run(run_id: str) -> Unary[Run]:
    return Unary(_JOBS + "CancelRun", pb.CancelRunRequest(run_id=run_id), pb.Run, convert.run, safe=True)


def stream_run(run_id: str) -> Stream[ProgressEvent | Run]:
    """Every test's progress, then the finished run. Reopened from the start (it has no cursor):
    the clients drop the events they have already given."""
    return Stream(
        _JOBS + "StreamRun",
        lambda _: pb.StreamRunRequest(run_id=run_id),
        pb.RunEvent,
        convert.run_event,
        cursor_of=lambda _: "",
        last=lambda item: isinstance(item, Run),
    )


# --- QueueAdmin ---------------------------------------------------------------------------------


def stats(queue: str) -> Unary[QueueStats]:
    return Unary(_ADMIN + "GetStats", pb.GetStatsRequest(queue=queue), pb.QueueStats, convert.queue_stats, safe=True)


def health(queue: str) -> Unary[QueueHealth]:
    request = pb.GetHealthRequest(queue=queue)
    return Unary(_ADMIN + "GetHealth", request, pb.QueueHealth, convert.queue_health, safe=True)


def pause(queue: str) -> Unary[QueueState]:
    return Unary(_ADMIN + "Pause", pb.PauseRequest(queue=queue), pb.QueueState, convert.queue_state, safe=True)


def resume(queue: str) -> Unary[QueueState]:
    return Unary(_ADMIN + "Resume", pb.ResumeRequest(queue=queue), pb.QueueState, convert.queue_state, safe=True)


def list_dead_letters(
    category: ErrorCategory | str | None, tag: str, page_size: int, page_token: str
) -> Unary[Page[DeadLetter]]:
    number = enum_to_proto(parse_enum(ErrorCategory, category, "category"))
    request = with_scalars(
        pb.ListDeadLettersRequest(category=number, tag=tag, page_token=page_token),  # type: ignore[arg-type]
        page_size=page_size,
    )
    return Unary(_ADMIN + "ListDeadLetters", request, pb.ListDeadLettersResponse, convert.dead_letter_page, safe=True)


def requeue_dead_letter(job_id: str, priority: Priority | str | None) -> Unary[Job]:
    lane = enum_to_proto(parse_enum(Priority, priority, "priority"))
    request = pb.RequeueDeadLetterRequest(job_id=job_id, priority=lane)  # type: ignore[arg-type]
    return Unary(_ADMIN + "RequeueDeadLetter", request, pb.Job, convert.job, safe=False)


def purge_dead_letters(older_than_ms: int) -> Unary[int]:
    request = with_scalars(pb.PurgeDeadLettersRequest(), older_than_ms=older_than_ms)
    return Unary(_ADMIN + "PurgeDeadLetters", request, pb.PurgeDeadLettersResponse, lambda r: int(r.purged), safe=False)


def clean(state: JobState | str | None, older_than_ms: int, limit: int) -> Unary[int]:
    number = enum_to_proto(parse_enum(JobState, state, "state"))
    request = with_scalars(pb.CleanRequest(state=number), older_than_ms=older_than_ms, limit=limit)  # type: ignore[arg-type]
    return Unary(_ADMIN + "Clean", request, pb.CleanResponse, lambda r: int(r.removed), safe=False)


def watch_events(states: Sequence[JobState | str], kinds: Sequence[str], tag: str, cursor: str) -> Stream[QueueEvent]:
    numbers = [enum_to_proto(parse_enum(JobState, s, "states")) for s in states]
    names = [kinds] if isinstance(kinds, str) else list(kinds)  # kinds="active" is one kind, not six letters
    return Stream(
        _ADMIN + "WatchEvents",
        lambda at: pb.WatchEventsRequest(states=numbers, kinds=names, tag=tag, cursor=at),  # type: ignore[arg-type]
        pb.QueueEvent,
        convert.queue_event,
        cursor_of=lambda event: event.cursor,
        last=lambda _: False,
        cursor=cursor,
    )
