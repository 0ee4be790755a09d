"""HTTP routes of schedules, to read them: the tenant's schedules, and one with its latest runs.

Each handler is the twin of a `SchedulesServicer` method and calls the same function with the same
arguments (`shared.schedules.store`), answering the schedule as gRPC does: every notification's URL
masked (`shared.schedules.rules.shown`), no secret. Creating and changing schedules stays with gRPC,
the CLI and the SDK. No rule lives here.
"""

from __future__ import annotations

from aiohttp import web

from api_service.http.context import backend, tenant
from api_service.http.envelope import ok
from api_service.http.parsing import query_page
from api_service.http.views import schedule_view
from shared.schedules import rules, store


async def list_schedules(request: web.Request) -> web.Response:
    size, token = query_page(request)
    app = backend(request)
    page = await store.list_schedules(app.queue, tenant=tenant(request), page_size=size, page_token=token)
    shown = [schedule_view(rules.shown(s, app.sealer)) for s in page.items]
    return ok({"schedules": shown, "nextPageToken": page.next_token or None})


async def get_schedule(request: web.Request) -> web.Response:
    app = backend(request)
    found = await store.get_schedule(app.queue, request.match_info["id"], tenant=tenant(request))
    return ok(schedule_view(rules.shown(found, app.sealer)))
