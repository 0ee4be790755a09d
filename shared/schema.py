"""The names of the fields Sentinel keeps inside its Redis keys: one definition for Python and Lua.

`shared.keys` names the keys; this module names what is inside them: the job hash, the entries
of a job's progress stream, of the queue's events stream and of the lane streams, and the figures
hashes tally.lua keeps. `shared.codec` (and the few readers of raw entries) spell a field only
through these names; the Lua scripts in `shared/scripts/` spell the same names as literals, and
tests/shared/test_schema.py holds every name a script reads or writes to this module.

Never change a value here without migrating the data: these are the names already stored.
"""

from __future__ import annotations

from enum import StrEnum


class ProgressField(StrEnum):
    """A job's progress, kept in its hash and copied into each entry of its progress stream."""

    PCT = "pct"
    CUR = "cur"  # the current step, 1-based; 0 before the first
    TOTAL = "total"
    STEP = "step"  # the current step's name
    MSG = "msg"
    TS = "ts"  # when the progress was reported, ms


class JobField(StrEnum):
    """The job hash's own fields (its progress is in `ProgressField`)."""

    ID = "id"
    STATE = "state"
    PRIORITY = "priority"  # the lane the job is in now (a requeue may move it)
    NAME = "name"
    DEFINITION = "definition"  # JSON
    OPTIONS = "options"  # JSON, as submitted
    TAGS = "tags"  # JSON list
    TENANT = "tenant"
    USER = "user"
    REQUEST = "request"
    SOURCE = "source"
    CREATED = "created"
    TRACE = "trace"  # the submitter's trace context
    ATTEMPT = "attempt"
    TRIES = "tries"  # runs of the job ever, reruns included (attempt restarts at a rerun; this never does)
    MAX_ATTEMPTS = "max_attempts"
    TIMEOUT_MS = "timeout_ms"
    DUE = "due"  # when a scheduled job becomes due, ms
    FENCE = "fence"  # raised by every claim; a run's writes carry the value it claimed with
    WORKER = "worker"
    ENTRY = "entry"  # the lane entry of the current run
    STARTED = "started"
    FINISHED = "finished"
    RESULT = "result"  # JSON
    ERROR = "error"  # JSON
    CANCEL = "cancel"  # '1': a cancel was asked while it ran
    STALLED = "stalled"  # how often its executor stopped heartbeating
    DEAD_LETTER_REASON = "dlq_reason"
    DEAD_LETTERED_AT = "dlq_at"
    RUN = "run"  # the id of the run it belongs to ("" = none)
    SCHEDULE = "schedule"  # the id of the schedule that fired it ("" = none)
    FIRE = "fire"  # the schedule's fire time it runs for, ms (0: none or a TriggerSchedule)


class EntryField(StrEnum):
    """A progress-stream entry's fields besides the job's progress (`ProgressField`)."""

    STATE = "state"
    ATTEMPT = "attempt"
    TERMINAL = "terminal"  # '1' on the run's last entry: followers stop there


class EventField(StrEnum):
    """An entry of the queue's events stream (WatchEvents)."""

    KIND = "kind"
    JOB = "job"  # '' for the queue's own events (paused, resumed)
    STATE = "state"
    TENANT = "tenant"
    TS = "ts"
    TAGS = "tags"  # JSON list; every event carries its job's tags
    PCT = "pct"  # progress events only
    MSG = "msg"  # progress events only


class LaneField(StrEnum):
    """An entry of a lane stream: a job waiting for an executor."""

    JOB = "job"
    TENANT = "tenant"
    TRACE = "trace"
    FAIR = "fair"  # '1': counted in its tenant's fair-share window (fair.lua)


class Figure(StrEnum):
    """A figures hash's single fields (tally.lua keeps them, shared.stats reads them)."""

    DEAD_LETTERED = "dlq"
    PROCESSED = "processed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED = "timed"
    PROCESSING_MS = "processing_ms"
    LAST_PROCESSED = "last_processed"
    LAST_CLAIMED = "last_claimed"
    WAITING_SINCE = "waiting_since"


class FigurePrefix(StrEnum):
    """A figures hash's families of fields: the prefix, then a state or a ring slot."""

    COUNT = "n:"  # n:<state>, jobs in the state now
    RING_MINUTE = "rm:"  # rm:<slot>, the minute the slot counts
    RING_PROCESSED = "rp:"  # rp:<slot>, runs ended in it
    RING_FAILED = "rf:"  # rf:<slot>, runs failed in it

    def of(self, suffix: object) -> str:
        return f"{self.value}{suffix}"


class RunField(StrEnum):
    """Fields of a run's hash (`Keys.run`). A run's test hashes (`Keys.run_test`) use `JobField`
    names for what they copy from the job, plus FILE and ENDED."""

    ID = "id"
    NAME = "name"
    TENANT = "tenant"
    CREATED = "created"
    MAX_PARALLEL = "max_parallel"
    TOTAL = "total"
    DONE = "done"  # tests that have ended
    STATE = "state"  # running | finished | cancelled
    FINISHED = "finished"
    FILE = "file"  # a test's source file
    ENDED = "ended"  # '1' once a test has ended: counted in DONE


class ScheduleField(StrEnum):
    """Fields of a schedule's hash (`Keys.schedule`): what its owner set, and where its firing stands."""

    ID = "id"
    TENANT = "tenant"
    NAME = "name"
    CRON = "cron"
    INTERVAL = "interval"  # ms; 0 for a cron schedule
    TIMEZONE = "tz"
    JITTER = "jitter"  # ms
    OVERLAP = "overlap"  # skip | allow | buffer_one (shared.schedules.model.OverlapPolicy)
    CATCHUP = "catchup"  # ms
    DEFINITION = "definition"  # the template's definition, JSON (shared.codec)
    OPTIONS = "options"  # the template's options, JSON (shared.codec)
    USER = "user"
    REQUEST = "request"
    NOTIFICATIONS = "notifications"  # JSON list; secrets sealed
    PAUSED = "paused"  # '1' or '0'
    NOTE = "note"
    CREATED = "created"
    UPDATED = "updated"
    ANCHOR = "anchor"  # when the timing was set, ms: interval fire times count from here
    GENERATION = "gen"  # raised by each change of timing; a fire computed under another is refused
    LAST_FIRE = "last_fire"  # the latest claimed fire time, ms; only ever moves forward
    LAST_JOB = "last_job"  # the job of the latest run (what the overlap policy looks at)
    BUFFERED = "buffered"  # a fire time held back by BUFFER_ONE ('' = none)
    FIRED = "fired"  # runs started (fires and triggers)
    SKIPPED = "skipped"  # fires skipped by the overlap policy or the tenant's queue limit
    MISSED = "missed"  # fires dropped as older than the catch-up window


class AlertRuleField(StrEnum):
    """Fields of a tenant-wide alert rule's hash (`Keys.alert_rule`)."""

    ID = "id"
    TENANT = "tenant"
    TAG = "tag"
    NOTIFICATIONS = "notifications"  # JSON list; each secret sealed
    CREATED = "created"


class OwnerField(StrEnum):
    """Fields of an alert owner's hash (`Keys.alert_owner`): what alert_outcome.lua compares with."""

    OUTCOME = "outcome"  # pass | fail
    EVENT = "event"  # the events-stream id of the last event applied (older ones are skipped)
    SINCE = "since"  # when the outcome last changed, ms
    FAILS = "fails"  # failures in a row up to the last outcome (0 after a pass)


class DeliveryField(StrEnum):
    """Fields of a webhook delivery's hash (`Keys.alert_delivery`)."""

    ID = "id"
    TENANT = "tenant"
    EVENT = "event"  # failed, recovered, dead_lettered, ...
    URL = "url"
    JOB = "job"
    SCHEDULE = "schedule"
    RULE = "rule"
    STATE = "state"  # pending | delivered | failed
    ATTEMPTS = "attempts"
    STATUS = "status"  # the last answer's HTTP status (0: none)
    RESPONSE = "response"  # the last answer's body, at most 1 KiB
    ERROR = "error"  # why the last attempt failed
    BODY = "body"  # the JSON body, as signed and sent
    SECRET = "secret"  # sealed ('' = unsigned)
    CREATED = "created"
    LAST_AT = "last_at"
    NEXT_AT = "next_at"
    LEASE = "lease"  # the token of the attempt under way ('' = none)
    LANE = "lane"  # the zset of its owner's deliveries to its receiver, in order ('' = none: made before lanes)


class AlertFigure(StrEnum):
    """Fields of the alert figures hash (`Keys.alert_figures`): deliveries that ended so, ever."""

    DELIVERED = "delivered"
    FAILED = "failed"  # given up after the last attempt
    EXPIRED = "expired"  # removed by retention while it waited behind its receiver's earlier alerts


#: Every field of a hash: the job hash, the run hashes, the schedule hashes, the figures hashes and the
#: alerts' hashes.
HASH_FIELDS: frozenset[str] = frozenset(
    {
        *JobField,
        *ProgressField,
        *Figure,
        *RunField,
        *ScheduleField,
        *AlertRuleField,
        *OwnerField,
        *DeliveryField,
        *AlertFigure,
    }
)
#: Every field of a stream entry: progress entries, events, lane entries.
ENTRY_FIELDS: frozenset[str] = frozenset({*EntryField, *ProgressField, *EventField, *LaneField})
