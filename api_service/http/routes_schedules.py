"""HTTP routes of schedules: list, show, create, change, pause, resume, trigger and delete them.

Each handler is the twin of a `SchedulesServicer` method and calls the same function with the same
arguments (`shared.schedules.store`, `shared.schedules.firing`), answering the schedule as gRPC
does: every notification's URL masked (`shared.schedules.rules.shown`), no secret. A body is read by
`api_service.http.parsing_schedules`, and the store's violations are named as the body names its
fields (`test.testDefinition.steps[0]`, `intervalMs`). No rule lives here.
"""

from __future__ import annotations

from aiohttp import web

from api_service.http.context import backend, tenant
from api_service.http.envelope import ok
from api_service.http.parsing import fields_renamed, invalid, query_page, read_json, text_field, unknown_fields
from api_service.http.parsing_schedules import schedule_field, schedule_from_json
from api_service.http.views import job_view, schedule_view
from shared.errors import ValidationError
from shared.schedules import firing, rules, store
from shared.schedules.model import Schedule

#: Where a schedule is shown, under the API's prefix (a 201's `Location`).
SCHEDULE_PATH = "/api/v1/schedules/{}"


def _shown(request: web.Request, schedule: Schedule) -> dict[str, object]:
    return schedule_view(rules.shown(schedule, backend(request).sealer))


async def list_schedules(request: web.Request) -> web.Response:
    size, token = query_page(request)
    app = backend(request)
    page = await store.list_schedules(app.queue, tenant=tenant(request), page_size=size, page_token=token)
    shown = [_shown(request, s) for s in page.items]
    return ok({"schedules": shown, "nextPageToken": page.next_token or None})


async def get_schedule(request: web.Request) -> web.Response:
    found = await store.get_schedule(backend(request).queue, request.match_info["id"], tenant=tenant(request))
    return ok(_shown(request, found))


async def create_schedule(request: web.Request) -> web.Response:
    app = backend(request)
    spec, _ = schedule_from_json(await read_json(request))
    with fields_renamed(schedule_field):
        made = await store.create_schedule(
            app.queue, spec, tenant=tenant(request), sealer=app.sealer, policy=app.webhook_policy
        )
    location = {"Location": SCHEDULE_PATH.format(made.schedule_id)}
    return ok(_shown(request, made), message="schedule created", status=201, headers=location)


async def update_schedule(request: web.Request) -> web.Response:
    app = backend(request)
    spec, paths = schedule_from_json(await read_json(request), patch=True)
    with fields_renamed(schedule_field):
        changed = await store.update_schedule(
            app.queue,
            request.match_info["id"],
            spec,
            paths=paths,
            tenant=tenant(request),
            sealer=app.sealer,
            policy=app.webhook_policy,
        )
    return ok(_shown(request, changed), message="schedule changed")


async def delete_schedule(request: web.Request) -> web.Response:
    await store.delete_schedule(backend(request).queue, request.match_info["id"], tenant=tenant(request))
    return ok({"deleted": True}, message="schedule deleted; the tests it ran stay")


def _note(body: dict[str, object]) -> str:
    found = unknown_fields(body, {"note"})
    note = text_field(found, "note", body.get("note", ""))
    if found:
        raise ValidationError(found)
    return note


async def pause_schedule(request: web.Request) -> web.Response:
    note = _note(await read_json(request, required=False))
    paused = await store.pause_schedule(
        backend(request).queue, request.match_info["id"], tenant=tenant(request), note=note
    )
    return ok(_shown(request, paused), message="schedule paused")


async def resume_schedule(request: web.Request) -> web.Response:
    note = _note(await read_json(request, required=False))
    resumed = await store.resume_schedule(
        backend(request).queue, request.match_info["id"], tenant=tenant(request), note=note
    )
    return ok(_shown(request, resumed), message="schedule resumed")


async def trigger_schedule(request: web.Request) -> web.Response:
    body = await read_json(request, required=False)
    if body:
        raise invalid(next(iter(body)), "is not a known field; this route takes no body")
    job = await firing.trigger_schedule(backend(request).queue, request.match_info["id"], tenant=tenant(request))
    return ok(job_view(job), message="test queued", status=202)
