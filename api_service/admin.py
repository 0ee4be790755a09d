"""The QueueAdmin servicer (thin): dead letters for now; stats, health, pause/resume, events
and clean answer UNIMPLEMENTED until they are built."""

from __future__ import annotations

import grpc

from api_service import convert
from api_service.auth import tenant_of
from api_service.status import unary
from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from shared import dead_letters
from shared.errors import FieldViolation, ValidationError
from shared.queue import Queue

MAX_PAGE_SIZE = 500


class QueueAdminServicer(pb_grpc.QueueAdminServicer):  # type: ignore[misc]
    def __init__(self, queue: Queue) -> None:
        self._queue = queue

    @unary
    async def ListDeadLetters(
        self, request: pb.ListDeadLettersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListDeadLettersResponse:
        if request.page_size > MAX_PAGE_SIZE:
            raise ValidationError([FieldViolation("page_size", f"must be at most {MAX_PAGE_SIZE}")])
        page = await dead_letters.list_dead_letters(
            self._queue,
            tenant=tenant_of(context),
            category=convert.error_category_from_proto(request.category),
            tag=request.tag,
            page_size=request.page_size or 50,
            page_token=request.page_token,
        )
        return pb.ListDeadLettersResponse(
            dead_letters=[convert.dead_letter_to_proto(j) for j in page.items], next_page_token=page.next_token
        )

    @unary
    async def RequeueDeadLetter(
        self, request: pb.RequeueDeadLetterRequest, context: grpc.aio.ServicerContext
    ) -> pb.Job:
        job = await dead_letters.requeue_dead_letter(
            self._queue,
            request.job_id,
            tenant=tenant_of(context),
            priority=convert.priority_from_proto(request.priority),
        )
        return convert.job_to_proto(job)

    @unary
    async def PurgeDeadLetters(
        self, request: pb.PurgeDeadLettersRequest, context: grpc.aio.ServicerContext
    ) -> pb.PurgeDeadLettersResponse:
        purged = await dead_letters.purge_dead_letters(
            self._queue, tenant=tenant_of(context), older_than_ms=request.older_than_ms
        )
        return pb.PurgeDeadLettersResponse(purged=purged)
