"""The envelope of every JSON answer, and the one table from errors to HTTP status codes.

    {"success": true,  "message": "...", "timestamp": "<ISO 8601 UTC>", "data": <payload>}
    {"success": false, "message": "...", "timestamp": "...",
     "error": {"code": "<gRPC code name>", "violations": [{"field": "...", "description": "..."}]}}

Which code name an error has is decided once for both front doors (`shared.edge.codes`); this
module only maps the names to HTTP statuses (`HTTP_STATUS`). Violations name fields as gRPC does,
with the HTTP request's names for the parts that differ (`FIELD_NAMES`: gRPC's `definition.` is
`testDefinition.`, `options.timeout_ms` is `options.timeout` …) and every other field name in the
lowerCamelCase of proto3 JSON (`steps[0].wait_for` is `steps[0].waitFor`). A 429 or 503 says when
to try again (`Retry-After`, `RETRY_AFTER_S`). An unexpected error is a 500 with a generic message:
never a stack trace.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from api_service.http.views import now_iso
from shared.edge.codes import INTERNAL, code_name, message_for
from shared.errors import ValidationError
from shared.field_paths import json_path

#: gRPC code names as HTTP statuses (the names come from `shared.edge.codes`).
HTTP_STATUS: dict[str, int] = {
    "INVALID_ARGUMENT": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "FAILED_PRECONDITION": 409,
    "RESOURCE_EXHAUSTED": 429,
    "UNAVAILABLE": 503,
    INTERNAL: 500,
}

#: aiohttp's own refusals (no route, wrong method, body too large) by status, as code names.
CODE_OF_STATUS: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    413: "RESOURCE_EXHAUSTED",
    414: "INVALID_ARGUMENT",
}

#: `Retry-After` (seconds) by status. Nothing below the edge says how long a limit lasts: a tenant's
#: queue limit frees as its jobs start (rate limits hold jobs, they refuse no request), so a 429 asks
#: for a second; a 503 (Redis, the artifact store, shutting down) for the few seconds a restart takes.
RETRY_AFTER_S: dict[int, int] = {429: 1, 503: 5}

#: gRPC's field paths the HTTP API names otherwise, longest match first; every other name is the
#: gRPC one in lowerCamelCase (`options.max_attempts` → `options.maxAttempts`, `page_size` → `pageSize`).
FIELD_NAMES: dict[str, str] = {
    "definition": "testDefinition",
    "options.timeout_ms": "options.timeout",
    "cursor": "Last-Event-ID",
    "job_id": "id",
}
_BY_LENGTH = sorted(FIELD_NAMES.items(), key=lambda item: -len(item[0]))


def http_field(path: str) -> str:
    """A gRPC field path as the HTTP API spells it (`definition.steps[3].wait_for` →
    `testDefinition.steps[3].waitFor`): the names of `FIELD_NAMES`, the rest in lowerCamelCase."""
    for grpc_name, http_name in _BY_LENGTH:
        if path == grpc_name or path.startswith((grpc_name + ".", grpc_name + "[")):
            return http_name + json_path(path[len(grpc_name) :])
    return json_path(path)


def _with_retry_after(status: int, headers: dict[str, str] | None) -> dict[str, str] | None:
    if status not in RETRY_AFTER_S:
        return headers
    return {"Retry-After": str(RETRY_AFTER_S[status]), **(headers or {})}


def _dumps(body: Any) -> str:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def ok(data: Any, *, message: str = "ok", status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A successful answer carrying `data` (`headers`: a 201's `Location`)."""
    body = {"success": True, "message": message, "timestamp": now_iso(), "data": data}
    return web.json_response(body, status=status, dumps=_dumps, headers=headers)


def failure(
    status: int, code: str, message: str, *, data: Any = None, headers: dict[str, str] | None = None
) -> web.Response:
    """An error answer; `data` travels too when given (the health verdict of a 503)."""
    body: dict[str, Any] = {"success": False, "message": message, "timestamp": now_iso(), "error": {"code": code}}
    if data is not None:
        body["data"] = data
    return web.json_response(body, status=status, dumps=_dumps, headers=_with_retry_after(status, headers))


def error_body(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """The status and JSON of the answer to `exc` (also sent as an SSE `error` event)."""
    code = code_name(exc)
    error: dict[str, Any] = {"code": code}
    message = message_for(exc)
    if isinstance(exc, ValidationError):
        error["violations"] = [{"field": http_field(v.field), "description": v.description} for v in exc.violations]
        first = exc.violations[0] if exc.violations else None
        if first is not None:
            more = f" (and {len(exc.violations) - 1} more)" if len(exc.violations) > 1 else ""
            message = f"{http_field(first.field)}: {first.description}{more}"
    body = {"success": False, "message": message, "timestamp": now_iso(), "error": error}
    return HTTP_STATUS.get(code, 500), body


def failure_for(exc: BaseException) -> web.Response:
    """The answer to an error from the domain (or Redis): its status, code, message and violations."""
    status, body = error_body(exc)
    headers = {"WWW-Authenticate": 'Bearer realm="sentinel"'} if status == 401 else None
    return web.json_response(body, status=status, dumps=_dumps, headers=_with_retry_after(status, headers))


def http_failure(exc: web.HTTPException) -> web.Response:
    """aiohttp's own refusal (404 no route, 405, 413 …) in the envelope, keeping its headers (Allow)."""
    code = CODE_OF_STATUS.get(exc.status, INTERNAL if exc.status >= 500 else "INVALID_ARGUMENT")
    headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
    return failure(exc.status, code, exc.reason if exc.status != 404 else "no such resource", headers=headers)
