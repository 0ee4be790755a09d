"""What a job's end means for alerts, and applying one events-stream entry to its owners.

An *owner* keeps a last outcome: a schedule (`schedule:<id>`), or a tenant-wide rule and the name
of a test it covers (`rule:<id>:<test name>`), since one tag may cover many checks. The outcome of
a job's end, and the alert events it may cause:

| events-stream entry                  | outcome | alert events                                   |
|--------------------------------------|---------|------------------------------------------------|
| completed                            | pass    | `recovered` if the last outcome was a failure; `completed` |
| failed, stalled (given up: state failed) | fail | `failed` if the last outcome was a pass or none |
| timeout                              | fail    | `failed` as above; `timeout`                   |
| cancelled                            | —       | `cancelled`                                    |
| dead_lettered                        | —       | `dead_lettered` (the job's `failed` came just before) |

Only the last attempt's end counts: an attempt that will be retried writes `retrying`, never one of
these, and a stalled run that is run again writes `stalled` with state running. A cancelled run says
nothing about the site, so it leaves the last outcome as it was.

alert_outcome.lua compares and updates an owner's outcome and makes the deliveries in one step,
keyed by the entry's id, so applying an entry twice (a replica died before its XACK) alerts once.
"""

from __future__ import annotations

import datetime
import enum
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from shared import codec, jobs
from shared.alerts.rules import rules_for_tags
from shared.alerts.storage import script
from shared.clock import now_ms
from shared.errors import NotFoundError
from shared.model import Job, JobState
from shared.notifications import Notification
from shared.queue import Queue
from shared.schedules import history
from shared.schedules.store import schedule_notifications
from shared.schema import DeliveryField, EventField, JobField, OwnerField
from shared.settings import AlertSettings

__all__ = [
    "EFFECTS",
    "Effect",
    "NotificationLookup",
    "Outcome",
    "Owner",
    "apply_entry",
    "effect_of",
    "unowned_ends",
]

log = logging.getLogger(__name__)

#: An owner's last outcome is forgotten after this long without a job's end.
OWNER_TTL_MS = 90 * 86_400_000
#: Delivery ids are derived from (entry, owner, notification, event): the same entry makes the same ids.
_DELIVERY_NAMESPACE = uuid.UUID("5b0f8f52-3c1e-4c5e-9a51-7c2d4b1e0a11")

#: A schedule's notifications (secrets sealed) by tenant and schedule id; NotFoundError when it is
#: gone. The schedule store's `schedule_notifications`, unless a caller gives another.
NotificationLookup = Callable[[Queue, str, str], Awaitable[tuple[Notification, ...]]]


class Outcome(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"


@dataclass(frozen=True)
class Effect:
    """A job's end: its outcome (None: neither) and its alert events, each with whether it is
    made only when the outcome changes the owner's."""

    outcome: Outcome | None
    events: tuple[tuple[str, bool], ...]


EFFECTS: dict[str, Effect] = {
    "completed": Effect(Outcome.PASS, (("recovered", True), ("completed", False))),
    "failed": Effect(Outcome.FAIL, (("failed", True),)),
    "timeout": Effect(Outcome.FAIL, (("failed", True), ("timeout", False))),
    "cancelled": Effect(None, (("cancelled", False),)),
    "dead_lettered": Effect(None, (("dead_lettered", False),)),
}


def effect_of(kind: str, state: str) -> Effect | None:
    """The effect of an events-stream entry of `kind` about a job in `state`; None: no job's end."""
    if kind == "stalled":
        return EFFECTS["failed"] if state == JobState.FAILED else None
    return EFFECTS.get(kind)


@dataclass(frozen=True)
class Owner:
    key: str
    notifications: tuple[Notification, ...]
    schedule_id: str = ""
    rule_id: str = ""


async def owners_of(queue: Queue, job: Job, *, lookup: NotificationLookup) -> list[Owner]:
    """The owners a job's end counts for: its schedule, and each rule for one of its tags."""
    tenant = job.metadata.tenant_id
    owners = []
    schedule_id = job.metadata.schedule_id
    if schedule_id:
        try:
            notifications = await lookup(queue, tenant, schedule_id)
        except NotFoundError:  # the schedule was deleted since it fired the job: its outcome is still kept
            notifications = ()
        owners.append(Owner(f"schedule:{schedule_id}", notifications, schedule_id=schedule_id))
    # Under a rule, each check keeps its own last outcome: a scheduled job's check is its schedule
    # (a prod and a staging schedule of one test file share the test's name), any other's its test.
    check = f"schedule:{schedule_id}" if schedule_id else job.definition.name
    for rule in await rules_for_tags(queue, tenant=tenant, tags=job.options.tags):
        owners.append(Owner(f"rule:{rule.rule_id}:{check}", rule.notifications, rule_id=rule.rule_id))
    return owners


def _iso(ms: int) -> str | None:
    if not ms:
        return None
    moment = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


#: How a `text` body opens for each event (chat apps render the emoji codes).
_TEXT_EVENTS = {
    "failed": ":red_circle: {name} failed",
    "recovered": ":large_green_circle: {name} recovered",
    "completed": ":white_check_mark: {name} passed",
    "timeout": ":hourglass: {name} timed out",
    "dead_lettered": ":warning: {name} ran out of attempts",
    "cancelled": ":heavy_minus_sign: {name} was cancelled",
}


@dataclass(frozen=True)
class Streak:
    """A check's run of failures as a job's end leaves it: failures in a row up to and including the
    job (for a pass, the run it ended; none, 0), and when that run began (0: none)."""

    failures: int = 0
    since_ms: int = 0


async def streak_of(queue: Queue, owner: Owner, outcome: Outcome | None, *, now: int) -> Streak:
    """The owner's run of failures once this outcome is applied, from its hash as it stands before."""
    last, since, fails = await queue.redis.hmget(
        queue.keys.alert_owner(owner.key), [OwnerField.OUTCOME, OwnerField.SINCE, OwnerField.FAILS]
    )
    before = int(fails) if fails else (1 if last == "fail" else 0)  # an owner kept before the count
    began = int(since or 0) if last == "fail" else 0
    if outcome is Outcome.FAIL:
        return Streak(before + 1, began or now)
    return Streak(before, began)  # a pass: the run it ended; neither: unchanged


def delivery_body(
    job: Job,
    owner: Owner,
    *,
    event: str,
    delivery_id: str,
    occurred_ms: int,
    format: str = "sentinel",
    streak: Streak = Streak(),
    public_url: str = "",
) -> str:
    """What a receiver gets: Sentinel's JSON — the event, the job's end, the check's run of failures
    and where the alert came from — or, for `format` "text", one line of it as `{"text": ...}`
    (chat incoming webhooks)."""
    error = job.failure
    link = f"{public_url}/#/jobs/{quote(job.job_id, safe='')}" if public_url else None
    if format == "text":
        said = _TEXT_EVENTS.get(event, "{name}: " + event).format(name=job.definition.name or job.job_id)
        line = error.headline if error is not None else ""
        why = f": {line}" if line else ""
        if event == "failed" and streak.failures > 1:
            why += f" ({streak.failures} failures in a row)"
        elif event == "recovered" and streak.failures:
            why = f" after {streak.failures} failure{'s' if streak.failures > 1 else ''} since {_iso(streak.since_ms)}"
        where = f"job {job.job_id}" + (f", schedule {job.metadata.schedule_id}" if job.metadata.schedule_id else "")
        return codec.dumps({"text": f"{said}{why} ({where})" + (f" {link}" if link else "")})
    return codec.dumps(
        {
            "event": event,
            "delivery_id": delivery_id,
            "job_id": job.job_id,
            "schedule_id": job.metadata.schedule_id,  # a rule's alert too says which schedule's job it was
            "rule_id": owner.rule_id,
            "state": job.state.value,
            "test_name": job.definition.name,
            "error": error.message if error is not None else "",
            "error_category": error.category.value if error is not None and error.category else "",
            "tenant": job.metadata.tenant_id,
            "tags": list(job.options.tags),
            "attempt": job.attempt,
            "finished_at": _iso(job.finished_at_ms),
            "occurred_at": _iso(occurred_ms),
            "failures": streak.failures,
            "failing_since": _iso(streak.since_ms),
            "job_url": link,  # the job's page in the dashboard (SENTINEL_PUBLIC_URL), or null
        }
    )


def _candidates(
    queue: Queue,
    job: Job,
    owner: Owner,
    effect: Effect,
    *,
    entry_id: str,
    occurred_ms: int,
    now: int,
    streak: Streak = Streak(),
    public_url: str = "",
) -> list[dict[str, object]]:
    keys = queue.keys
    tenant = job.metadata.tenant_id
    indexes = [keys.alert_deliveries(tenant), keys.alert_deliveries(tenant, "job", job.job_id)]
    if owner.schedule_id:
        indexes.append(keys.alert_deliveries(tenant, "schedule", owner.schedule_id))
    if owner.rule_id:
        indexes.append(keys.alert_deliveries(tenant, "rule", owner.rule_id))
    found: list[dict[str, object]] = []
    for index, notification in enumerate(owner.notifications):
        for event, on_change in effect.events:
            if not notification.wants(event):
                continue
            delivery_id = str(uuid.uuid5(_DELIVERY_NAMESPACE, f"{entry_id}|{owner.key}|{index}|{event}"))
            fields = {
                DeliveryField.ID: delivery_id,
                DeliveryField.TENANT: tenant,
                DeliveryField.EVENT: event,
                DeliveryField.URL: notification.url,
                DeliveryField.JOB: job.job_id,
                DeliveryField.SCHEDULE: owner.schedule_id,
                DeliveryField.RULE: owner.rule_id,
                DeliveryField.STATE: "pending",
                DeliveryField.ATTEMPTS: "0",
                DeliveryField.STATUS: "0",
                DeliveryField.BODY: delivery_body(
                    job,
                    owner,
                    event=event,
                    delivery_id=delivery_id,
                    occurred_ms=occurred_ms,
                    format=notification.format,
                    streak=streak,
                    public_url=public_url,
                ),
                DeliveryField.SECRET: notification.secret,
                DeliveryField.CREATED: str(now),
                DeliveryField.NEXT_AT: str(now),
                # One lane per owner and receiver: a URL changed is another receiver, with a lane of its own.
                DeliveryField.LANE: keys.alert_lane(
                    str(uuid.uuid5(_DELIVERY_NAMESPACE, f"{owner.key}|{notification.url}"))
                ),
            }
            when = "change" if on_change else "always"
            found.append(
                {
                    "id": delivery_id,
                    "when": when,
                    "after": notification.after_failures,
                    "fields": fields,
                    "indexes": indexes,
                }
            )
    return found


async def unowned_ends(queue: Queue, entries: Sequence[tuple[str, Mapping[str, str] | None]]) -> set[str]:
    """The ids of the entries that are job ends no owner can count, so need no more than an XACK.

    An end whose event carries no tags is covered by no rule: only the job's schedule can own it,
    and most jobs have none. One pipelined read of those jobs' schedule field decides for all of
    them, where applying each entry would load and decode each whole job.
    """
    untagged = [
        (entry_id, fields[EventField.JOB])
        for entry_id, fields in entries
        if fields is not None
        and fields.get(EventField.JOB)
        and fields.get(EventField.TAGS, "") in ("", "[]")
        and effect_of(fields.get(EventField.KIND, ""), fields.get(EventField.STATE, "")) is not None
    ]
    if not untagged:
        return set()
    pipe = queue.redis.pipeline(transaction=False)
    for _, job_id in untagged:
        pipe.hget(queue.for_job(job_id).keys.job(job_id), JobField.SCHEDULE)
    schedules = await pipe.execute()
    return {entry_id for (entry_id, _), schedule in zip(untagged, schedules, strict=True) if schedule == ""}


async def apply_entry(
    queue: Queue,
    entry_id: str,
    fields: dict[str, str],
    *,
    lookup: NotificationLookup = schedule_notifications,
    settings: AlertSettings,
) -> list[str]:
    """Apply one events-stream entry to every owner of its job; the ids of the deliveries made.

    An entry that is no job's end, or whose job no longer exists (retention removed it before it
    was read), changes nothing.
    """
    effect = effect_of(fields.get(EventField.KIND, ""), fields.get(EventField.STATE, ""))
    job_id = fields.get(EventField.JOB, "")
    if effect is None or not job_id:
        return []
    job = (await jobs.load_jobs(queue, [job_id]))[0]
    if job is None:
        log.warning("alerts: job %s ended (%s) but is gone; no alert for it", job_id, fields.get(EventField.KIND))
        return []
    await history.record_end(queue, job)  # its schedule's history, which outlives the job
    ts = fields.get(EventField.TS, "")
    occurred = int(ts) if ts.isdigit() else 0
    outcome_script = script(queue, "alert_outcome")
    made: list[str] = []
    for owner in await owners_of(queue, job, lookup=lookup):
        now = now_ms()
        # Only alerts say the run of failures: an owner with no notification is not asked.
        streak = await streak_of(queue, owner, effect.outcome, now=now) if owner.notifications else Streak()
        context = queue.context(
            now=now,
            event=entry_id,
            outcome=effect.outcome.value if effect.outcome is not None else "",
            owner_ttl_ms=OWNER_TTL_MS,
            retention_ms=settings.retention_ms,
            delivery_prefix=queue.keys.alert_delivery(""),
            deliveries=_candidates(
                queue,
                job,
                owner,
                effect,
                entry_id=entry_id,
                occurred_ms=occurred,
                now=now,
                streak=streak,
                public_url=settings.public_url,
            ),
        )
        keys = [queue.keys.alert_owner(owner.key), queue.keys.alert_due, queue.keys.alert_figures]
        ids = await outcome_script(keys=keys, args=[context])
        made += [str(i) for i in ids]
    return made
