"""The HTTP/JSON front door: an aiohttp application served on the API's own event loop.

`HttpApi.start` builds the app (`build_app`) and opens `API_HTTP_HOST:API_HTTP_PORT` with an
`AppRunner` + `TCPSite` inside `ApiServer.start`; `HttpApi.stop` closes it within the grace period.
Every request passes, in order:

1. `guard_origin`: answers CORS preflights and refuses a cross-origin request whose `Origin` is
   not in `API_HTTP_CORS_ORIGINS` (a page on another site must not drive this API through a
   browser, even with auth disabled);
2. `envelope_errors`: every error becomes the envelope with its status (`api_service.http.envelope`);
3. `authenticate` (`api_service.http.auth`): the key and the route's role, before the body is read;
4. the route's handler (`routes_tests`, `routes_queue`).

`on_response_prepare` stamps every answer — JSON, SSE, artifact bytes, dashboard files, errors —
with the Content-Security-Policy, `X-Content-Type-Options: nosniff` and, for an allowed origin,
`Access-Control-Allow-Origin`. The runner cancels a handler whose client went away, which is what
stops an SSE follower at once. No access log: a request line never holds a key, but the gRPC side
logs no calls either.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler

from api_service.http import openapi, routes_queue, routes_tests
from api_service.http.auth import make_auth_middleware
from api_service.http.context import BACKEND, Backend
from api_service.http.envelope import failure, failure_for, http_failure
from api_service.http.parsing import MAX_BODY_BYTES
from shared.edge.codes import INTERNAL, code_name
from shared.settings import TlsSettings

log = logging.getLogger(__name__)

PREFIX = "/api/v1"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
CORS_METHODS = "GET, POST, OPTIONS"
CORS_HEADERS = "Authorization, Content-Type, Last-Event-ID"

RouteHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def openapi_document(request: web.Request) -> web.Response:
    """The OpenAPI document of this API (no key needed)."""
    return web.json_response(openapi.document())


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # under PREFIX
    handler: RouteHandler
    name: str  # the key of `auth.ROUTE_ROLES`


#: Every API route; the OpenAPI document describes exactly these (tests/api_service/http/test_openapi.py).
ROUTES: tuple[Route, ...] = (
    Route("GET", "/whoami", routes_tests.whoami, "whoami"),
    Route("POST", "/tests/execute", routes_tests.submit, "tests.execute"),
    Route("GET", "/tests", routes_tests.list_tests, "tests.list"),
    Route("GET", "/tests/{id}/status", routes_tests.status, "tests.status"),
    Route("GET", "/tests/{id}/events", routes_tests.events, "tests.events"),
    Route("GET", "/tests/{id}/artifacts", routes_tests.list_artifacts, "tests.artifacts"),
    Route("GET", "/tests/{id}/artifacts/{attempt}/{file}", routes_tests.artifact, "tests.artifact"),
    Route("POST", "/queue/jobs/{id}/cancel", routes_tests.cancel, "jobs.cancel"),
    Route("POST", "/queue/jobs/{id}/retry", routes_tests.retry, "jobs.retry"),
    Route("GET", "/runs/{id}", routes_tests.get_run, "runs.get"),
    Route("GET", "/queue/stats", routes_queue.stats, "queue.stats"),
    Route("GET", "/queue/health", routes_queue.health, "queue.health"),
    Route("GET", "/queue/events", routes_queue.events, "queue.events"),
    Route("POST", "/queue/pause", routes_queue.pause, "queue.pause"),
    Route("POST", "/queue/resume", routes_queue.resume, "queue.resume"),
    Route("GET", "/queue/dead-letters", routes_queue.list_dead_letters, "deadletters.list"),
    Route("POST", "/queue/dead-letters/{id}/requeue", routes_queue.requeue, "deadletters.requeue"),
    Route("POST", "/queue/dead-letters/purge", routes_queue.purge, "deadletters.purge"),
    Route("GET", "/openapi.json", openapi_document, "openapi"),
)


def _own_origin(request: web.Request, origin: str) -> bool:
    # Scheme aside (a proxy may end TLS in front of us), the page's host is ours.
    return origin.partition("://")[2] == request.host


@web.middleware
async def guard_origin(request: web.Request, handler: Handler) -> web.StreamResponse:
    origin = request.headers.get("Origin", "")
    allowed = request.app[BACKEND].cors_origins
    if origin and origin not in allowed and not _own_origin(request, origin):
        return failure(403, "PERMISSION_DENIED", "cross-origin requests are not allowed from this origin")
    if request.method == "OPTIONS" and origin and "Access-Control-Request-Method" in request.headers:
        return web.Response(
            status=204,
            headers={
                "Access-Control-Allow-Methods": CORS_METHODS,
                "Access-Control-Allow-Headers": CORS_HEADERS,
                "Access-Control-Max-Age": "600",
            },
        )
    return await handler(request)


@web.middleware
async def envelope_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return http_failure(exc)
    except Exception as exc:
        if code_name(exc) == INTERNAL:
            log.exception("%s %s failed", request.method, request.rel_url.path, exc_info=exc)
        return failure_for(exc)


async def _stamp(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    origin = request.headers.get("Origin", "")
    if origin and origin in request.app[BACKEND].cors_origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "Content-Disposition, Content-Length"
        response.headers.add("Vary", "Origin")


async def dashboard_file(request: web.Request) -> web.StreamResponse:
    """A file of the dashboard (`/` is its index.html); only files inside the dashboard folder."""
    relative = request.match_info.get("path", "") or "index.html"
    root = request.app[BACKEND].dashboard.resolve()
    target = (root / relative).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(target, headers={"Cache-Control": "no-cache"})


def build_app(backend: Backend) -> web.Application:
    """The application: every route of `ROUTES` under /api/v1, the OpenAPI document and the dashboard."""
    app = web.Application(
        client_max_size=MAX_BODY_BYTES,
        middlewares=[guard_origin, envelope_errors, make_auth_middleware(backend.keys)],
    )
    app[BACKEND] = backend
    for route in ROUTES:
        app.router.add_route(route.method, PREFIX + route.path, route.handler, name=route.name)
    app.router.add_get("/", dashboard_file, name="dashboard.index")
    app.router.add_get("/dashboard/{path:.*}", dashboard_file, name="dashboard.files")
    app.on_response_prepare.append(_stamp)
    return app


def server_ssl(tls: TlsSettings) -> ssl.SSLContext | None:
    """The TLS of the HTTP listener: the gRPC server's certificate (and client CA, for mTLS); None: plain."""
    if not tls.enabled:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.client_ca_file:
        context.load_verify_locations(tls.client_ca_file)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


@dataclass
class HttpApi:
    runner: web.AppRunner
    port: int

    @classmethod
    async def start(
        cls, backend: Backend, *, host: str, port: int, tls: TlsSettings, shutdown_timeout: float = 10.0
    ) -> HttpApi:
        """Serve `backend` on `host:port` on the running loop.

        Raises:
            OSError: the port cannot be opened; the message names API_HTTP_PORT.
        """
        runner = web.AppRunner(
            build_app(backend), handler_cancellation=True, access_log=None, shutdown_timeout=shutdown_timeout
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port, ssl_context=server_ssl(tls))
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise OSError(f"cannot listen on {host}:{port} (API_HTTP_PORT): {exc.strerror or exc}") from exc
        bound = port
        for address in runner.addresses:
            if isinstance(address, tuple):
                bound = int(address[1])
                break
        return cls(runner=runner, port=bound)

    async def stop(self) -> None:
        """Stop listening, let in-flight requests finish within the shutdown timeout, then close."""
        await self.runner.cleanup()
