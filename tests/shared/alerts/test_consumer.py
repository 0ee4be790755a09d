"""The events stream read by several replicas: each job's end handled once, none lost on a crash."""

from __future__ import annotations

import time
from typing import Any, cast

from shared.alerts.outcomes import apply_entry
from shared.keys import ALERTS_GROUP
from shared.model import JobState
from shared.streams import Entry
from tests.shared.alerts.conftest import NO_TAKE_OVER, Alerting, drain
from tests.support import wait_for

#: Ends that fail twice, pass twice, fail twice, ...: a failure, then a recovery, every two jobs.
ENDS = [JobState.FAILED if (i // 2) % 2 == 0 else JobState.COMPLETED for i in range(16)]
EXPECTED = ["failed", "recovered"] * 4


async def all_handled(alerting: Alerting) -> bool:
    """Whether the `alerts` group has read every entry of the stream and acknowledged them all."""
    key = alerting.queue.keys.events
    groups: list[dict[str, Any]] = await alerting.queue.redis.xinfo_groups(key)
    group = next(g for g in groups if g["name"] == ALERTS_GROUP)
    last = await alerting.queue.redis.xrevrange(key, count=1)
    return bool(group["pending"] == 0 and last and group["last-delivered-id"] == last[0][0])


async def test_two_replicas_reading_at_once_alert_once_per_change(alerting: Alerting) -> None:
    """Both replicas wait on the group at once, and each end reaches one of them; ends come one
    after another, as a schedule's runs do, so every change is alerted exactly once. (No take-overs
    here: tests below cover an entry handled again after its replica stalled or died.)"""
    replicas = [await alerting.consumer(name, settings=NO_TAKE_OVER) for name in ("replica-1", "replica-2")]
    await alerting.rule("https://hooks.example.com/a")
    for replica in replicas:
        replica.start()
    try:
        for n, state in enumerate(ENDS, start=1):
            await alerting.end_job(state)
            await wait_for(lambda: all_handled(alerting), within=30, what=f"the replicas to handle end {n}")
    finally:
        for replica in replicas:
            await replica.stop()
    assert [d.event for d in await alerting.deliveries()] == EXPECTED
    assert sum(r.applied for r in replicas) == await alerting.queue.redis.xlen(alerting.queue.keys.events)


async def test_a_burst_split_between_two_replicas_never_alerts_twice_or_out_of_turn(alerting: Alerting) -> None:
    """Ends arriving faster than one replica handles them are split between the two, which may apply
    them out of order: an end overtaken by a later one of the same test alerts nothing (the later
    one is the test's state now), so changes can be skipped but never alerted twice or out of turn."""
    replicas = [await alerting.consumer(name, settings=NO_TAKE_OVER) for name in ("replica-1", "replica-2")]
    await alerting.rule("https://hooks.example.com/a")
    for replica in replicas:
        replica.start()
    try:
        for state in ENDS:
            await alerting.end_job(state)
        await wait_for(lambda: all_handled(alerting), within=30, what="both replicas to handle every event")
    finally:
        for replica in replicas:
            await replica.stop()
    deliveries = await alerting.deliveries()
    events = [d.event for d in deliveries]
    assert events == ["failed", "recovered"] * (len(events) // 2) + ["failed"] * (len(events) % 2)
    assert len(events) <= len(EXPECTED)
    assert len({d.job_id for d in deliveries}) == len(deliveries), "one end alerted twice"
    assert sum(r.applied for r in replicas) == await alerting.queue.redis.xlen(alerting.queue.keys.events)
    # However the ends were split, the test's state is its last end's: a pass.
    owners = [key async for key in alerting.queue.redis.scan_iter(match=alerting.queue.keys.alert_owner("*"))]
    assert len(owners) == 1
    assert await alerting.queue.redis.hget(owners[0], "outcome") == "pass"


async def test_a_replica_takes_what_came_during_its_pause_in_one_read(alerting: Alerting) -> None:
    """After a read short of a full batch the replica waits before the next, so the events stream's
    many entries a job (its progress among them) cost a read per pause, not a read each; every
    change is still alerted."""
    pause_s = 0.5
    replica = await alerting.consumer(read_pause_s=pause_s)
    await alerting.rule("https://hooks.example.com/a")
    started = time.monotonic()
    replica.start()
    try:
        for state in ENDS[:8]:
            await alerting.end_job(state)
        await wait_for(lambda: all_handled(alerting), within=30, what="the replica to handle every event")
    finally:
        await replica.stop()
    elapsed = time.monotonic() - started
    entries = await alerting.queue.redis.xlen(alerting.queue.keys.events)
    assert replica.applied == entries
    assert replica.reads <= elapsed / pause_s + 1, f"{replica.reads} reads in {elapsed:.2f} s"
    assert replica.reads < entries
    assert [d.event for d in await alerting.deliveries()] == ["failed", "recovered", "failed", "recovered"]


async def test_events_a_replica_read_and_never_acknowledged_are_taken_over_and_alert_once(alerting: Alerting) -> None:
    """The first replica reads every event, applies half of them (its deliveries are made) and dies
    before acknowledging any; the second takes them all over once they have been idle long enough."""
    dead = await alerting.consumer("dead-replica")
    alive = await alerting.consumer("alive-replica")
    await alerting.rule("https://hooks.example.com/a")
    for state in ENDS:
        await alerting.end_job(state)
    key = alerting.queue.keys.events
    reply = await alerting.queue.redis.xreadgroup(ALERTS_GROUP, dead.consumer, {key: ">"}, count=1000)
    ((_, read),) = cast(list[tuple[str, list[Entry]]], reply)
    for entry_id, fields in read[: len(read) // 2]:
        await apply_entry(alerting.queue, entry_id, fields, settings=alerting.settings)
    pending = await alerting.queue.redis.xpending(key, ALERTS_GROUP)
    assert pending["pending"] == len(read) and await all_handled(alerting) is False
    await wait_for(alive.take_over, within=30, what="the live replica to take the dead one's events over")
    await drain(alive)
    assert await all_handled(alerting)
    assert [d.event for d in await alerting.deliveries()] == EXPECTED
