"""The API's in-memory table of direct jobs: bounds, eviction, cursors, tenancy, cancel, lists."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from shared import codec, jobs
from shared.direct.table import DirectJob, JobTable
from shared.errors import ConflictError, LimitError, NotFoundError, ShuttingDown, ValidationError
from shared.model import JobState, Progress, ProgressEvent
from shared.settings import QueueSettings
from tests.queue_helpers import command

NOW = 1_700_000_000_000


def add(
    table: JobTable, job_id: str, *, tenant: str = "acme", tags: tuple[str, ...] = (), idempotency_key: str = ""
) -> DirectJob:
    submit = command(tags=tags, idempotency_key=idempotency_key)
    record = jobs.new_job_record(QueueSettings(), submit, job_id=job_id, tenant=tenant, trace="", now=NOW)
    return table.add(codec.job_from_hash(record), record, "")


def finish(table: JobTable, entry: DirectJob, state: JobState = JobState.COMPLETED) -> None:
    table.update(entry, replace(entry.job, state=state, progress=Progress(percentage=100, message="done")))


async def collect(
    table: JobTable, job_id: str, *, cursor: str = "", tenant: str | None = "acme"
) -> list[ProgressEvent]:
    return [e async for e in table.follow(job_id, tenant=tenant, cursor=cursor)]


def test_a_full_table_evicts_the_oldest_finished_job_and_refuses_when_none_finished() -> None:
    table = JobTable(max_jobs=2)
    first = add(table, "a", idempotency_key="k1")
    second = add(table, "b")
    with pytest.raises(LimitError, match="SENTINEL_DIRECT_MAX_JOBS"):
        add(table, "c")
    finish(table, second)
    finish(table, first)  # finished after `second`: `second` is the oldest finished
    add(table, "c")
    assert table.find("b", tenant=None) is None and table.find("a", tenant=None) is not None
    add(table, "d")
    assert table.find("a", tenant=None) is None and len(table) == 2
    assert table.duplicate_of("acme", "k1") == ""  # the evicted job's idempotency key went with it


def test_an_idempotency_key_maps_to_its_job_for_its_tenant_only() -> None:
    table = JobTable(max_jobs=10)
    add(table, "a", idempotency_key="k1")
    assert table.duplicate_of("acme", "k1") == "a"
    assert table.duplicate_of("globex", "k1") == "" and table.duplicate_of("acme", "") == ""


def test_another_tenants_job_is_not_found() -> None:
    table = JobTable(max_jobs=10)
    add(table, "a")
    assert table.get("a", tenant="acme").job_id == "a"
    assert table.find("a", tenant=None) is not None
    with pytest.raises(NotFoundError):
        table.get("a", tenant="globex")
    with pytest.raises(NotFoundError):
        table.cancel("a", tenant="globex", now=NOW)


async def test_follow_replays_from_a_cursor_then_goes_live_until_the_terminal_event() -> None:
    table = JobTable(max_jobs=10)
    entry = add(table, "a")
    table.progress(entry, Progress(percentage=5, message="validated"))
    replayed = await asyncio.wait_for(_first(table, "a", 2), timeout=5)
    assert [e.cursor for e in replayed] == ["1", "2"]
    assert replayed[0].state is JobState.PENDING and replayed[1].progress.percentage == 5

    follower = asyncio.create_task(collect(table, "a", cursor="1"))
    await asyncio.sleep(0)  # the follower replays and waits
    table.progress(entry, Progress(percentage=50))
    finish(table, entry)
    events = await asyncio.wait_for(follower, timeout=5)
    assert [e.cursor for e in events] == ["2", "3", "4"]
    assert events[-1].terminal and events[-1].state is JobState.COMPLETED
    assert [e.cursor for e in await collect(table, "a", cursor="3")] == ["4"]
    table.progress(entry, Progress(percentage=1))  # a late report after the end changes nothing
    assert table.get("a", tenant="acme").job.progress.percentage == 100


async def _first(table: JobTable, job_id: str, n: int) -> list[ProgressEvent]:
    out = []
    async for event in table.follow(job_id, tenant="acme"):
        out.append(event)
        if len(out) == n:
            break
    return out


async def test_a_malformed_cursor_is_a_validation_error() -> None:
    table = JobTable(max_jobs=10)
    add(table, "a")
    with pytest.raises(ValidationError, match="cursor"):
        await collect(table, "a", cursor="not-a-cursor")


async def test_only_the_newest_events_are_kept_and_the_terminal_one_always() -> None:
    table = JobTable(max_jobs=10, max_events=3)
    entry = add(table, "a")
    for pct in range(10, 60, 10):
        table.progress(entry, Progress(percentage=pct))
    finish(table, entry)
    events = await collect(table, "a")
    assert [e.cursor for e in events] == ["5", "6", "7"] and events[-1].terminal


async def test_cancel_ends_a_waiting_job_and_stops_its_task_but_not_a_finished_one() -> None:
    table = JobTable(max_jobs=10)
    entry = add(table, "a")
    entry.task = asyncio.create_task(_forever())
    cancelled = table.cancel("a", tenant="acme", now=NOW + 5)
    assert cancelled.job.state is JobState.CANCELLED and cancelled.job.finished_at_ms == NOW + 5
    assert cancelled.job.error is not None and "before it ran" in cancelled.job.error.message
    assert cancelled.job.error.category is None  # nothing failed: no category
    with pytest.raises(asyncio.CancelledError):
        await entry.task
    events = await collect(table, "a")
    assert events[-1].terminal and events[-1].state is JobState.CANCELLED
    with pytest.raises(ConflictError, match="already finished"):
        table.cancel("a", tenant="acme", now=NOW)


async def _forever() -> None:
    await asyncio.Event().wait()


async def test_a_closing_table_ends_its_followers() -> None:
    table = JobTable(max_jobs=10)
    add(table, "a")
    follower = asyncio.create_task(collect(table, "a"))
    await asyncio.sleep(0)
    table.close()
    with pytest.raises(ShuttingDown):
        await asyncio.wait_for(follower, timeout=5)


def test_pages_list_a_tenants_jobs_newest_first_by_state_and_tag() -> None:
    table = JobTable(max_jobs=10)
    for i in range(5):
        add(table, f"j{i}", tags=("smoke",) if i % 2 else ())
    add(table, "other", tenant="globex")
    finish(table, table.get("j1", tenant="acme"))

    first = table.page(tenant="acme", state=None, tag="", page_size=2, page_token="")
    assert [j.job_id for j in first.items] == ["j4", "j3"] and first.next_token
    second = table.page(tenant="acme", state=None, tag="", page_size=2, page_token=first.next_token)
    third = table.page(tenant="acme", state=None, tag="", page_size=2, page_token=second.next_token)
    assert [j.job_id for j in second.items] == ["j2", "j1"] and [j.job_id for j in third.items] == ["j0"]
    assert third.next_token == ""
    smoke = table.page(tenant="acme", state=None, tag="smoke", page_size=10, page_token="")
    assert [j.job_id for j in smoke.items] == ["j3", "j1"]
    done = table.page(tenant="acme", state=JobState.COMPLETED, tag="", page_size=10, page_token="")
    assert [j.job_id for j in done.items] == ["j1"]
