"""The OpenAPI 3.1 document of the HTTP API, as data: served at /api/v1/openapi.json.

Built once from small helpers so every route lists its parameters and *every* status it can
answer; the JSON shapes are the component schemas of `api_service.http.schemas`. A test checks
the document's paths and methods against the routes the app registers, both ways, and validates
it against the OpenAPI 3.1 specification; the fuzz test drives the served API with it.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from api_service.http.envelope import RETRY_AFTER_S
from api_service.http.schemas import JSON, SCHEMAS, STRING, envelope, ref, words
from shared.events import EVENT_KINDS
from shared.model import ErrorCategory, JobState
from shared.paging import MAX_PAGE_SIZE

_REASONS = {
    200: "OK",
    201: "Created (`Location` names it)",
    202: "Accepted: queued",
    400: "Invalid request: the violations name each field (JSON body, parameters, Last-Event-ID); a query "
    "parameter the route does not take is one too",
    401: "No API key, or an unknown one",
    403: "The key's role is too low, or the request comes from an origin not allowed",
    404: "No such resource (or another tenant's)",
    409: "The job is in a state that does not allow this",
    413: "The body is over 1 MiB (any route that takes a body)",
    414: "The URL is over 8 KiB",
    415: "The body is not JSON (its Content-Type is neither application/json nor application/*+json)",
    429: "The tenant's queue limit (or, creating a schedule, its schedule limit) is reached; Retry-After says"
    " when to try again",
    500: "Internal error (a generic message, never a stack trace)",
    503: "Redis (or the artifact store) is unreachable, or the server is shutting down; Retry-After says when "
    "to try again",
}
_ERROR = {"application/json": {"schema": ref("Error")}}
_SSE = {"text/event-stream": {"schema": {"type": "string"}}}
_ALWAYS = (400, 401, 403, 414, 500, 503)
#: What a route that takes a body (every POST: `check_request` checks them all) may answer about it.
_BODY = (413, 415)
_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before trying again",
        "schema": {"type": "integer", "minimum": 0},
    }
}

ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
LAST_EVENT_ID = {
    "name": "Last-Event-ID",
    "in": "header",
    "required": False,
    "description": "resume after this cursor (the `id:` of the last event received)",
    "schema": STRING,
}


def query(name: str, schema: JSON, description: str = "") -> JSON:
    found = {"name": name, "in": "query", "required": False, "schema": schema}
    return found | ({"description": description} if description else {})


def query_words(kind: Any) -> JSON:
    """A query parameter's enum: `kind`'s words, or empty (which, like absent, filters nothing:
    `parsing.query_word`)."""
    found = words(kind)
    return found | {"enum": ["", *found["enum"]]}


#: An artifact's run, as `shared.artifacts.parse_name` takes it: a positive integer, no leading zero.
ATTEMPT = {
    "name": "attempt",
    "in": "path",
    "required": True,
    "description": "the run that made it, as in the artifact's name and `attempt`",
    "schema": {"type": "string", "pattern": "^[1-9][0-9]*$"},
}

PAGE = [
    query("pageSize", {"type": "integer", "minimum": 0, "maximum": MAX_PAGE_SIZE}, "0 or absent: 50"),
    query("pageToken", STRING, "the nextPageToken of the previous page"),
]


def operation(
    summary: str,
    *,
    data: JSON | None = None,
    ok: int = 200,
    errors: tuple[int, ...] = (),
    parameters: list[JSON] | None = None,
    body: str | None = None,
    body_required: bool = True,
    content: JSON | None = None,
    open_route: bool = False,
    description: str | None = None,
) -> JSON:
    """One operation: its success answer (`data` in the envelope, or raw `content`) and error answers."""
    success = content if content is not None else {"application/json": {"schema": envelope(data or {})}}
    responses: JSON = {str(ok): {"description": _REASONS[ok], "content": success}}
    for status in sorted(set(errors) | ({414} if open_route else set(_ALWAYS))):
        responses[str(status)] = {"description": _REASONS[status], "content": copy.deepcopy(_ERROR)}
        if status in RETRY_AFTER_S:
            responses[str(status)]["headers"] = copy.deepcopy(_RETRY_AFTER)
    found: JSON = {"summary": summary, "responses": responses}
    if description is not None:
        found["description"] = description
    if parameters:
        found["parameters"] = parameters
    if body is not None:
        found["requestBody"] = {"required": body_required, "content": {"application/json": {"schema": ref(body)}}}
    if open_route:
        found["security"] = []
    return found


def _noted(summary: str) -> JSON:
    """A change of a schedule's state, with an optional note saying why."""
    return operation(
        summary,
        data=ref("Schedule"),
        parameters=[ID],
        body="NoteRequest",
        body_required=False,
        errors=(400, 404, *_BODY),
    )


def _paths() -> JSON:
    return {
        "/auth": {
            "get": operation(
                "Whether this API needs a key (asked without one)",
                data=ref("AuthMode"),
                open_route=True,
                errors=(400, 403, 500),
            )
        },
        "/whoami": {"get": operation("The caller's tenant and role", data=ref("WhoAmI"))},
        "/tests/execute": {
            "post": operation(
                "Submit a test (SUBMITTER)",
                ok=202,
                data=ref("Submitted"),
                body="SubmitRequest",
                errors=(400, *_BODY, 429),
            )
        },
        "/tests": {
            "get": operation(
                "The tenant's tests, newest first",
                data=ref("JobPage"),
                parameters=[
                    query("status", query_words(JobState)),
                    query("tag", STRING),
                    query("scheduleId", STRING, "only the jobs this schedule fired (or a trigger of it ran)"),
                    *PAGE,
                ],
                errors=(400,),
            )
        },
        "/tests/{id}/status": {"get": operation("A test's job", data=ref("Job"), parameters=[ID], errors=(404,))},
        "/tests/{id}/events": {
            "get": operation(
                "A test's progress as Server-Sent Events (`id:` is the cursor), ending after the terminal event",
                content=_SSE,
                parameters=[ID, LAST_EVENT_ID],
                errors=(400, 404),
            )
        },
        "/tests/{id}/artifacts": {
            "get": operation("A test's artifacts", data=ref("ArtifactList"), parameters=[ID], errors=(404,))
        },
        "/tests/{id}/artifacts/{attempt}/{file}": {
            "get": operation(
                "One artifact's bytes (attachment for archives and videos, inline for images)",
                content={"*/*": {"schema": {"type": "string", "format": "binary"}}},
                parameters=[
                    ID,
                    ATTEMPT,
                    {"name": "file", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}},
                ],
                errors=(400, 404),
            )
        },
        "/queue/jobs/{id}/cancel": {
            "post": operation("Cancel a test (SUBMITTER)", data=ref("Job"), parameters=[ID], errors=(404, 409, *_BODY))
        },
        "/queue/jobs/{id}/retry": {
            "post": operation(
                "Retry a finished test (SUBMITTER)", data=ref("Job"), parameters=[ID], errors=(404, 409, *_BODY, 429)
            )
        },
        "/runs/{id}": {"get": operation("A run and its tests", data=ref("Run"), parameters=[ID], errors=(404,))},
        "/schedules": {
            "get": operation(
                "The tenant's schedules, newest first, with their next fire times",
                data=ref("SchedulePage"),
                parameters=[*PAGE],
                errors=(400,),
            ),
            "post": operation(
                "Create a schedule (SUBMITTER): its timing, the test each fire runs, its notifications",
                ok=201,
                data=ref("Schedule"),
                body="ScheduleRequest",
                errors=(400, *_BODY, 429),
            ),
        },
        "/schedules/{id}": {
            "get": operation(
                "A schedule, its next fire times and its latest runs (each run's status and error kept after"
                " retention removed its test)",
                data=ref("Schedule"),
                parameters=[ID],
                errors=(404,),
            ),
            "patch": operation(
                "Change a schedule's fields (SUBMITTER), each replaced whole; a new timing counts from now",
                description="The body holds the fields to change, named as GET shows them (JSON merge patch:"
                " `null` sets a field back to its default). A notification sent back as GET showed it keeps its"
                " stored URL and secret. Unpausing is a resume: what fell while paused does not run.",
                data=ref("Schedule"),
                parameters=[ID],
                body="SchedulePatch",
                errors=(400, 404, *_BODY),
            ),
            "delete": operation(
                "Delete a schedule (SUBMITTER); the tests it ran stay",
                data=ref("Deleted"),
                parameters=[ID],
                errors=(404, *_BODY),
            ),
        },
        "/schedules/{id}/pause": {
            "post": _noted("Pause a schedule (SUBMITTER): no fire runs until it is resumed (a trigger still does)")
        },
        "/schedules/{id}/resume": {"post": _noted("Resume a schedule (SUBMITTER): it fires again from now on")},
        "/schedules/{id}/trigger": {
            "post": operation(
                "Run a schedule's test once now (SUBMITTER), whether or not it is paused",
                ok=202,
                data=ref("Job"),
                parameters=[ID],
                errors=(404, *_BODY, 429),
            )
        },
        "/alerts/rules": {
            "get": operation(
                "The tenant's alert rules, newest first (URLs masked)",
                data=ref("AlertRulePage"),
                parameters=[*PAGE],
                errors=(400,),
            ),
            "post": operation(
                "Create an alert rule (SUBMITTER): webhooks for the outcomes of every job with a tag",
                ok=201,
                data=ref("AlertRule"),
                body="AlertRuleRequest",
                errors=(400, *_BODY),
            ),
        },
        "/alerts/rules/{id}": {
            "get": operation("An alert rule (URLs masked)", data=ref("AlertRule"), parameters=[ID], errors=(404,)),
            "delete": operation(
                "Delete an alert rule (SUBMITTER); its deliveries already made are still sent",
                data=ref("Deleted"),
                parameters=[ID],
                errors=(404, *_BODY),
            ),
        },
        "/alerts/deliveries": {
            "get": operation(
                "The tenant's webhook deliveries, newest first, with the receivers' answers (URLs masked)",
                data=ref("DeliveryPage"),
                parameters=[
                    query("scheduleId", STRING, "only a schedule's"),
                    query("ruleId", STRING, "only an alert rule's"),
                    query("testId", STRING, "only those about one test"),
                    *PAGE,
                ],
                errors=(400,),
            )
        },
        "/queue/stats": {"get": operation("The queue's figures (the caller's tenant's)", data=ref("QueueStats"))},
        "/queue/health": {
            "get": operation(
                "The queue's health: 200 healthy or degraded, 503 unhealthy (with the verdict as data)",
                data=ref("QueueHealth"),
            )
        },
        "/queue/events": {
            "get": operation(
                "The queue's events as Server-Sent Events (`id:` is the cursor); never ends on its own",
                description="Without `Last-Event-ID` the stream first sends its position (an `id:` line with no"
                " data, which sets an EventSource's `lastEventId`), so a reconnect resumes from where it began.",
                content=_SSE,
                parameters=[
                    LAST_EVENT_ID,
                    query(
                        "kind",
                        {"type": "array", "items": {"type": "string", "enum": list(EVENT_KINDS)}},
                        "only events of these kinds (repeat the parameter: `?kind=active&kind=completed`)",
                    ),
                    query("status", query_words(JobState)),
                    query("tag", STRING),
                ],
                errors=(400,),
            )
        },
        "/queue/pause": {
            "post": operation("Pause the queue: every tenant's work (OPERATOR)", data=ref("QueueState"), errors=_BODY)
        },
        "/queue/resume": {"post": operation("Resume the queue (OPERATOR)", data=ref("QueueState"), errors=_BODY)},
        "/queue/dead-letters": {
            "get": operation(
                "Dead letters, newest first (ADMIN)",
                data=ref("DeadLetterPage"),
                parameters=[query("category", query_words(ErrorCategory)), query("tag", STRING), *PAGE],
                errors=(400,),
            )
        },
        "/queue/dead-letters/{id}/requeue": {
            "post": operation(
                "Requeue a dead letter (ADMIN)", data=ref("Job"), parameters=[ID], errors=(404, 409, *_BODY, 429)
            )
        },
        "/queue/dead-letters/purge": {
            "post": operation(
                "Delete dead letters older than olderThanMs (ADMIN)",
                data=ref("Purged"),
                body="PurgeRequest",
                body_required=False,
                errors=(400, *_BODY),
            )
        },
        "/openapi.json": {
            "get": operation(
                "This document",
                content={"application/json": {"schema": {"type": "object"}}},
                open_route=True,
                errors=(400, 403, 500),
            )
        },
    }


@functools.cache
def document() -> JSON:
    """The whole OpenAPI 3.1 document (paths relative to the server URL /api/v1)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Sentinel HTTP API",
            "version": "1",
            "description": (
                "Browser tests as a service. Every JSON answer is the envelope "
                "{success, message, timestamp, data} (errors: {success: false, message, timestamp, "
                "error: {code, violations?}}). Send the API key as `Authorization: Bearer <key>`, and a "
                "body as JSON (`Content-Type: application/json`; none at all is read as JSON too). Every GET "
                "also answers HEAD (the headers alone); a method a path does not have answers 405 with "
                "`Allow`; a 429 or 503 carries `Retry-After`."
            ),
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": _paths(),
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "an API key"}},
        },
    }
