"""The HTTP/JSON front door: an aiohttp application served on the API's own event loop.

`HttpApi.start` builds the app (`build_app`) and opens `API_HTTP_HOST:API_HTTP_PORT` with an
`AppRunner` + `TCPSite` inside `ApiServer.start`; `HttpApi.stop` closes it within the grace period.
Every request passes, in order:

1. `guard_origin`: answers CORS preflights and refuses a cross-origin request whose `Origin` is
   not in `API_HTTP_CORS_ORIGINS` (a page on another site must not drive this API through a
   browser, even with auth disabled). With auth disabled it also refuses (403) a request whose
   `Host` is not loopback (`localhost`, `*.localhost`), an IP address, the listen address or the
   host of a listed origin: a DNS-rebinding page (`http://attacker.example:8080` resolving to
   127.0.0.1) is same-origin with itself and sends its own name as `Host`, which no key stops
   when there are no keys;
2. `envelope_errors`: every error becomes the envelope with its status (`api_service.http.envelope`);
3. `authenticate` (`api_service.http.auth`): the key and the route's role, before the body is read;
4. `check_request`: a body must be JSON — `Content-Type: application/json` or
   `application/*+json`, any charset — else 415 (a form or `text/plain` body, as `curl -d` or an
   HTML form sends, is refused unread); a body sent with no `Content-Type` at all is read as JSON,
   for clients that send none. A query parameter the route does not take is a 400 naming it and
   the ones it takes (`state: unknown query parameter; this route takes status, …`);
5. the route's handler (`routes_tests`, `routes_queue`).

Every GET route answers HEAD too (headers only; an event stream's HEAD checks what its GET checks
and sends no events). `on_response_prepare` stamps every answer — JSON, SSE, artifact bytes,
dashboard files, errors — with the Content-Security-Policy, `X-Content-Type-Options: nosniff` and,
for an allowed origin, `Access-Control-Allow-Origin`. The runner cancels a handler whose client
went away, which is what stops an SSE follower at once. No access log: a request line never holds
a key, but the gRPC side logs no calls either.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import hdrs, web
from aiohttp.http_exceptions import BadHttpMessage
from aiohttp.typedefs import Handler

from api_service.http import openapi, routes_alerts, routes_queue, routes_schedules, routes_tests
from api_service.http.auth import make_auth_middleware
from api_service.http.context import BACKEND, Backend
from api_service.http.envelope import failure, failure_for, http_failure
from api_service.http.hosts import NAMED_HOSTS, named_hosts, trusted_host
from api_service.http.parsing import MAX_BODY_BYTES, check_query, is_json
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
CORS_METHODS = "GET, POST, PATCH, DELETE, OPTIONS"
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
    query: tuple[str, ...] = ()  # the query parameters it takes (any other is a 400)


PAGE = ("pageSize", "pageToken")

#: Every API route; the OpenAPI document describes exactly these (tests/api_service/http/test_openapi.py).
ROUTES: tuple[Route, ...] = (
    Route("GET", "/auth", routes_tests.auth_mode, "auth"),
    Route("GET", "/whoami", routes_tests.whoami, "whoami"),
    Route("POST", "/tests/execute", routes_tests.submit, "tests.execute"),
    Route("GET", "/tests", routes_tests.list_tests, "tests.list", ("status", "tag", "scheduleId", *PAGE)),
    Route("GET", "/tests/{id}/status", routes_tests.status, "tests.status"),
    Route("GET", "/tests/{id}/events", routes_tests.events, "tests.events"),
    Route("GET", "/tests/{id}/artifacts", routes_tests.list_artifacts, "tests.artifacts"),
    Route("GET", "/tests/{id}/artifacts/{attempt}/{file}", routes_tests.artifact, "tests.artifact"),
    Route("POST", "/queue/jobs/{id}/cancel", routes_tests.cancel, "jobs.cancel"),
    Route("POST", "/queue/jobs/{id}/retry", routes_tests.retry, "jobs.retry"),
    Route("GET", "/runs/{id}", routes_tests.get_run, "runs.get"),
    Route("GET", "/schedules", routes_schedules.list_schedules, "schedules.list", PAGE),
    Route("GET", "/schedules/{id}", routes_schedules.get_schedule, "schedules.get"),
    Route("POST", "/schedules", routes_schedules.create_schedule, "schedules.create"),
    Route("PATCH", "/schedules/{id}", routes_schedules.update_schedule, "schedules.update"),
    Route("DELETE", "/schedules/{id}", routes_schedules.delete_schedule, "schedules.delete"),
    Route("POST", "/schedules/{id}/pause", routes_schedules.pause_schedule, "schedules.pause"),
    Route("POST", "/schedules/{id}/resume", routes_schedules.resume_schedule, "schedules.resume"),
    Route("POST", "/schedules/{id}/trigger", routes_schedules.trigger_schedule, "schedules.trigger"),
    Route("GET", "/alerts/rules", routes_alerts.list_rules, "alerts.rules.list", PAGE),
    Route("POST", "/alerts/rules", routes_alerts.create_rule, "alerts.rules.create"),
    Route("GET", "/alerts/rules/{id}", routes_alerts.get_rule, "alerts.rules.get"),
    Route("DELETE", "/alerts/rules/{id}", routes_alerts.delete_rule, "alerts.rules.delete"),
    Route(
        "GET",
        "/alerts/deliveries",
        routes_alerts.list_deliveries,
        "alerts.deliveries",
        ("scheduleId", "ruleId", "testId", *PAGE),
    ),
    Route("GET", "/queue/stats", routes_queue.stats, "queue.stats"),
    Route("GET", "/queue/health", routes_queue.health, "queue.health"),
    Route("GET", "/queue/events", routes_queue.events, "queue.events", ("kind", "status", "tag")),
    Route("POST", "/queue/pause", routes_queue.pause, "queue.pause"),
    Route("POST", "/queue/resume", routes_queue.resume, "queue.resume"),
    Route("GET", "/queue/dead-letters", routes_queue.list_dead_letters, "deadletters.list", ("category", "tag", *PAGE)),
    Route("POST", "/queue/dead-letters/{id}/requeue", routes_queue.requeue, "deadletters.requeue"),
    Route("POST", "/queue/dead-letters/purge", routes_queue.purge, "deadletters.purge"),
    Route("GET", "/openapi.json", openapi_document, "openapi"),
)
#: What a page of an allowed origin may read of an answer: a download's name and size, and when to
#: try again (429, 503) or how to sign in (401).
EXPOSED_HEADERS = "Content-Disposition, Content-Length, Retry-After, WWW-Authenticate"
#: The query parameters of each API route, by route name.
QUERY: dict[str, tuple[str, ...]] = {route.name: route.query for route in ROUTES}


#: The dashboard's own files: public code with no data in it, served whatever the `Origin` (a module
#: script is fetched in CORS mode, so the browser sends one with it).
DASHBOARD_ROUTES = frozenset({"dashboard.index", "dashboard.files"})


def _own_origin(request: web.Request, origin: str) -> bool:
    """Whether the page that sent `origin` is one of ours: scheme aside (a proxy may end TLS in front
    of us), its host is the one the request was sent to — `Host`, or, behind a reverse proxy that
    rewrites `Host`, the first `X-Forwarded-Host` or `Forwarded: host=` it passes on. A browser
    cannot forge those on another origin's behalf: a cross-origin request with such a header is
    preflighted first, and the preflight of a foreign origin is refused here."""
    authority = origin.partition("://")[2]
    if not authority:  # "null": a sandboxed page, a file, a redirect across origins
        return False
    forwarded = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
    first = request.forwarded[0] if request.forwarded else {}
    return authority in (request.host, forwarded, first.get("host"))


#: The longest request line aiohttp reads (its default is 8190): a longer one is refused by the HTTP
#: parser itself, in plain text; up to this, `limit_url` answers in the envelope.
MAX_REQUEST_LINE = 64 * 1024
#: The longest URL (path and query) a route is asked to read: a longer one is a 414.
MAX_URL_CHARS = 8 * 1024


@web.middleware
async def limit_url(request: web.Request, handler: Handler) -> web.StreamResponse:
    """No route takes a URL over MAX_URL_CHARS (page tokens and ids are short): 414, in the envelope."""
    if len(request.raw_path) > MAX_URL_CHARS:
        return failure(414, "INVALID_ARGUMENT", f"the URL is over {MAX_URL_CHARS} characters")
    return await handler(request)


class _QuietParseErrors(logging.Filter):
    """A request the HTTP parser could not read (a line or header over its limits, not HTTP at all)
    is the client's mistake: one line, without the traceback that would quote its start."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, BadHttpMessage):
            record.msg, record.args = "refused a request that is not readable HTTP: %s", (type(exc).__name__,)
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


@web.middleware
async def guard_origin(request: web.Request, handler: Handler) -> web.StreamResponse:
    origin = request.headers.get("Origin", "")
    allowed = request.app[BACKEND].cors_origins
    if request.app[BACKEND].keys is None and not trusted_host(request):
        return failure(
            403,
            "PERMISSION_DENIED",
            "with SENTINEL_AUTH=disabled this API answers only requests addressed to localhost, an IP "
            "address, API_HTTP_HOST or a host of API_HTTP_CORS_ORIGINS (this refuses DNS rebinding); "
            "use that address, list this one in API_HTTP_CORS_ORIGINS, or turn API keys on",
        )
    if (
        origin
        and origin not in allowed
        and request.match_info.route.name not in DASHBOARD_ROUTES
        and not _own_origin(request, origin)
    ):
        return failure(
            403,
            "PERMISSION_DENIED",
            "cross-origin requests are not allowed from this origin (behind a reverse proxy: pass the "
            "browser's Host on, or X-Forwarded-Host, or list the origin in API_HTTP_CORS_ORIGINS)",
        )
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


async def _has_body(request: web.Request) -> bool:
    """Whether the request has a non-empty body: by its length, or (chunked) by reading it (at most
    MAX_BODY_BYTES: more is a 413), which the handler then reads again from memory."""
    if request.content_length is not None:
        return request.content_length > 0
    return request.body_exists and bool(await request.read())


@web.middleware
async def check_request(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A body that is not JSON is a 415 (unread when its length says it is not empty), and a query
    parameter the route does not take a 400; after `authenticate`, so a caller without a key
    learns nothing but that."""
    name = request.match_info.route.name
    if name not in QUERY:
        return await handler(request)  # no such route (404, 405), or a file of the dashboard
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY_BYTES, actual_size=length)
    if hdrs.CONTENT_TYPE in request.headers and not is_json(request.content_type) and await _has_body(request):
        return failure(
            415,
            "INVALID_ARGUMENT",
            f"the body must be JSON, sent as Content-Type: application/json (got {request.content_type[:60]!r})",
        )
    check_query(request, QUERY[name])
    return await handler(request)


async def _stamp(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    origin = request.headers.get("Origin", "")
    if origin and origin in request.app[BACKEND].cors_origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        response.headers.add("Vary", "Origin")


async def dashboard_file(request: web.Request) -> web.StreamResponse:
    """A file of the dashboard (`/` is its index.html); only files inside the dashboard folder."""
    relative = request.match_info.get("path", "") or "index.html"
    root = request.app[BACKEND].dashboard.resolve()
    target = (root / relative).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(target, headers={"Cache-Control": "no-cache"})


def build_app(backend: Backend, *, listen_host: str = "") -> web.Application:
    """The application: every route of `ROUTES` under /api/v1 (each GET answering HEAD too), the
    OpenAPI document and the dashboard; `listen_host` is API_HTTP_HOST (see `hosts.trusted_host`)."""
    app = web.Application(
        client_max_size=MAX_BODY_BYTES,
        middlewares=[limit_url, guard_origin, envelope_errors, make_auth_middleware(backend.keys), check_request],
    )
    app[BACKEND] = backend
    app[NAMED_HOSTS] = named_hosts(listen_host, backend.cors_origins)
    for route in ROUTES:
        if route.method == "GET":
            app.router.add_get(PREFIX + route.path, route.handler, name=route.name)  # and HEAD
        else:
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
        server_log = logging.getLogger("aiohttp.server")
        if not any(isinstance(f, _QuietParseErrors) for f in server_log.filters):
            server_log.addFilter(_QuietParseErrors())
        runner = web.AppRunner(
            build_app(backend, listen_host=host),
            handler_cancellation=True,
            access_log=None,
            shutdown_timeout=shutdown_timeout,
            max_line_size=MAX_REQUEST_LINE,
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
