"""HTTP routes of the queue: stats, health, pause/resume, events and dead letters.

Each handler is the twin of a `QueueAdminServicer` method and calls the same function with the
same arguments (`shared.stats`, `shared.queue_health`, `shared.pausing`, `shared.events`,
`shared.dead_letters`). No rule lives here.
"""

from __future__ import annotations

from aiohttp import web

from api_service.http import sse
from api_service.http.context import backend, figures_scope, tenant
from api_service.http.envelope import HTTP_STATUS, failure, ok
from api_service.http.parsing import older_than_from_json, query_page, query_word, read_json
from api_service.http.views import dead_letter_view, health_view, job_view, queue_event_view, stats_view
from shared import dead_letters, pausing, queue_health
from shared.events import QueueEvent, check_cursor, check_kinds, current_cursor, follow_events
from shared.model import ErrorCategory, JobState
from shared.queue_health import HealthStatus
from shared.stats import get_stats


async def stats(request: web.Request) -> web.Response:
    return ok(stats_view(await get_stats(backend(request).queue, tenant=figures_scope(request))))


async def health(request: web.Request) -> web.Response:
    """200 when healthy or degraded, 503 when unhealthy (Redis unreachable included), with reasons."""
    verdict = await queue_health.assess(backend(request).queue, tenant=figures_scope(request))
    message = f"queue {verdict.status.value}" + (f": {'; '.join(verdict.reasons)}" if verdict.reasons else "")
    if verdict.status is HealthStatus.UNHEALTHY:
        return failure(HTTP_STATUS["UNAVAILABLE"], "UNAVAILABLE", message, data=health_view(verdict))
    return ok(health_view(verdict), message=message)


async def pause(request: web.Request) -> web.Response:
    queue = backend(request).queue
    await pausing.pause(queue)
    return ok({"queue": queue.settings.name, "paused": True}, message="queue paused")


async def resume(request: web.Request) -> web.Response:
    queue = backend(request).queue
    await pausing.resume(queue)
    return ok({"queue": queue.settings.name, "paused": False}, message="queue resumed")


def _event_frame(event: QueueEvent) -> bytes:
    return sse.frame(cursor=event.cursor, event=event.kind or "event", data=queue_event_view(event))


async def events(request: web.Request) -> web.StreamResponse:
    """The queue's events as SSE (the caller's tenant's and queue-level ones), from after
    `Last-Event-ID` (none: only new ones), never ending on its own; `kind` (repeatable), `status`
    and `tag` filter them."""
    app = backend(request)
    cursor = request.headers.get("Last-Event-ID", "").strip()
    if cursor:
        check_cursor(cursor)  # before the 200 goes out: a bad cursor is a 400
    kinds = request.query.getall("kind", [])
    check_kinds(kinds, "kind")  # so is an unknown kind
    state = query_word(request, "status", JobState)
    opening = b""
    if not cursor:  # the stream's position now goes out first, so a client that drops before any event resumes from it
        cursor = await current_cursor(app.queue)
        opening = sse.position(cursor)
    followed = follow_events(
        app.queue,
        app.hub,
        states=[state] if state is not None else [],
        kinds=kinds,
        tag=request.query.get("tag", ""),
        cursor=cursor,
        tenant=tenant(request),
    )
    return await sse.stream(request, followed, _event_frame, keepalive_s=app.keepalive_s, opening=opening)


async def list_dead_letters(request: web.Request) -> web.Response:
    size, token = query_page(request)
    page = await dead_letters.list_dead_letters(
        backend(request).queue,
        tenant=tenant(request),
        category=query_word(request, "category", ErrorCategory),
        tag=request.query.get("tag", ""),
        page_size=size,
        page_token=token,
    )
    return ok({"deadLetters": [dead_letter_view(j) for j in page.items], "nextPageToken": page.next_token or None})


async def requeue(request: web.Request) -> web.Response:
    job = await dead_letters.requeue_dead_letter(
        backend(request).queue, request.match_info["id"], tenant=tenant(request)
    )
    return ok(job_view(job), message="requeued")


async def purge(request: web.Request) -> web.Response:
    older_than_ms = older_than_from_json(await read_json(request, required=False))
    purged = await dead_letters.purge_dead_letters(
        backend(request).queue, tenant=tenant(request), older_than_ms=older_than_ms
    )
    return ok({"purged": purged}, message=f"purged {purged} dead letters")
