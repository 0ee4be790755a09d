"""The OpenAPI 3.1 document of the HTTP API, as data: served at /api/v1/openapi.json.

Built once from small helpers so every route lists its parameters and *every* status it can
answer, and every JSON shape of `api_service.http.views` is a component schema (closed with
`additionalProperties: false`, so a field added to a view without its schema fails the fuzz
test). The test definition's schema is derived from the protobuf descriptor of
`sentinel.v1.TestDefinition` (its proto3 JSON names), so it follows the proto. A test checks the
document's paths and methods against the routes the app registers, both ways, and validates it
against the OpenAPI 3.1 specification.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from google.protobuf.descriptor import FieldDescriptor

from protos import sentinel_pb2 as pb
from shared.model import ArtifactPolicy, ErrorCategory, JobState, Priority, RunState
from shared.paging import MAX_PAGE_SIZE
from shared.queue_health import HealthStatus

JSON = dict[str, Any]

STRING: JSON = {"type": "string"}
INT: JSON = {"type": "integer", "minimum": 0}
BOOL: JSON = {"type": "boolean"}
NUMBER: JSON = {"type": "number"}
TIME: JSON = {"type": ["string", "null"], "format": "date-time"}
STRINGS: JSON = {"type": "array", "items": STRING}


def ref(name: str) -> JSON:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(name: str) -> JSON:
    return {"oneOf": [ref(name), {"type": "null"}]}


def obj(properties: JSON, *, optional: tuple[str, ...] = ()) -> JSON:
    """A closed object whose properties are all required but `optional`."""
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
    }


def words(kind: Any) -> JSON:
    return {"type": "string", "enum": [member.value for member in kind]}


# --- the test definition, from its protobuf descriptor ---------------------------------------

_SCALARS: dict[int, JSON] = {
    FieldDescriptor.TYPE_STRING: STRING,
    FieldDescriptor.TYPE_BOOL: BOOL,
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "minimum": 0, "maximum": 2**32 - 1},
    FieldDescriptor.TYPE_INT32: {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1},
}


def message_schemas(descriptor: Any, into: JSON) -> str:
    """Add the proto3 JSON schema of `descriptor` (and of the messages it holds) to `into`; its name."""
    name = str(descriptor.name)
    if name in into:
        return name
    into[name] = {}  # reserve the name: messages may refer to each other
    properties: JSON = {}
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            schema = ref(message_schemas(field.message_type, into))
        elif field.type == FieldDescriptor.TYPE_ENUM:
            schema = {"type": "string", "enum": [v.name for v in field.enum_type.values]}
        else:
            schema = _SCALARS[field.type]
        repeated = field.is_repeated
        properties[field.json_name] = {"type": "array", "items": schema} if repeated else schema
    into[name] = {"type": "object", "properties": properties, "additionalProperties": False}
    return name


# --- the JSON shapes of api_service.http.views -----------------------------------------------

_PROGRESS = obj({"percentage": INT, "currentStep": INT, "totalSteps": INT, "stepName": STRING, "message": STRING})
_JOB_ERROR = obj({"category": words(ErrorCategory), "message": STRING, "stepIndex": {"type": "integer"}})
_STEP_RESULT = obj(
    {
        "index": INT,
        "name": STRING,
        "success": BOOL,
        "skipped": BOOL,
        "durationMs": INT,
        "error": STRING,
        "artifacts": STRINGS,
        "consoleErrors": STRINGS,
        "failedRequests": STRINGS,
    }
)
_JOB_RESULT = obj(
    {
        "success": BOOL,
        "executionTimeMs": INT,
        "attempt": INT,
        "artifacts": STRINGS,
        "artifactNotes": STRINGS,
        "steps": {"type": "array", "items": ref("StepResult")},
    }
)
_JOB = obj(
    {
        "id": STRING,
        "name": STRING,
        "status": words(JobState),
        "priority": words(Priority),
        "progress": ref("Progress"),
        "attempt": INT,
        "maxAttempts": INT,
        "tags": STRINGS,
        "createdAt": TIME,
        "startedAt": TIME,
        "finishedAt": TIME,
        "runId": {"type": ["string", "null"]},
        "workerId": STRING,
        "error": nullable("JobError"),
        "result": nullable("JobResult"),
    }
)
_FIGURES: JSON = {
    "waiting": INT,
    "active": INT,
    "completed": INT,
    "failed": INT,
    "delayed": INT,
    "paused": BOOL,
    "totalProcessed": INT,
    "totalFailed": INT,
    "processingRate": NUMBER,
    "avgProcessingTime": NUMBER,
    "lastProcessedAt": TIME,
    "deadLettered": INT,
}
_RUN_TEST = obj(
    {
        "jobId": STRING,
        "name": STRING,
        "file": STRING,
        "status": words(JobState),
        "durationMs": INT,
        "failingStep": {"type": ["integer", "null"]},
        "failingStepName": {"type": ["string", "null"]},
        "error": nullable("JobError"),
        "artifacts": STRINGS,
    }
)

SCHEMAS: JSON = {
    "Progress": _PROGRESS,
    "JobError": _JOB_ERROR,
    "StepResult": _STEP_RESULT,
    "JobResult": _JOB_RESULT,
    "Job": _JOB,
    "JobPage": obj({"jobs": {"type": "array", "items": ref("Job")}, "nextPageToken": {"type": ["string", "null"]}}),
    "ProgressEvent": obj(
        {
            "jobId": STRING,
            "cursor": STRING,
            "status": words(JobState),
            "attempt": INT,
            "terminal": BOOL,
            "progress": ref("Progress"),
        }
    ),
    "QueueEvent": obj(
        {
            "cursor": STRING,
            "kind": STRING,
            "jobId": {"type": ["string", "null"]},
            "status": {"type": ["string", "null"], "enum": [*(s.value for s in JobState), None]},
            "tenant": {"type": ["string", "null"]},
            "tags": STRINGS,
            "at": TIME,
            "percentage": INT,
            "message": STRING,
        },
        optional=("percentage", "message"),
    ),
    "LaneStats": obj({"priority": words(Priority), **_FIGURES}),
    "QueueStats": obj(
        {
            "queue": STRING,
            **_FIGURES,
            "lanes": {"type": "array", "items": ref("LaneStats")},
            "tenant": {"type": ["string", "null"], "description": "null: the whole queue (auth disabled)"},
        }
    ),
    "QueueHealth": obj({"status": words(HealthStatus), "reasons": STRINGS, "stats": nullable("QueueStats")}),
    "QueueState": obj({"queue": STRING, "paused": BOOL}),
    "Artifact": obj(
        {
            "name": STRING,
            "contentType": STRING,
            "sizeBytes": INT,
            "attempt": INT,
            "stepIndex": {"type": "integer"},
            "createdAt": TIME,
        }
    ),
    "ArtifactList": obj({"artifacts": {"type": "array", "items": ref("Artifact")}}),
    "DeadLetter": obj(
        {
            "jobId": STRING,
            "name": STRING,
            "reason": STRING,
            "error": nullable("JobError"),
            "attempts": INT,
            "artifacts": STRINGS,
            "deadLetteredAt": TIME,
            "tags": STRINGS,
        }
    ),
    "DeadLetterPage": obj(
        {"deadLetters": {"type": "array", "items": ref("DeadLetter")}, "nextPageToken": {"type": ["string", "null"]}}
    ),
    "Purged": obj({"purged": INT}),
    "RunTest": _RUN_TEST,
    "Run": obj(
        {
            "id": STRING,
            "name": STRING,
            "state": words(RunState),
            "tests": {"type": "array", "items": ref("RunTest")},
            "counts": obj({state.value: INT for state in JobState}),
            "createdAt": TIME,
            "finishedAt": TIME,
        }
    ),
    "WhoAmI": obj(
        {"tenant": STRING, "role": {"type": "string", "enum": ["viewer", "submitter", "admin"]}, "authDisabled": BOOL}
    ),
    "Submitted": obj({"testId": STRING, "duplicate": BOOL}),
    "JobOptions": {
        "type": "object",
        "properties": {
            "priority": words(Priority),
            "timeout": {**INT, "description": "ms for the whole job; 0 or absent: by priority"},
            "tags": STRINGS,
            "maxAttempts": INT,
            "delayMs": INT,
            "idempotencyKey": STRING,
            "artifactPolicy": words(ArtifactPolicy),
            "recordVideo": BOOL,
        },
        "additionalProperties": False,
    },
    "SubmitRequest": {
        "type": "object",
        "properties": {"testDefinition": ref("TestDefinition"), "options": ref("JobOptions")},
        "required": ["testDefinition"],
        "additionalProperties": False,
    },
    "PurgeRequest": {"type": "object", "properties": {"olderThanMs": INT}, "additionalProperties": False},
    "Violation": obj({"field": STRING, "description": STRING}),
    "Error": {
        "type": "object",
        "properties": {
            "success": {"const": False},
            "message": STRING,
            "timestamp": {"type": "string", "format": "date-time"},
            "error": obj(
                {"code": STRING, "violations": {"type": "array", "items": ref("Violation")}}, optional=("violations",)
            ),
            "data": {"description": "the health verdict of an unhealthy queue (GET /queue/health); else absent"},
        },
        "required": ["success", "message", "timestamp", "error"],
        "additionalProperties": False,
    },
}
message_schemas(pb.TestDefinition.DESCRIPTOR, SCHEMAS)


def envelope(data: JSON) -> JSON:
    return {
        "type": "object",
        "properties": {
            "success": {"const": True},
            "message": STRING,
            "timestamp": {"type": "string", "format": "date-time"},
            "data": data,
        },
        "required": ["success", "message", "timestamp", "data"],
        "additionalProperties": False,
    }


# --- routes ----------------------------------------------------------------------------------

_REASONS = {
    200: "OK",
    202: "Accepted: queued",
    400: "Invalid request: the violations name each field (JSON body, parameters, Last-Event-ID)",
    401: "No API key, or an unknown one",
    403: "The key's role is too low, or the request comes from an origin not allowed",
    404: "No such resource (or another tenant's)",
    409: "The job is in a state that does not allow this",
    413: "The body is over 1 MiB",
    429: "The tenant's queue limit is reached",
    500: "Internal error (a generic message, never a stack trace)",
    503: "Redis (or the artifact store) is unreachable, or the server is shutting down",
}
_ERROR = {"application/json": {"schema": ref("Error")}}
_SSE = {"text/event-stream": {"schema": {"type": "string"}}}
_ALWAYS = (401, 403, 500, 503)

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
) -> JSON:
    """One operation: its success answer (`data` in the envelope, or raw `content`) and error answers."""
    success = content if content is not None else {"application/json": {"schema": envelope(data or {})}}
    responses: JSON = {str(ok): {"description": _REASONS[ok], "content": success}}
    for status in sorted(set(errors) | (set() if open_route else set(_ALWAYS))):
        responses[str(status)] = {"description": _REASONS[status], "content": copy.deepcopy(_ERROR)}
    found: JSON = {"summary": summary, "responses": responses}
    if parameters:
        found["parameters"] = parameters
    if body is not None:
        found["requestBody"] = {"required": body_required, "content": {"application/json": {"schema": ref(body)}}}
    if open_route:
        found["security"] = []
    return found


def _paths() -> JSON:
    return {
        "/whoami": {"get": operation("The caller's tenant and role", data=ref("WhoAmI"))},
        "/tests/execute": {
            "post": operation(
                "Submit a test (SUBMITTER)",
                ok=202,
                data=ref("Submitted"),
                body="SubmitRequest",
                errors=(400, 413, 429),
            )
        },
        "/tests": {
            "get": operation(
                "The tenant's tests, newest first",
                data=ref("JobPage"),
                parameters=[query("status", words(JobState)), query("tag", STRING), *PAGE],
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
                    {"name": "attempt", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}},
                    {"name": "file", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}},
                ],
                errors=(400, 404),
            )
        },
        "/queue/jobs/{id}/cancel": {
            "post": operation("Cancel a test (SUBMITTER)", data=ref("Job"), parameters=[ID], errors=(404, 409))
        },
        "/queue/jobs/{id}/retry": {
            "post": operation("Retry a finished test (SUBMITTER)", data=ref("Job"), parameters=[ID], errors=(404, 409))
        },
        "/runs/{id}": {"get": operation("A run and its tests", data=ref("Run"), parameters=[ID], errors=(404,))},
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
                content=_SSE,
                parameters=[LAST_EVENT_ID, query("status", words(JobState)), query("tag", STRING)],
                errors=(400,),
            )
        },
        "/queue/pause": {"post": operation("Pause the queue (ADMIN)", data=ref("QueueState"))},
        "/queue/resume": {"post": operation("Resume the queue (ADMIN)", data=ref("QueueState"))},
        "/queue/dead-letters": {
            "get": operation(
                "Dead letters, newest first (ADMIN)",
                data=ref("DeadLetterPage"),
                parameters=[query("category", words(ErrorCategory)), query("tag", STRING), *PAGE],
                errors=(400,),
            )
        },
        "/queue/dead-letters/{id}/requeue": {
            "post": operation("Requeue a dead letter (ADMIN)", data=ref("Job"), parameters=[ID], errors=(404, 409))
        },
        "/queue/dead-letters/purge": {
            "post": operation(
                "Delete dead letters older than olderThanMs (ADMIN)",
                data=ref("Purged"),
                body="PurgeRequest",
                body_required=False,
                errors=(400, 413),
            )
        },
        "/openapi.json": {
            "get": operation(
                "This document",
                content={"application/json": {"schema": {"type": "object"}}},
                open_route=True,
                errors=(403, 500),
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
                "error: {code, violations?}}). Send the API key as `Authorization: Bearer <key>`."
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
