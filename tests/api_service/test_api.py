"""The API service through a real grpc.aio server, real stubs and a real redis-server.

Where a job has to run, the test plays the executor itself with `executor_service.store`
(claim, write_progress, finish) on its own Redis connection; no browser is involved.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeAlias, cast

import grpc
import pytest
import redis.asyncio as aioredis
import redis.exceptions as redis_exceptions
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from executor_service.store import Claim, claim, finish, promote_due, write_progress
from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from shared import script_calls, submits
from shared.clock import now_ms
from shared.keys import GROUP
from shared.model import JobState, Priority, Progress
from shared.script_calls import Call
from shared.settings import QueueSettings
from shared.streams import Entry
from tests.api_service.conftest import Harness
from tests.support import RedisProcess, start_redis, wait_for

TENANT = "default"
SERVICE = "sentinel.v1.TestExecution"
Code = grpc.StatusCode
#: A progress stream as the stub returns it (a string: grpc.aio's classes are not generic at run time).
ProgressCall: TypeAlias = "grpc.aio.UnaryStreamCall[pb.StreamProgressRequest, pb.ProgressEvent]"


# --- builders --------------------------------------------------------------------------------


def definition(name: str = "checkout", *, base_url: str = "https://shop.example.test") -> pb.TestDefinition:
    return pb.TestDefinition(
        name=name,
        base_url=base_url,
        steps=[pb.Step(navigate=pb.Navigate(url="/cart")), pb.Step(click=pb.Click(selector="#buy"))],
    )


def request(
    *,
    priority: pb.Priority = pb.PRIORITY_UNSPECIFIED,
    tags: tuple[str, ...] = (),
    idempotency_key: str = "",
    delay_ms: int = 0,
    name: str = "checkout",
) -> pb.SubmitRequest:
    return pb.SubmitRequest(
        definition=definition(name),
        options=pb.JobOptions(priority=priority, tags=tags, idempotency_key=idempotency_key, delay_ms=delay_ms),
    )


def with_steps(*steps: pb.Step, base_url: str = "") -> pb.SubmitRequest:
    return pb.SubmitRequest(definition=pb.TestDefinition(name="t", base_url=base_url, steps=steps))


def navigate(url: str) -> pb.Step:
    return pb.Step(navigate=pb.Navigate(url=url))


def click(selector: str) -> pb.Step:
    return pb.Step(click=pb.Click(selector=selector))


# --- helpers ---------------------------------------------------------------------------------


def bad_request_fields(err: grpc.aio.AioRpcError) -> list[str]:
    """The fields named by the google.rpc.BadRequest detail of a failed call."""
    status = rpc_status.from_call(err)
    assert status is not None, "no google.rpc.Status in the trailers"
    found: list[str] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found += [v.field for v in bad.field_violations]
    return found


async def rpc_error(call: Awaitable[object], code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    """Await `call`, expecting it to fail with `code`; returns the AioRpcError."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() == code, info.value.details()
    return info.value


async def submit(api: Harness, req: pb.SubmitRequest | None = None) -> str:
    response = await api.stub.Submit(req or request())
    assert response.job_id
    return response.job_id


async def lane_job_ids(api: Harness, priority: Priority) -> list[str]:
    entries = cast(list[Entry], await api.redis.xrange(api.keys.stream(priority)))
    return [fields["job"] for _, fields in entries]


async def sentinel_keys(api: Harness) -> set[str]:
    return {key async for key in api.redis.scan_iter(match="sentinel:*", count=1000)}


async def after_ms(ms: int) -> None:
    """Return once the wall clock in ms has moved past `ms` (so the next job is strictly newer)."""

    async def moved() -> bool:
        return now_ms() > ms

    await wait_for(moved, within=2, interval=0.001, what="the clock to tick")


async def collect(call: ProgressCall, *, within: float = 10) -> list[pb.ProgressEvent]:
    """Every (further) event of a progress stream until the server ends it."""
    events: list[pb.ProgressEvent] = []
    async with asyncio.timeout(within):
        # read() is typed `object`: anything but a ProgressEvent is grpc.aio.EOF.
        while isinstance(event := await call.read(), pb.ProgressEvent):
            events.append(event)
    return events


async def read(call: ProgressCall, n: int, *, within: float = 10) -> list[pb.ProgressEvent]:
    """The next `n` events of a progress stream."""
    events: list[pb.ProgressEvent] = []
    async with asyncio.timeout(within):
        for _ in range(n):
            event = await call.read()
            assert isinstance(event, pb.ProgressEvent), f"stream ended after {events}"  # else grpc.aio.EOF
            events.append(event)
    return events


def summary(events: list[pb.ProgressEvent]) -> list[tuple[str, int, int, str, bool]]:
    return [(e.cursor, e.state, e.progress.percentage, e.progress.message, e.terminal) for e in events]


async def claim_job(api: Harness, job_id: str) -> Claim:
    batch = await claim(api.queue, consumer="test-executor", worker_id="test-worker", count=1)
    assert [c.job_id for c in batch.claims] == [job_id]
    return batch.claims[0]


def progress(pct: int, message: str) -> Progress:
    return Progress(percentage=pct, current_step=1, total_steps=2, message=message, updated_at_ms=now_ms())


async def complete(api: Harness, run: Claim) -> None:
    done = await finish(
        api.queue,
        run,
        state=JobState.COMPLETED,
        progress=Progress(percentage=100, current_step=2, total_steps=2, message="Completed"),
    )
    assert done


# --- Submit and Status -----------------------------------------------------------------------


async def test_submit_valid_definition_is_pending_in_its_lane(api: Harness) -> None:
    before = now_ms()
    response = await api.stub.Submit(
        pb.SubmitRequest(
            definition=definition("checkout"),
            options=pb.JobOptions(priority=pb.PRIORITY_HIGH, tags=["smoke"]),
            user_id="u-1",
            request_id="r-1",
        )
    )
    after = now_ms()
    assert response.job_id and not response.duplicate

    job = await api.stub.Status(pb.StatusRequest(job_id=response.job_id))
    assert job.job_id == response.job_id
    assert job.state == pb.JOB_STATE_PENDING
    assert job.priority == pb.PRIORITY_HIGH
    assert job.progress.total_steps == 2
    assert job.progress.message == "Queued"
    assert before <= job.created_at.ToMilliseconds() <= after
    assert job.name == "checkout"
    assert list(job.tags) == ["smoke"]
    assert job.tenant_id == TENANT
    assert (job.user_id, job.request_id) == ("u-1", "r-1")
    assert job.attempt == 0
    assert job.max_attempts == QueueSettings().default_attempts
    assert job.timeout_ms == 300_000  # high priority's default
    assert job.source == pb.JOB_SOURCE_API

    raw = await api.redis.hgetall(api.keys.job(response.job_id))
    assert raw["state"] == "pending"
    assert raw["tenant"] == TENANT
    assert await lane_job_ids(api, Priority.HIGH) == [response.job_id]
    assert await lane_job_ids(api, Priority.MEDIUM) == []
    assert await lane_job_ids(api, Priority.LOW) == []


async def test_unspecified_priority_is_medium(api: Harness) -> None:
    job_id = await submit(api)
    job = await api.stub.Status(pb.StatusRequest(job_id=job_id))
    assert job.priority == pb.PRIORITY_MEDIUM
    assert job.timeout_ms == 600_000
    assert await lane_job_ids(api, Priority.MEDIUM) == [job_id]


INVALID: list[tuple[str, pb.SubmitRequest, str]] = [
    ("no steps", pb.SubmitRequest(definition=pb.TestDefinition(name="t")), "definition.steps"),
    ("step without action", with_steps(pb.Step(name="nothing")), "definition.steps[0]"),
    (
        "empty selector",
        with_steps(navigate("https://a.example.test/"), click("")),
        "definition.steps[1].click.selector",
    ),
    ("javascript url", with_steps(navigate("javascript:alert(1)")), "definition.steps[0].navigate.url"),
    (
        "javascript url with base",
        with_steps(navigate("javascript:alert(1)"), base_url="https://a.example.test"),
        "definition.steps[0].navigate.url",
    ),
    ("file url", with_steps(navigate("file:///etc/passwd")), "definition.steps[0].navigate.url"),
    ("ftp url", with_steps(navigate("ftp://files.example.test/x")), "definition.steps[0].navigate.url"),
    ("relative url without base", with_steps(navigate("/login")), "definition.steps[0].navigate.url"),
    (
        "non-http base url",
        with_steps(navigate("https://a.example.test/x"), base_url="ftp://a.example.test"),
        "definition.base_url",
    ),
    (
        "501 steps",
        with_steps(*[click(f"#b{i}") for i in range(501)]),
        "definition.steps",
    ),
    (
        "oversized name",
        pb.SubmitRequest(definition=pb.TestDefinition(name="n" * 201, steps=[click("#a")])),
        "definition.name",
    ),
    ("oversized selector", with_steps(click("#" + "x" * 1000)), "definition.steps[0].click.selector"),
    (
        "bad tag",
        pb.SubmitRequest(definition=definition(), options=pb.JobOptions(tags=["has space"])),
        "options.tags[0]",
    ),
    (
        "repeated tag",
        pb.SubmitRequest(definition=definition(), options=pb.JobOptions(tags=["smoke", "smoke"])),
        "options.tags[1]",
    ),
    # Proto3 enums are open: an unknown number parses, and must not be read as "unspecified".
    (
        "unknown priority",
        pb.SubmitRequest(definition=definition(), options=pb.JobOptions(priority=99)),  # type: ignore[arg-type]
        "options.priority",
    ),
    (
        "unknown artifact policy",
        pb.SubmitRequest(definition=definition(), options=pb.JobOptions(artifact_policy=7)),  # type: ignore[arg-type]
        "options.artifact_policy",
    ),
    ("unknown source", pb.SubmitRequest(definition=definition(), source=9), "source"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("req", "field"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
async def test_invalid_submit_is_rejected_and_touches_nothing(api: Harness, req: pb.SubmitRequest, field: str) -> None:
    keys_before = await sentinel_keys(api)
    size_before = await api.redis.dbsize()

    err = await rpc_error(api.stub.Submit(req), Code.INVALID_ARGUMENT)

    assert bad_request_fields(err) == [field]
    assert field in (err.details() or "")
    assert await api.redis.dbsize() == size_before
    assert await sentinel_keys(api) == keys_before
    for priority in Priority:
        assert await api.redis.xlen(api.keys.stream(priority)) == 0


@pytest.mark.parametrize(
    ("method", "request_", "field"),
    [
        ("Retry", pb.RetryRequest(job_id="j", priority=99), "priority"),  # type: ignore[arg-type]
        ("ListJobs", pb.ListJobsRequest(state=42), "state"),  # type: ignore[arg-type]
        ("RequeueDeadLetter", pb.RequeueDeadLetterRequest(job_id="j", priority=7), "priority"),  # type: ignore[arg-type]
        ("ListDeadLetters", pb.ListDeadLettersRequest(category=30), "category"),  # type: ignore[arg-type]
    ],
)
async def test_any_request_with_an_unknown_enum_number_is_refused_naming_the_field(
    api: Harness, method: str, request_: Message, field: str
) -> None:
    """Proto3 enums are open: not only a submit's but every request's own enum fields are checked
    before the method runs (a priority read as "the job's own", a filter read as "any", would
    silently do what the caller did not ask)."""
    stub = getattr(api.stub, method, None) or getattr(pb_grpc.QueueAdminStub(api.channel), method)
    err = await rpc_error(stub(request_), Code.INVALID_ARGUMENT)
    assert bad_request_fields(err) == [field]
    assert "got " in (err.details() or "")


async def test_all_violations_are_reported_at_once(api: Harness) -> None:
    req = with_steps(navigate("ftp://x.example.test"), click(""), pb.Step())
    err = await rpc_error(api.stub.Submit(req), Code.INVALID_ARGUMENT)
    assert bad_request_fields(err) == [
        "definition.steps[0].navigate.url",
        "definition.steps[1].click.selector",
        "definition.steps[2]",
    ]


async def test_status_of_an_unknown_or_empty_id_is_not_found(api: Harness) -> None:
    await rpc_error(api.stub.Status(pb.StatusRequest(job_id="no-such-job")), Code.NOT_FOUND)
    await rpc_error(api.stub.Status(pb.StatusRequest(job_id="")), Code.NOT_FOUND)


# --- SubmitBatch -----------------------------------------------------------------------------


async def test_batch_answers_each_item_in_order(api: Harness) -> None:
    batch = pb.SubmitBatchRequest(
        requests=[
            request(name="first"),
            pb.SubmitRequest(definition=pb.TestDefinition(name="no steps")),
            request(name="third", priority=pb.PRIORITY_LOW),
            with_steps(navigate("javascript:void(0)"), click("")),
        ]
    )
    response = await api.stub.SubmitBatch(batch)

    items = list(response.items)
    assert [i.index for i in items] == [0, 1, 2, 3]
    assert [i.WhichOneof("outcome") for i in items] == ["job_id", "error", "job_id", "error"]
    assert items[1].error.code == 3
    assert [v.field for v in items[1].error.field_violations] == ["requests[1].definition.steps"]
    assert items[3].error.code == 3
    assert [v.field for v in items[3].error.field_violations] == [
        "requests[3].definition.steps[0].navigate.url",
        "requests[3].definition.steps[1].click.selector",
    ]
    assert items[3].error.message
    first = await api.stub.Status(pb.StatusRequest(job_id=items[0].job_id))
    third = await api.stub.Status(pb.StatusRequest(job_id=items[2].job_id))
    assert (first.name, first.state) == ("first", pb.JOB_STATE_PENDING)
    assert (third.name, third.priority) == ("third", pb.PRIORITY_LOW)
    assert await lane_job_ids(api, Priority.MEDIUM) == [items[0].job_id]
    assert await lane_job_ids(api, Priority.LOW) == [items[2].job_id]
    job_keys = {key async for key in api.redis.scan_iter(match=api.keys.job("*"))}
    assert job_keys == {api.keys.job(items[0].job_id), api.keys.job(items[2].job_id)}


async def test_identical_batch_items_each_get_their_own_job_or_error(api: Harness) -> None:
    bad = with_steps(click(""))
    batch = pb.SubmitBatchRequest(requests=[request(name="same"), bad, request(name="same"), bad, request(name="same")])
    response = await api.stub.SubmitBatch(batch)

    items = list(response.items)
    assert [i.WhichOneof("outcome") for i in items] == ["job_id", "error", "job_id", "error", "job_id"]
    assert [v.field for v in items[1].error.field_violations] == ["requests[1].definition.steps[0].click.selector"]
    assert [v.field for v in items[3].error.field_violations] == ["requests[3].definition.steps[0].click.selector"]
    ids = [items[i].job_id for i in (0, 2, 4)]
    assert len(set(ids)) == 3
    for job_id in ids:
        job = await api.stub.Status(pb.StatusRequest(job_id=job_id))
        assert (job.job_id, job.name, job.state) == (job_id, "same", pb.JOB_STATE_PENDING)


async def test_a_batch_item_with_an_unknown_enum_number_is_an_error_naming_its_index(api: Harness) -> None:
    bad = request(name="bad")
    bad.options.priority = 99  # type: ignore[assignment]
    response = await api.stub.SubmitBatch(pb.SubmitBatchRequest(requests=[request(name="good"), bad]))

    good, refused = response.items
    assert good.WhichOneof("outcome") == "job_id"
    assert refused.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert [(v.field, v.description) for v in refused.error.field_violations] == [
        (
            "requests[1].options.priority",
            "must be one of PRIORITY_UNSPECIFIED, PRIORITY_HIGH, PRIORITY_MEDIUM, PRIORITY_LOW, got 99",
        )
    ]
    assert refused.error.message.startswith("requests[1].options.priority: ")
    assert await lane_job_ids(api, Priority.MEDIUM) == [good.job_id]


async def test_batch_of_1001_is_rejected_whole(api: Harness) -> None:
    size_before = await api.redis.dbsize()
    batch = pb.SubmitBatchRequest(requests=[request() for _ in range(1001)])
    err = await rpc_error(api.stub.SubmitBatch(batch), Code.INVALID_ARGUMENT)
    assert bad_request_fields(err) == ["requests"]
    assert await api.redis.dbsize() == size_before


async def evalsha_calls(client: aioredis.Redis) -> int:
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def test_batch_of_1000_is_accepted_in_one_round_trip(api: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[int] = []
    original = script_calls.call_each

    async def counting_call_each(client: Any, script: Any, calls: Iterable[Call]) -> list[Any]:
        made = list(calls)
        sent.append(len(made))
        return await original(client, script, made)

    monkeypatch.setattr(submits, "call_each", counting_call_each)
    evalsha_before = await evalsha_calls(api.redis)

    response = await api.stub.SubmitBatch(
        pb.SubmitBatchRequest(requests=[request(name=f"job {i}") for i in range(1000)])
    )

    monkeypatch.undo()
    calls = -(-1000 // submits.SUBMIT_CHUNK)
    assert sent == [calls], sent  # one connection's calls, replies read at the end: a chunk of jobs per call
    # The server runs a few scripts of its own meanwhile (health, retention): allow for them.
    assert calls <= await evalsha_calls(api.redis) - evalsha_before <= calls + 20
    ids = [item.job_id for item in response.items]
    assert [item.index for item in response.items] == list(range(1000))
    assert all(ids) and len(set(ids)) == 1000
    pipe = api.redis.pipeline(transaction=False)
    for job_id in ids:
        pipe.hget(api.keys.job(job_id), "name")
    names = await pipe.execute()
    assert names == [f"job {i}" for i in range(1000)]
    # Fair share: the tenant's first `tenant_window` jobs wait in the lane, the rest in its backlog, in order.
    window = QueueSettings().tenant_window
    assert await lane_job_ids(api, Priority.MEDIUM) == ids[:window]
    assert await api.redis.lrange(api.keys.backlog(Priority.MEDIUM, TENANT), 0, -1) == ids[window:]


async def test_empty_batch_makes_no_jobs(api: Harness) -> None:
    size_before = await api.redis.dbsize()
    response = await api.stub.SubmitBatch(pb.SubmitBatchRequest())
    assert list(response.items) == []
    assert await api.redis.dbsize() == size_before


async def test_batch_items_share_idempotency_keys(api: Harness) -> None:
    response = await api.stub.SubmitBatch(
        pb.SubmitBatchRequest(requests=[request(idempotency_key="k1"), request(idempotency_key="k1")])
    )
    first, second = response.items
    assert first.job_id == second.job_id
    assert (first.duplicate, second.duplicate) == (False, True)
    assert await lane_job_ids(api, Priority.MEDIUM) == [first.job_id]


# --- idempotency -----------------------------------------------------------------------------


async def test_same_idempotency_key_gives_the_same_job(api: Harness) -> None:
    first = await api.stub.Submit(request(idempotency_key="order-42"))
    second = await api.stub.Submit(request(idempotency_key="order-42"))
    other = await api.stub.Submit(request(idempotency_key="order-43"))

    assert first.job_id == second.job_id != other.job_id
    assert (first.duplicate, second.duplicate, other.duplicate) == (False, True, False)
    assert await lane_job_ids(api, Priority.MEDIUM) == [first.job_id, other.job_id]
    assert await api.redis.get(api.keys.idempotency(TENANT, "order-42")) == first.job_id
    assert 0 < await api.redis.ttl(api.keys.idempotency(TENANT, "order-42")) <= 24 * 3600


async def test_concurrent_submits_with_one_key_make_one_job(api: Harness) -> None:
    responses = await asyncio.gather(*(api.stub.Submit(request(idempotency_key="same")) for _ in range(20)))
    assert len({r.job_id for r in responses}) == 1
    assert sorted(r.duplicate for r in responses) == [False] + [True] * 19
    assert await lane_job_ids(api, Priority.MEDIUM) == [responses[0].job_id]
    job_keys = [k async for k in api.redis.scan_iter(match=api.keys.job("*"))]
    assert job_keys == [api.keys.job(responses[0].job_id)]
    assert await api.redis.zcard(api.keys.tenant_jobs(TENANT)) == 1


# --- ListJobs --------------------------------------------------------------------------------


async def submit_spaced(api: Harness, requests: list[pb.SubmitRequest]) -> list[str]:
    """Submit one by one, each in a later millisecond than the one before (so newest-first is defined)."""
    ids: list[str] = []
    for req in requests:
        ids.append(await submit(api, req))
        job = await api.stub.Status(pb.StatusRequest(job_id=ids[-1]))
        await after_ms(job.created_at.ToMilliseconds())
    return ids


async def list_ids(api: Harness, **kwargs: Any) -> list[str]:
    response = await api.stub.ListJobs(pb.ListJobsRequest(**kwargs))
    return [job.job_id for job in response.jobs]


async def walk(api: Harness, *, page_size: int, max_pages: int, **kwargs: Any) -> list[str]:
    """Every job id over all pages, following next_page_token (bounded)."""
    seen: list[str] = []
    token = ""
    for _ in range(max_pages):
        response = await api.stub.ListJobs(pb.ListJobsRequest(page_size=page_size, page_token=token, **kwargs))
        assert len(response.jobs) <= page_size
        seen += [job.job_id for job in response.jobs]
        token = response.next_page_token
        if not token:
            return seen
    raise AssertionError(f"still a next page after {max_pages} pages")


async def test_list_jobs_newest_first_and_filtered(api: Harness) -> None:
    a, b, c, d = await submit_spaced(
        api,
        [
            request(tags=("nightly",)),
            request(tags=("smoke",)),
            request(tags=("nightly", "smoke")),
            request(),
        ],
    )
    cancelled = await api.stub.Cancel(pb.CancelRequest(job_id=b))
    assert cancelled.state == pb.JOB_STATE_CANCELLED

    assert await list_ids(api) == [d, c, b, a]
    assert await list_ids(api, state=pb.JOB_STATE_CANCELLED) == [b]
    assert await list_ids(api, state=pb.JOB_STATE_PENDING) == [d, c, a]
    assert await list_ids(api, state=pb.JOB_STATE_COMPLETED) == []
    assert await list_ids(api, tag="nightly") == [c, a]
    assert await list_ids(api, tag="smoke") == [c, b]
    assert await list_ids(api, tag="smoke", state=pb.JOB_STATE_PENDING) == [c]
    assert await list_ids(api, tag="unknown") == []
    response = await api.stub.ListJobs(pb.ListJobsRequest())
    assert response.next_page_token == ""
    assert [j.state for j in response.jobs] == [pb.JOB_STATE_PENDING] * 2 + [
        pb.JOB_STATE_CANCELLED,
        pb.JOB_STATE_PENDING,
    ]


async def test_list_jobs_pages_walk_every_job_once(api: Harness) -> None:
    spaced = await submit_spaced(api, [request(name=f"s{i}") for i in range(3)])
    # A batch's jobs share one created-at millisecond: the pages must still not repeat or skip.
    batch = await api.stub.SubmitBatch(pb.SubmitBatchRequest(requests=[request() for _ in range(6)]))
    batch_ids = [item.job_id for item in batch.items]

    seen = await walk(api, page_size=2, max_pages=20)

    assert len(seen) == len(set(seen)) == 9
    assert set(seen) == set(spaced) | set(batch_ids)
    assert set(seen[:6]) == set(batch_ids)  # newest first: the batch came last
    assert seen[6:] == spaced[::-1]
    assert seen == await list_ids(api, page_size=50)


async def test_list_jobs_pages_with_a_state_filter(api: Harness) -> None:
    ids = await submit_spaced(api, [request() for _ in range(5)])
    for job_id in ids[::2]:
        await api.stub.Cancel(pb.CancelRequest(job_id=job_id))
    seen = await walk(api, page_size=2, max_pages=10, state=pb.JOB_STATE_CANCELLED)
    assert seen == [ids[4], ids[2], ids[0]]


@pytest.mark.parametrize("page_size", [7, 50])
async def test_list_jobs_pages_through_a_large_batch_in_one_millisecond(api: Harness, page_size: int) -> None:
    # More jobs share the batch's millisecond than one index read returns (100): paging must
    # still walk along that run of equal scores instead of stopping at its first read.
    batch = await api.stub.SubmitBatch(pb.SubmitBatchRequest(requests=[request() for _ in range(250)]))
    batch_ids = {item.job_id for item in batch.items}
    seen = await walk(api, page_size=page_size, max_pages=250 // page_size + 2)
    assert len(seen) == len(set(seen)) == 250
    assert set(seen) == batch_ids


async def test_list_jobs_default_page_is_50(api: Harness) -> None:
    batch = await api.stub.SubmitBatch(pb.SubmitBatchRequest(requests=[request() for _ in range(55)]))
    first = await api.stub.ListJobs(pb.ListJobsRequest())
    assert len(first.jobs) == 50 and first.next_page_token
    second = await api.stub.ListJobs(pb.ListJobsRequest(page_token=first.next_page_token))
    assert len(second.jobs) == 5 and second.next_page_token == ""
    listed = [j.job_id for j in [*first.jobs, *second.jobs]]
    assert sorted(listed) == sorted(item.job_id for item in batch.items)


async def test_a_page_the_last_job_fills_has_no_token_to_an_empty_page(api: Harness) -> None:
    await submit_spaced(api, [request(name=f"s{i}") for i in range(4)])
    full = await api.stub.ListJobs(pb.ListJobsRequest(page_size=4))
    assert len(full.jobs) == 4 and full.next_page_token == ""
    first = await api.stub.ListJobs(pb.ListJobsRequest(page_size=2))
    second = await api.stub.ListJobs(pb.ListJobsRequest(page_size=2, page_token=first.next_page_token))
    assert first.next_page_token and len(second.jobs) == 2 and second.next_page_token == ""


async def test_list_jobs_rejects_a_page_size_over_500(api: Harness) -> None:
    err = await rpc_error(api.stub.ListJobs(pb.ListJobsRequest(page_size=501)), Code.INVALID_ARGUMENT)
    assert bad_request_fields(err) == ["page_size"]
    await api.stub.ListJobs(pb.ListJobsRequest(page_size=500))


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "|",
        "12x|abc",
        "nan|abc",
    ],
)
async def test_list_jobs_rejects_a_garbage_page_token(api: Harness, token: str) -> None:
    await submit(api)
    err = await rpc_error(api.stub.ListJobs(pb.ListJobsRequest(page_token=token)), Code.INVALID_ARGUMENT)
    assert bad_request_fields(err) == ["page_token"]


# --- Cancel ----------------------------------------------------------------------------------


async def test_cancel_a_pending_job(api: Harness) -> None:
    job_id = await submit(api)

    job = await api.stub.Cancel(pb.CancelRequest(job_id=job_id))

    assert job.state == pb.JOB_STATE_CANCELLED
    assert job.finished_at.ToMilliseconds() > 0
    status = await api.stub.Status(pb.StatusRequest(job_id=job_id))
    assert status.state == pb.JOB_STATE_CANCELLED
    events = await collect(api.stub.StreamProgress(pb.StreamProgressRequest(job_id=job_id)))
    assert [(e.state, e.terminal) for e in events] == [
        (pb.JOB_STATE_PENDING, False),
        (pb.JOB_STATE_CANCELLED, True),
    ]
    assert await api.redis.zscore(api.keys.failed, job_id) is not None

    err = await rpc_error(api.stub.Cancel(pb.CancelRequest(job_id=job_id)), Code.FAILED_PRECONDITION)
    assert job_id in (err.details() or "")
    assert (await api.stub.Status(pb.StatusRequest(job_id=job_id))).state == pb.JOB_STATE_CANCELLED


async def test_a_cancelled_jobs_error_has_no_category(api: Harness) -> None:
    job_id = await submit(api)
    await api.stub.Cancel(pb.CancelRequest(job_id=job_id))

    job = await api.stub.Status(pb.StatusRequest(job_id=job_id))

    assert job.state == pb.JOB_STATE_CANCELLED and job.HasField("error")
    assert (job.error.category, job.error.message) == (pb.ERROR_CATEGORY_UNSPECIFIED, "cancelled before it ran")


async def test_cancel_ends_a_live_progress_stream(api: Harness) -> None:
    job_id = await submit(api)
    call = api.stub.StreamProgress(pb.StreamProgressRequest(job_id=job_id))
    (queued,) = await read(call, 1)
    assert queued.state == pb.JOB_STATE_PENDING

    await api.stub.Cancel(pb.CancelRequest(job_id=job_id))

    events = await collect(call)
    assert [(e.state, e.progress.message, e.terminal) for e in events] == [(pb.JOB_STATE_CANCELLED, "Cancelled", True)]
    assert await call.code() == Code.OK


async def test_cancel_an_unknown_job_is_not_found(api: Harness) -> None:
    await rpc_error(api.stub.Cancel(pb.CancelRequest(job_id="no-such-job")), Code.NOT_FOUND)
    await rpc_error(api.stub.Cancel(pb.CancelRequest(job_id="")), Code.NOT_FOUND)


async def test_cancel_a_delayed_job_removes_it_from_the_delayed_set(api: Harness) -> None:
    before = now_ms()
    job_id = await submit(api, request(delay_ms=60_000))
    job = await api.stub.Status(pb.StatusRequest(job_id=job_id))
    assert job.state == pb.JOB_STATE_SCHEDULED
    assert job.scheduled_for.ToMilliseconds() >= before + 60_000
    assert await api.redis.zscore(api.keys.delayed, job_id) is not None
    assert await lane_job_ids(api, Priority.MEDIUM) == []

    cancelled = await api.stub.Cancel(pb.CancelRequest(job_id=job_id))

    assert cancelled.state == pb.JOB_STATE_CANCELLED
    assert await api.redis.zscore(api.keys.delayed, job_id) is None
    assert await api.redis.zcard(api.keys.delayed) == 0


async def test_a_cancelled_jobs_entry_leaves_the_lane_at_once(api: Harness) -> None:
    job_id = await submit(api, request(priority=pb.PRIORITY_HIGH))
    assert await lane_job_ids(api, Priority.HIGH) == [job_id]
    await api.stub.Cancel(pb.CancelRequest(job_id=job_id))
    assert await lane_job_ids(api, Priority.HIGH) == []  # a Retry then gives it its one new place

    batch = await claim(api.queue, consumer="test-executor", worker_id="test-worker", count=5)

    assert batch.claims == []
    assert await api.redis.xlen(api.keys.stream(Priority.HIGH)) == 0
    pending = await api.redis.xpending(api.keys.stream(Priority.HIGH), GROUP)
    assert pending["pending"] == 0
    assert (await api.stub.Status(pb.StatusRequest(job_id=job_id))).state == pb.JOB_STATE_CANCELLED


async def test_cancel_a_running_job_asks_its_executor(api: Harness) -> None:
    job_id = await submit(api)
    await claim_job(api, job_id)
    job = await api.stub.Cancel(pb.CancelRequest(job_id=job_id))
    assert job.state == pb.JOB_STATE_RUNNING  # the executor stops it and reports CANCELLED
    assert await api.redis.hget(api.keys.job(job_id), "cancel") == "1"


# --- StreamProgress --------------------------------------------------------------------------


async def test_stream_replays_then_follows_live_until_terminal(api: Harness) -> None:
    job_id = await submit(api)
    call = api.stub.StreamProgress(pb.StreamProgressRequest(job_id=job_id))

    (queued,) = await read(call, 1)
    assert (queued.job_id, queued.state, queued.progress.message) == (job_id, pb.JOB_STATE_PENDING, "Queued")
    assert queued.cursor and not queued.terminal
    assert queued.progress.total_steps == 2

    run = await claim_job(api, job_id)
    await write_progress(api.queue, run, progress(50, "halfway"))
    await complete(api, run)
    rest = await collect(call)

    assert [(e.state, e.progress.percentage, e.terminal) for e in rest] == [
        (pb.JOB_STATE_RUNNING, 0, False),
        (pb.JOB_STATE_RUNNING, 50, False),
        (pb.JOB_STATE_COMPLETED, 100, True),
    ]
    assert rest[1].progress.message == "halfway"
    assert all(e.attempt == 1 for e in rest)
    assert await call.code() == Code.OK
    cursors = [queued.cursor, *(e.cursor for e in rest)]
    assert len(set(cursors)) == 4
    await wait_for(subscribers_gone(api), within=5, what="the subscription to be dropped")


def subscribers_gone(api: Harness) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        return api.server.hub.subscriber_count == 0

    return probe


async def test_concurrent_subscribers_see_identical_events(api: Harness) -> None:
    job_id = await submit(api)
    calls = [api.stub.StreamProgress(pb.StreamProgressRequest(job_id=job_id)) for _ in range(2)]
    for call in calls:
        await read(call, 1)

    async def both_live() -> bool:
        return api.server.hub.subscriber_count == 2

    await wait_for(both_live, within=10, what="both streams to subscribe")
    run = await claim_job(api, job_id)
    for pct in (25, 50, 75):
        await write_progress(api.queue, run, progress(pct, f"at {pct}"))
    await complete(api, run)
    first, second = await asyncio.gather(*(collect(call) for call in calls))

    assert summary(first) == summary(second)
    assert [e.progress.percentage for e in first] == [0, 25, 50, 75, 100]
    assert first[-1].terminal


async def test_reconnect_with_a_cursor_resumes_exactly_after_it(api: Harness) -> None:
    job_id = await submit(api)
    run = await claim_job(api, job_id)
    await write_progress(api.queue, run, progress(30, "thirty"))
    first = api.stub.StreamProgress(pb.StreamProgressRequest(job_id=job_id))
    seen = await read(first, 3)  # queued, claimed, thirty
    first.cancel()
    cursor = seen[1].cursor

    resumed = api.stub.StreamProgress(pb.StreamProgressRequest(job_id=job_id, cursor=cursor))
    (replayed,) = await read(resumed, 1)
    assert replayed.cursor == seen[2].cursor  # the one event after the cursor, not the cursor's own
    await write_progress(api.queue, run, progress(60, "sixty"))
    await complete(api, run)
    rest = await collect(resumed)

    full = await collect(api.stub.StreamProgress(pb.StreamProgressRequest(job_id=job_id)))
    assert summary([replayed, *rest]) == summary(full[2:])
    assert [e.progress.percentage for e in full] == [0, 0, 30, 60, 100]
    # From the last cursor of a finished job there is nothing more, and the stream ends at once.
    assert await collect(api.stub.StreamProgress(pb.StreamProgressRequest(job_id=job_id, cursor=full[-1].cursor))) == []


async def test_stream_goes_on_through_a_retry_until_the_final_attempt_ends(api: Harness) -> None:
    job_id = await submit(api)
    call = api.stub.StreamProgress(pb.StreamProgressRequest(job_id=job_id))
    await read(call, 1)

    run = await claim_job(api, job_id)
    retried = await finish(api.queue, run, state=JobState.SCHEDULED, progress=progress(50, "Retrying"), due_ms=now_ms())
    assert retried
    assert (await api.stub.Status(pb.StatusRequest(job_id=job_id))).state == pb.JOB_STATE_SCHEDULED
    assert await promote_due(api.queue) == 1
    again = await claim_job(api, job_id)
    await complete(api, again)
    events = await collect(call)

    assert [(e.state, e.attempt, e.terminal) for e in events] == [
        (pb.JOB_STATE_RUNNING, 1, False),
        (pb.JOB_STATE_SCHEDULED, 1, False),
        (pb.JOB_STATE_PENDING, 1, False),
        (pb.JOB_STATE_RUNNING, 2, False),
        (pb.JOB_STATE_COMPLETED, 2, True),
    ]
    job = await api.stub.Status(pb.StatusRequest(job_id=job_id))
    assert (job.state, job.attempt) == (pb.JOB_STATE_COMPLETED, 2)


async def test_subscriber_of_a_finished_job_gets_the_replay_and_the_end(api: Harness) -> None:
    job_id = await submit(api)
    run = await claim_job(api, job_id)
    await write_progress(api.queue, run, progress(50, "halfway"))
    await complete(api, run)

    call = api.stub.StreamProgress(pb.StreamProgressRequest(job_id=job_id))
    events = await collect(call)

    assert [(e.state, e.terminal) for e in events] == [
        (pb.JOB_STATE_PENDING, False),
        (pb.JOB_STATE_RUNNING, False),
        (pb.JOB_STATE_RUNNING, False),
        (pb.JOB_STATE_COMPLETED, True),
    ]
    assert await call.code() == Code.OK
    assert api.server.hub.subscriber_count == 0


async def test_stream_of_an_unknown_job_is_not_found(api: Harness) -> None:
    call = api.stub.StreamProgress(pb.StreamProgressRequest(job_id="no-such-job"))
    await rpc_error(collect(call), Code.NOT_FOUND)


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "1-x",
        "1-2-3",
        *("1_000-0", "1-0 ", "\u0663-0", "5--1", "99999999999999999999999-0"),
    ],
)
async def test_stream_rejects_a_malformed_cursor(api: Harness, cursor: str) -> None:
    job_id = await submit(api)
    call = api.stub.StreamProgress(pb.StreamProgressRequest(job_id=job_id, cursor=cursor))
    err = await rpc_error(collect(call), Code.INVALID_ARGUMENT)
    assert bad_request_fields(err) == ["cursor"]


async def test_a_cancelled_call_leaves_no_subscription(api: Harness) -> None:
    job_id = await submit(api)
    call = api.stub.StreamProgress(pb.StreamProgressRequest(job_id=job_id))
    await read(call, 1)

    async def subscribed() -> bool:
        return api.server.hub.subscriber_count == 1

    await wait_for(subscribed, within=10, what="the stream to subscribe")

    call.cancel()

    await wait_for(subscribers_gone(api), within=10, what="the subscription to be dropped")
    assert call.cancelled()


async def test_shutdown_ends_open_streams_with_unavailable(api: Harness) -> None:
    job_id = await submit(api)
    call = api.stub.StreamProgress(pb.StreamProgressRequest(job_id=job_id))
    (queued,) = await read(call, 1)

    async def subscribed() -> bool:
        return api.server.hub.subscriber_count == 1

    await wait_for(subscribed, within=10, what="the stream to subscribe")

    stopping = asyncio.create_task(api.server.stop(5))
    err = await rpc_error(collect(call), Code.UNAVAILABLE)
    await asyncio.wait_for(stopping, timeout=10)
    assert "cursor" in (err.details() or "")  # tells the client to reconnect with its last cursor
    assert queued.cursor


# --- health and reflection -------------------------------------------------------------------


SERVING: int = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING: int = health_pb2.HealthCheckResponse.NOT_SERVING


async def health_status(api: Harness, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(api.channel)
    response = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return cast(int, response.status)


async def test_health_follows_redis(api: Harness, redis_server: RedisProcess) -> None:
    assert await health_status(api, "") == SERVING
    assert await health_status(api, SERVICE) == SERVING

    redis_server.stop()

    async def not_serving() -> bool:
        return await health_status(api, SERVICE) == NOT_SERVING

    await wait_for(not_serving, within=10, interval=0.1, what="health to say NOT_SERVING")
    assert await health_status(api, "") == NOT_SERVING
    await rpc_error(api.stub.Status(pb.StatusRequest(job_id="x"), timeout=10), Code.UNAVAILABLE)

    # Redis comes back on the same port: health recovers and requests work again.
    revived = start_redis(redis_server.directory, port=redis_server.port)
    try:

        async def serving_again() -> bool:
            return await health_status(api, SERVICE) == SERVING

        await wait_for(serving_again, within=10, interval=0.1, what="health to say SERVING again")
        job_id = await submit(api)
        assert (await api.stub.Status(pb.StatusRequest(job_id=job_id))).state == pb.JOB_STATE_PENDING
    finally:
        revived.stop()


async def test_a_follower_is_told_its_job_is_gone_when_redis_comes_back_without_its_data(
    api: Harness, redis_server: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = await submit(api)
    stream = api.stub.StreamProgress(pb.StreamProgressRequest(job_id=job_id), timeout=60)
    first = await stream.read()
    assert isinstance(first, pb.ProgressEvent) and first.state == pb.JOB_STATE_PENDING

    redis_server.stop()  # no persistence: it comes back empty
    revived = start_redis(redis_server.directory, port=redis_server.port)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            for _ in range(100):
                await stream.read()
        assert ended.value.code() == Code.NOT_FOUND
        assert "Redis came back without it" in (ended.value.details() or "")

        # The API, with no executor beside it, says so and makes the lanes again.
        async def lanes_made_again() -> bool:
            try:
                return bool(await api.redis.xinfo_groups(api.keys.lanes[0]))
            except (redis_exceptions.ResponseError, redis_exceptions.ConnectionError):
                return False

        await wait_for(lanes_made_again, within=10, what="the API to make the lanes again")
        lost = [r for r in caplog.records if r.levelname == "ERROR" and "without Sentinel's data" in r.getMessage()]
        assert len(lost) == 1, lost
    finally:
        revived.stop()


async def test_reflection_lists_the_services(api: Harness) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(api.channel)
    call = stub.ServerReflectionInfo()
    await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
    async with asyncio.timeout(10):
        response = await call.read()
    await call.done_writing()
    names = {s.name for s in response.list_services_response.service}
    assert {SERVICE, "sentinel.v1.QueueAdmin", "grpc.health.v1.Health"} <= names

    await call_file_containing(stub, SERVICE)


async def call_file_containing(stub: Any, symbol: str) -> None:
    """The server can also describe the service: its file descriptor names the Submit method."""
    call = stub.ServerReflectionInfo()
    await call.write(reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol))
    async with asyncio.timeout(10):
        response = await call.read()
    await call.done_writing()
    assert response.file_descriptor_response.file_descriptor_proto
    assert any(b"Submit" in raw for raw in response.file_descriptor_response.file_descriptor_proto)
