"""Who is calling an HTTP route: one table of route → role, checked before anything else.

The HTTP twin of `shared.edge.auth`'s METHOD_ROLES: every route has a name, and `ROUTE_ROLES`
says the role it needs (a route not listed needs ADMIN; `OPEN_ROUTES` need no key at all: the
OpenAPI document, `/auth` — whether keys are on — and the dashboard's static files). Keys come in
`Authorization: Bearer <key>` only — never in a URL — and are checked by `shared.access.authorize`,
the same function the gRPC interceptor uses, so a key has the same tenant and role on both front
doors. The middleware runs before the handler reads a byte of the body. Nothing here may log or
store a key.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from api_service.http.context import ADMIT, CALLER
from shared import access
from shared.access import Role

#: The role each route needs, by route name (see `api_service.http.routes`).
ROUTE_ROLES: dict[str, Role] = {
    "whoami": Role.VIEWER,
    "tests.execute": Role.SUBMITTER,
    "tests.list": Role.VIEWER,
    "tests.status": Role.VIEWER,
    "tests.events": Role.VIEWER,
    "tests.artifacts": Role.VIEWER,
    "tests.artifact": Role.VIEWER,
    "jobs.cancel": Role.SUBMITTER,
    "jobs.retry": Role.SUBMITTER,
    "runs.get": Role.VIEWER,
    "schedules.list": Role.VIEWER,
    "schedules.get": Role.VIEWER,
    "schedules.create": Role.SUBMITTER,
    "schedules.update": Role.SUBMITTER,
    "schedules.delete": Role.SUBMITTER,
    "schedules.pause": Role.SUBMITTER,
    "schedules.resume": Role.SUBMITTER,
    "schedules.trigger": Role.SUBMITTER,
    "alerts.rules.list": Role.VIEWER,
    "alerts.rules.get": Role.VIEWER,
    "alerts.rules.create": Role.SUBMITTER,
    "alerts.rules.delete": Role.SUBMITTER,
    "alerts.deliveries": Role.VIEWER,
    "queue.stats": Role.VIEWER,
    "queue.health": Role.VIEWER,
    "queue.events": Role.VIEWER,
    "queue.pause": Role.OPERATOR,  # the whole queue: every tenant's work stops
    "queue.resume": Role.OPERATOR,
    "deadletters.list": Role.ADMIN,
    "deadletters.requeue": Role.ADMIN,
    "deadletters.purge": Role.ADMIN,
}

#: Routes anyone may call: the API's description, whether it needs a key, and the dashboard page
#: (whose data calls carry a key).
OPEN_ROUTES = frozenset({"openapi", "auth", "dashboard.index", "dashboard.files"})

HOW = "the header 'Authorization: Bearer <key>'"


def make_auth_middleware(keys: access.Keys | None) -> Middleware:
    """The middleware admitting callers with `keys` (None: auth disabled, everyone is default/operator)."""

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        name = request.match_info.route.name
        if name is None or name in OPEN_ROUTES:
            return await handler(request)  # no such route (404/405) or an open one
        key = access.bearer_key(request.headers.get("Authorization", ""))
        needed = ROUTE_ROLES.get(name, Role.ADMIN)

        def admit() -> access.Principal:
            return access.authorize(keys, key, needed=needed, action=name, how=HOW)

        first = request[CALLER] = admit()

        def admit_again() -> access.Principal:
            again = admit()
            access.still_admitted(first, again)
            return again

        request[ADMIT] = admit_again  # an event stream checks its caller again before each event it sends
        return await handler(request)

    return authenticate
