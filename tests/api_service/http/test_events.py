"""Server-Sent Events over HTTP: a test's progress and the queue's events, resumed with Last-Event-ID
(missing nothing, repeating nothing), followers stopped when the client leaves or the API stops."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from api_service.http.sse import ticking
from executor_service.store import Claim, claim, finish, write_progress
from shared.clock import now_ms
from shared.model import JobState, Progress
from tests.api_service.http.conftest import Http, submit, subscribers
from tests.api_service.http.sse_client import Event, opening_position, rest, take
from tests.support import revoke, wait_for


def progress(pct: int) -> Progress:
    return Progress(percentage=pct, current_step=1, total_steps=2, message=f"at {pct}", updated_at_ms=now_ms())


async def claim_one(http: Http, job_id: str) -> Claim:
    await http.queue.ensure_groups()
    [run] = (await claim(http.queue, consumer="test", worker_id="test", count=1)).claims
    assert run.job_id == job_id
    return run


async def complete(http: Http, run: Claim) -> None:
    done = Progress(percentage=100, current_step=2, total_steps=2, message="Completed")
    assert await finish(http.queue, run, state=JobState.COMPLETED, progress=done)


@contextlib.asynccontextmanager
async def sse(http: Http, path: str, cursor: str = "") -> AsyncIterator[aiohttp.ClientResponse]:
    """GET an event stream (resuming after `cursor`, as a browser's reconnect sends Last-Event-ID)."""
    headers = {"Last-Event-ID": cursor} if cursor else {}
    async with http.session.get(f"{http.base}/api/v1{path}", headers=headers) as response:
        yield response


def summary(events: list[Event]) -> list[tuple[str, str, int, bool]]:
    return [(e.id, e.data["status"], e.data["progress"]["percentage"], e.data["terminal"]) for e in events]


async def test_last_event_id_resumes_exactly_after_it_until_the_terminal_event(http: Http) -> None:
    job_id = await submit(http)
    run = await claim_one(http, job_id)
    await write_progress(http.queue, run, progress(30))
    async with sse(http, f"/tests/{job_id}/events") as first:
        seen = await take(first, 3)  # queued, claimed, 30 %
    assert [e.event for e in seen] == ["progress"] * 3 and all(e.id == e.data["cursor"] for e in seen)
    await subscribers(http, 0)  # the client left: its follower is gone

    async with sse(http, f"/tests/{job_id}/events", cursor=seen[1].id) as resumed:
        [replayed] = await take(resumed, 1)
        assert replayed.id == seen[2].id  # the one after the cursor, not the cursor's own
        await write_progress(http.queue, run, progress(60))
        await complete(http, run)
        tail = await rest(resumed)  # ends by itself after the terminal event

    async with sse(http, f"/tests/{job_id}/events") as whole:
        full = await rest(whole)
    assert summary([replayed, *tail]) == summary(full[2:])
    assert [e.data["progress"]["percentage"] for e in full] == [0, 0, 30, 60, 100] and full[-1].data["terminal"]
    async with sse(http, f"/tests/{job_id}/events", cursor=full[-1].id) as after_the_end:
        assert after_the_end.status == 200 and await rest(after_the_end) == []


async def test_an_unknown_job_is_404_and_a_bad_cursor_400_before_any_stream(http: Http) -> None:
    async with sse(http, "/tests/nope/events") as resp:
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "NOT_FOUND"
    job_id = await submit(http)
    for path in (f"/tests/{job_id}/events", "/queue/events"):
        async with sse(http, path, cursor="not-a-cursor") as resp:
            assert resp.status == 400
            [violation] = (await resp.json())["error"]["violations"]
            assert violation["field"] == "Last-Event-ID"
    async with sse(http, "/queue/events?kind=active&kind=started") as resp:
        assert resp.status == 400
        [violation] = (await resp.json())["error"]["violations"]
        assert violation["field"] == "kind" and "'started'" in violation["description"]


async def test_a_client_that_leaves_stops_its_follower_at_once(http: Http) -> None:
    job_id = await submit(http)
    for path in (f"/tests/{job_id}/events", "/queue/events"):
        async with sse(http, path) as resp:
            assert resp.status == 200
            await resp.content.readline()  # the headers and the first comment are out
            await subscribers(http, 1)
        await subscribers(http, 0)
    assert not [t for t in asyncio.all_tasks() if "ticking" in repr(t.get_coro())]


async def test_shutdown_ends_open_streams_cleanly(http: Http) -> None:
    job_id = await submit(http)
    async with sse(http, f"/tests/{job_id}/events") as resp:
        [queued] = await take(resp, 1)
        await subscribers(http, 1)
        stopping = asyncio.create_task(http.server.stop(5))
        lines = [line async for line in resp.content]  # the stream ends rather than hangs
        await asyncio.wait_for(stopping, timeout=10)
    assert any(b"reconnect with Last-Event-ID" in line for line in lines)
    assert queued.id


async def test_queue_events_stream_the_tenants_events_and_resume(http: Http) -> None:
    async with sse(http, "/queue/events") as live:
        assert live.headers["Content-Type"].startswith("text/event-stream")
        await subscribers(http, 1)
        job_id = await submit(http, tags=["sse"])
        run = await claim_one(http, job_id)
        await write_progress(http.queue, run, progress(40))
        seen = await take(live, 3)
    assert [e.event for e in seen] == ["waiting", "active", "progress"]
    waiting = seen[0].data
    assert (waiting["jobId"], waiting["status"], waiting["tenant"], waiting["tags"]) == (
        job_id,
        "pending",
        "default",
        ["sse"],
    )
    assert waiting["at"].endswith("Z") and waiting["cursor"] == seen[0].id and "percentage" not in waiting
    assert seen[2].data["percentage"] == 40 and seen[2].data["message"] == "40% at 40"

    await http.call("POST", "/queue/pause")
    async with sse(http, "/queue/events", cursor=seen[0].id) as resumed:
        again = await take(resumed, 3)
    assert [e.id for e in again[:2]] == [e.id for e in seen[1:]]
    paused = again[2]
    assert paused.event == "paused" and paused.data["jobId"] is None and paused.data["status"] is None

    async with sse(http, "/queue/events?status=running", cursor="0-0") as only_running:
        [active] = await take(only_running, 1)
    assert active.event == "active" and active.data["jobId"] == job_id

    async with sse(http, "/queue/events?kind=progress&kind=paused", cursor="0-0") as some_kinds:
        kinds = await take(some_kinds, 2)
    assert [e.event for e in kinds] == ["progress", "paused"]


async def test_a_queue_stream_that_drops_before_its_first_event_resumes_from_where_it_began(http: Http) -> None:
    before = await submit(http)  # an event from before the stream began: not sent on resume
    async with sse(http, "/queue/events") as first:
        begun = await opening_position(first)
    job_id = await submit(http, tags=["while-away"])  # happens while the client is disconnected
    async with sse(http, "/queue/events", cursor=begun) as resumed:
        [missed] = await take(resumed, 1)
    assert (missed.event, missed.data["jobId"]) == ("waiting", job_id) and before != job_id
    async with sse(http, "/queue/events", cursor="0-0") as whole:
        everything = await take(whole, 2)
    assert [e.data["jobId"] for e in everything] == [before, job_id] and everything[0].id == begun


async def test_keep_alive_ticks_while_nothing_happens() -> None:
    release = asyncio.Event()

    async def slow() -> AsyncIterator[int]:
        await release.wait()  # nothing happens until three keep-alives have gone out
        yield 1

    seen: list[int | None] = []
    async with asyncio.timeout(30):
        async for item in ticking(slow(), 0.05):
            seen.append(item)
            if seen.count(None) == 3:
                release.set()
    assert seen == [None, None, None, 1]


async def test_an_event_stream_whose_key_is_taken_out_of_the_keys_file_gets_nothing_more(
    keyed: Http, tmp_path: Path
) -> None:
    first = await submit(keyed, who="acme-submitter")
    headers = keyed.auth("acme-viewer") | {"Last-Event-ID": "0-0"}
    async with keyed.session.get(f"{keyed.base}/api/v1/queue/events", headers=headers) as stream:
        [queued] = await take(stream, 1)
        assert queued.data["jobId"] == first
        revoke(tmp_path / "keys.json", keyed.keys["acme-viewer"])

        async def refused() -> bool:
            return (await keyed.call("GET", "/whoami", who="acme-viewer")).status == 401

        await wait_for(refused, within=10, what="the revoked key to be refused")
        await submit(keyed, who="acme-submitter")  # an event the stream would have sent
        after = await rest(stream)  # the stream ends
    assert [(e.event, e.data["error"]["code"]) for e in after] == [("error", "UNAUTHENTICATED")], after
