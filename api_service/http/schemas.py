"""The component schemas of the HTTP API's OpenAPI document: every JSON shape it answers with.

One schema per view of `api_service.http.views`, closed (`additionalProperties: false`) so that a
field added to a view without its schema fails the fuzz test, plus the request bodies and the
error envelope. The test definition's schema is derived from the protobuf descriptor of
`sentinel.v1.TestDefinition` (its proto3 JSON names), so it follows the proto. Data only.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import FieldDescriptor

from protos import sentinel_pb2 as pb
from shared.access import Role
from shared.alerts.deliveries import DeliveryState
from shared.model import ArtifactPolicy, ErrorCategory, JobSource, JobState, Priority, RunState
from shared.notifications import EVENTS, FORMATS, MAX_AFTER_FAILURES, MAX_NOTIFICATIONS
from shared.queue_health import HealthStatus
from shared.schedules.model import OverlapPolicy
from shared.schedules.rules import MAX_CATCHUP_MS, MAX_NOTE_CHARS
from shared.schedules.rules import MAX_NAME_CHARS as MAX_SCHEDULE_NAME_CHARS
from shared.schedules.timing import MAX_INTERVAL_MS, MAX_JITTER_MS, MIN_INTERVAL_MS
from shared.validation import (
    MAX_ATTEMPTS,
    MAX_DELAY_MS,
    MAX_IDEMPOTENCY_KEY_CHARS,
    MAX_JOB_TIMEOUT_MS,
    MAX_NAME_CHARS,
    MAX_STEPS,
    MAX_TAG_CHARS,
    MAX_TAGS,
)

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
        if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
            # A map is a JSON object in proto3 JSON (`"headers": {"Accept": "application/json"}`).
            value = field.message_type.fields_by_name["value"]
            properties[field.json_name] = {"type": "object", "additionalProperties": _SCALARS[value.type]}
            continue
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
#: A cancel's error has no category (null): nothing failed.
_CATEGORY: JSON = {"type": ["string", "null"], "enum": [*words(ErrorCategory)["enum"], None]}
_JOB_ERROR = obj({"category": _CATEGORY, "message": STRING, "stepIndex": {"type": "integer"}})
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
        "httpStatus": {**INT, "description": "a request or navigate step's final response status (0: none)"},
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
        "attempt": {**INT, "description": "the attempt under way or last made, of maxAttempts; restarts after a retry"},
        "maxAttempts": INT,
        "runs": {
            **INT,
            "description": "runs so far, every attempt and every retry (rerun) counted; never restarts. The newest "
            "run's artifacts are named <runs>/<file> (0: never run)",
        },
        "tags": STRINGS,
        "createdAt": TIME,
        "startedAt": TIME,
        "finishedAt": TIME,
        "runId": {"type": ["string", "null"]},
        "source": {**words(JobSource), "description": "what submitted it (scheduler: a schedule's fire or trigger)"},
        "scheduleId": {"type": ["string", "null"], "description": "the schedule that fired it"},
        "fireTime": {**TIME, "description": "the schedule's fire time it runs for (null: not a fire, or a trigger)"},
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
    "cancelled": INT,
    "totalCancelled": INT,
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
        "tags": STRINGS,
    }
)

SCHEMAS: JSON = {
    "Progress": _PROGRESS,
    "JobError": _JOB_ERROR,
    "StepResult": _STEP_RESULT,
    "JobResult": _JOB_RESULT,
    "AuthMode": obj({"authDisabled": BOOL}),
    "Job": _JOB,
    "JobPage": obj(
        {
            "jobs": {"type": "array", "items": ref("Job")},
            "nextPageToken": {"type": ["string", "null"]},
            "partial": {"type": "string", "description": "present when only part of the jobs is listed, saying why"},
        },
        optional=("partial",),
    ),
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
            "attempt": {
                **INT,
                "description": "the run that made it (its name's first segment): every attempt and every retry "
                "(rerun) counted, unlike Job.attempt",
            },
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
    "Schedule": obj(
        {
            "id": STRING,
            "name": STRING,
            "testName": STRING,
            "cron": {"type": ["string", "null"], "description": "null for an interval schedule"},
            "intervalMs": {"type": ["integer", "null"], "minimum": 1000, "description": "null for a cron schedule"},
            "timezone": STRING,
            "jitterMs": INT,
            "overlap": words(OverlapPolicy),
            "catchupWindowMs": INT,
            "paused": BOOL,
            "note": STRING,
            "tags": STRINGS,
            "notifications": {"type": "array", "items": ref("Notification")},
            "nextFires": {"type": "array", "items": TIME},
            "recentRuns": {
                "type": "array",
                "items": obj(
                    {
                        "fireTime": TIME,
                        "testId": {"type": ["string", "null"], "description": "null: the fire started no test"},
                        "status": {"type": ["string", "null"], "enum": [*(s.value for s in JobState), None]},
                        "error": {**STRING, "description": "a failed test's error, its first line"},
                        "testRemoved": {**BOOL, "description": "retention removed the test; status is how it ended"},
                        "skipped": BOOL,
                        "reason": STRING,
                        "triggered": BOOL,
                    }
                ),
            },
            "fired": INT,
            "skipped": INT,
            "missed": INT,
            "createdAt": TIME,
            "updatedAt": TIME,
        }
    ),
    "SchedulePage": obj(
        {"schedules": {"type": "array", "items": ref("Schedule")}, "nextPageToken": {"type": ["string", "null"]}}
    ),
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
        {"tenant": STRING, "role": {"type": "string", "enum": [r.label for r in Role]}, "authDisabled": BOOL}
    ),
    "Submitted": obj({"testId": STRING, "duplicate": BOOL}),
    "JobOptions": {
        "type": "object",
        "properties": {
            "priority": words(Priority),
            "timeout": {
                **INT,
                "maximum": MAX_JOB_TIMEOUT_MS,
                "description": "ms for the whole job; 0 or absent: by priority",
            },
            "tags": {
                "type": "array",
                "items": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_TAG_CHARS,
                    "description": "letters, digits, '.', '_', ':' or '-'",
                },
                "maxItems": MAX_TAGS,
                "uniqueItems": True,
            },
            "maxAttempts": {**INT, "maximum": MAX_ATTEMPTS, "description": "0 or absent: the queue's default"},
            "delayMs": {**INT, "maximum": MAX_DELAY_MS},
            "idempotencyKey": {**STRING, "maxLength": MAX_IDEMPOTENCY_KEY_CHARS},
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
# The descriptor knows types only: the main limits of `shared.validation` (not every rule of it)
# are stated here, so that a request the document allows is one the server takes.
SCHEMAS["TestDefinition"]["properties"]["name"] = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_NAME_CHARS,
    "pattern": r"\S",
    "description": "not only spaces",
}
SCHEMAS["TestDefinition"]["properties"]["steps"] |= {"minItems": 1, "maxItems": MAX_STEPS}
SCHEMAS["TestDefinition"]["required"] = ["name", "steps"]


def _or_null(schema: JSON) -> JSON:
    """`schema`, or null (a PATCH's way to set a field back to its default)."""
    return {"anyOf": [schema, {"type": "null"}]}


#: What a POST or PATCH of a schedule may set, by name (the fields `GET` shows, the test as
#: POST /tests/execute takes it); `parsing_schedules` reads exactly these.
_SCHEDULE_FIELDS: JSON = {
    "name": {**STRING, "maxLength": MAX_SCHEDULE_NAME_CHARS, "pattern": r"\S"},
    "cron": {**STRING, "description": "5 fields, or 6 with seconds first; exactly one of cron and intervalMs"},
    "intervalMs": {"type": "integer", "minimum": MIN_INTERVAL_MS, "maximum": MAX_INTERVAL_MS},
    "timezone": {**STRING, "description": "IANA (Europe/Berlin); empty or absent: UTC"},
    "jitterMs": {**INT, "maximum": MAX_JITTER_MS},
    "overlap": words(OverlapPolicy),
    "catchupWindowMs": {**INT, "maximum": MAX_CATCHUP_MS},
    "paused": BOOL,
    "note": {**STRING, "maxLength": MAX_NOTE_CHARS},
    "test": ref("SubmitRequest"),
    "notifications": {
        "type": "array",
        "maxItems": MAX_NOTIFICATIONS,
        "items": {
            "type": "object",
            "properties": {
                "url": {**STRING, "description": "as GET showed it (masked): keeps the URL stored"},
                "events": {"type": "array", "items": {"type": "string", "enum": list(EVENTS)}},
                "secret": {**STRING, "description": "signs each delivery; absent: keeps the secret stored"},
                "afterFailures": {"type": "integer", "minimum": 0, "maximum": MAX_AFTER_FAILURES},
                "format": {"type": "string", "enum": list(FORMATS)},
                "secretSet": {**BOOL, "description": "as GET shows it; ignored"},
            },
            "required": ["url"],
            "additionalProperties": False,
        },
    },
}
SCHEMAS["ScheduleRequest"] = {
    "type": "object",
    "properties": _SCHEDULE_FIELDS,
    "required": ["name", "test"],
    "additionalProperties": False,
}
SCHEMAS["SchedulePatch"] = {
    "type": "object",
    "description": "the fields to change, each replaced whole; null sets a field back to its default",
    "properties": {name: _or_null(schema) for name, schema in _SCHEDULE_FIELDS.items()},
    "minProperties": 1,
    "additionalProperties": False,
}
_NOTIFICATION_SHOWN = obj(
    {
        "url": {**STRING, "description": "masked: a URL is write-only"},
        "events": STRINGS,
        "secretSet": BOOL,
        "afterFailures": {**INT, "minimum": 1},
        "format": {"type": "string", "enum": list(FORMATS)},
    }
)
SCHEMAS["Notification"] = _NOTIFICATION_SHOWN
SCHEMAS["AlertRule"] = obj(
    {"id": STRING, "tag": STRING, "notifications": {"type": "array", "items": ref("Notification")}, "createdAt": TIME}
)
SCHEMAS["AlertRulePage"] = obj(
    {"rules": {"type": "array", "items": ref("AlertRule")}, "nextPageToken": {"type": ["string", "null"]}}
)
SCHEMAS["AlertRuleRequest"] = {
    "type": "object",
    "properties": {
        "tag": {**STRING, "minLength": 1, "maxLength": MAX_TAG_CHARS, "description": "a job tag: every job with it"},
        "notifications": {**_SCHEDULE_FIELDS["notifications"], "minItems": 1},
    },
    "required": ["tag", "notifications"],
    "additionalProperties": False,
}
_NULL_OR_STRING: JSON = {"type": ["string", "null"]}
SCHEMAS["Delivery"] = obj(
    {
        "id": STRING,
        "event": {**STRING, "description": "failed, recovered, dead_lettered, timeout, cancelled or completed"},
        "url": {**STRING, "description": "masked"},
        "state": words(DeliveryState),
        "testId": _NULL_OR_STRING,
        "scheduleId": _NULL_OR_STRING,
        "ruleId": _NULL_OR_STRING,
        "attempts": INT,
        "responseStatus": {"type": ["integer", "null"], "description": "the last answer's HTTP status"},
        "responseBody": {**STRING, "description": "the last answer's body, at most 1 KiB"},
        "error": {**STRING, "description": "why the last attempt failed"},
        "body": {**STRING, "description": "the body sent (JSON text)"},
        "createdAt": TIME,
        "lastAttemptAt": TIME,
        "nextAttemptAt": TIME,
    }
)
SCHEMAS["DeliveryPage"] = obj(
    {"deliveries": {"type": "array", "items": ref("Delivery")}, "nextPageToken": {"type": ["string", "null"]}}
)
SCHEMAS["NoteRequest"] = {
    "type": "object",
    "properties": {"note": {**STRING, "maxLength": MAX_NOTE_CHARS, "description": "why"}},
    "additionalProperties": False,
}
SCHEMAS["Deleted"] = obj({"deleted": {"const": True}})


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
