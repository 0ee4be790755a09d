"""Runs through a real grpc.aio API server and a real redis-server; the test plays the executor
with `executor_service.store` (claim, finish), as tests/api_service/test_api.py does."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from executor_service.store import Claim, claim, finish, promote_due
from protos import sentinel_pb2 as pb
from shared import retention, runs
from shared.clock import now_ms
from shared.errors import NotFoundError
from shared.model import ErrorCategory, JobError, JobResult, JobState, Progress, StepResult
from shared.queue import Queue
from shared.validation import MAX_JOB_TIMEOUT_MS, MAX_TAGS
from tests.api_service.conftest import Harness
from tests.api_service.test_api import bad_request_fields, rpc_error

Code = grpc.StatusCode
WORKER = "fake-executor"


def a_test(name: str, *selectors: str) -> pb.RunTest:
    steps = [pb.Step(navigate=pb.Navigate(url="https://shop.example.test/"))]
    steps += [pb.Step(click=pb.Click(selector=s)) for s in selectors]
    return pb.RunTest(definition=pb.TestDefinition(name=name, steps=steps), file=f"suite/{name}.json")


def run_request(*names: str, max_parallel: int = 0, key: str = "") -> pb.SubmitRunRequest:
    return pb.SubmitRunRequest(
        name="nightly",
        tests=[a_test(n) for n in names],
        options=pb.JobOptions(tags=["nightly"], idempotency_key=key),
        max_parallel=max_parallel,
    )


async def claim_all(queue: Queue) -> list[Claim]:
    await promote_due(queue)
    return list((await claim(queue, consumer=WORKER, worker_id=WORKER, count=50)).claims)


async def end(queue: Queue, job: Claim, state: JobState) -> None:
    now = now_ms()
    passed = state is JobState.COMPLETED
    steps = (
        StepResult(index=0, name="navigate", success=True, duration_ms=5),
        StepResult(index=1, name="click #buy", success=passed, duration_ms=7, error="" if passed else "no #buy"),
    )
    error = None if passed else JobError(ErrorCategory.ASSERTION, "no #buy", step_index=1)
    result = JobResult(
        success=passed,
        steps=steps,
        execution_time_ms=12,
        attempt=1,
        completed_at_ms=now,
        artifacts=() if passed else ("1/step-01-failure.png",),
        error=error,
    )
    done = await finish(
        queue,
        job,
        state=state,
        progress=Progress(percentage=100, total_steps=2, current_step=2, message=state.value, updated_at_ms=now),
        result=result,
        error=error,
        execution_ms=12,
    )
    assert done


async def test_a_run_holds_tests_back_by_max_parallel_and_ends_with_every_tests_outcome(
    api: Harness,
) -> None:
    stub, queue = api.stub, api.queue
    submitted = await stub.SubmitRun(run_request("a", "b", "c", max_parallel=2))
    assert len(submitted.job_ids) == 3 and not submitted.duplicate

    run = await stub.GetRun(pb.GetRunRequest(run_id=submitted.run_id))
    assert run.state == pb.RUN_STATE_RUNNING and run.total == 3 and run.max_parallel == 2
    assert (run.counts.pending, run.counts.scheduled) == (2, 1)
    assert [t.name for t in run.tests] == ["a", "b", "c"]
    assert [t.file for t in run.tests] == ["suite/a.json", "suite/b.json", "suite/c.json"]
    job = await stub.Status(pb.StatusRequest(job_id=submitted.job_ids[0]))
    assert job.run_id == submitted.run_id and list(job.tags) == ["nightly"]

    first = await claim_all(queue)
    assert [c.job_id for c in first] == list(submitted.job_ids[:2]), "the third waits for room"
    assert await claim_all(queue) == []
    await end(queue, first[0], JobState.COMPLETED)
    third = await claim_all(queue)
    assert [c.job_id for c in third] == [submitted.job_ids[2]], "an ended test lets the next one in"
    await end(queue, first[1], JobState.FAILED)
    await end(queue, third[0], JobState.COMPLETED)

    run = await stub.GetRun(pb.GetRunRequest(run_id=submitted.run_id))
    assert run.state == pb.RUN_STATE_FAILED
    assert (run.counts.completed, run.counts.failed) == (2, 1)
    failed = run.tests[1]
    assert failed.state == pb.JOB_STATE_FAILED
    assert (failed.failing_step, failed.failing_step_name) == (1, "click #buy")
    assert failed.error.message == "no #buy" and failed.error.category == pb.ERROR_CATEGORY_ASSERTION
    assert list(failed.artifacts) == ["1/step-01-failure.png"]
    assert failed.duration_ms == 12 and len(failed.steps) == 2
    assert run.finished_at.ToMilliseconds() >= run.created_at.ToMilliseconds() > 0


async def test_a_runs_summary_outlives_its_jobs_and_the_run_expires_later(
    api: Harness,
) -> None:
    stub, queue = api.stub, api.queue
    submitted = await stub.SubmitRun(run_request("a", "b"))
    jobs_ = await claim_all(queue)
    await end(queue, jobs_[0], JobState.COMPLETED)
    await end(queue, jobs_[1], JobState.FAILED)

    assert await retention.clean(queue) == 2
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await stub.Status(pb.StatusRequest(job_id=submitted.job_ids[0]))
    assert gone.value.code() == Code.NOT_FOUND

    run = await stub.GetRun(pb.GetRunRequest(run_id=submitted.run_id))
    assert run.state == pb.RUN_STATE_FAILED
    assert [(t.name, t.state) for t in run.tests] == [("a", pb.JOB_STATE_COMPLETED), ("b", pb.JOB_STATE_FAILED)]
    assert [list(t.tags) for t in run.tests] == [["nightly"], ["nightly"]]  # as their jobs had them
    assert run.tests[1].failing_step_name == "click #buy" and list(run.tests[1].artifacts) == ["1/step-01-failure.png"]
    ttl_ms = await queue.redis.pttl(queue.keys.run(submitted.run_id))
    assert 0 < ttl_ms <= queue.settings.run_retention_ms
    assert await queue.redis.pttl(queue.keys.run_test(submitted.run_id, submitted.job_ids[1])) > 0


async def test_stream_run_gives_each_tests_progress_and_terminal_event_then_the_runs_end(
    api: Harness,
) -> None:
    stub, queue = api.stub, api.queue
    submitted = await stub.SubmitRun(run_request("a", "b", max_parallel=1))
    events: list[pb.RunEvent] = []

    async def watch() -> None:
        async for event in stub.StreamRun(pb.StreamRunRequest(run_id=submitted.run_id)):
            events.append(event)

    watching = asyncio.create_task(watch())
    for _ in range(2):
        (job,) = await claim_all(queue)
        await end(queue, job, JobState.COMPLETED)
    await asyncio.wait_for(watching, timeout=30)

    assert events[-1].WhichOneof("event") == "finished"
    assert events[-1].finished.state == pb.RUN_STATE_PASSED
    progress = [e.progress for e in events[:-1]]
    assert all(e.WhichOneof("event") == "progress" for e in events[:-1])
    for job_id in submitted.job_ids:
        mine = [p for p in progress if p.job_id == job_id]
        assert mine and mine[-1].terminal and mine[-1].state == pb.JOB_STATE_COMPLETED
        assert sum(p.terminal for p in mine) == 1


async def test_cancel_run_stops_every_test_that_has_not_ended(api: Harness) -> None:
    stub, queue = api.stub, api.queue
    submitted = await stub.SubmitRun(run_request("a", "b", "c", max_parallel=1))
    (running,) = await claim_all(queue)

    run = await stub.CancelRun(pb.CancelRunRequest(run_id=submitted.run_id))

    assert run.state == pb.RUN_STATE_CANCELLED
    assert [t.state for t in run.tests] == [pb.JOB_STATE_RUNNING, pb.JOB_STATE_CANCELLED, pb.JOB_STATE_CANCELLED]
    never_ran = await stub.Status(pb.StatusRequest(job_id=run.tests[2].job_id))
    assert (never_ran.error.category, never_ran.error.message) == (
        pb.ERROR_CATEGORY_UNSPECIFIED,
        "cancelled before it ran",
    )
    assert await claim_all(queue) == [], "nothing held back is released"
    await end(queue, running, JobState.CANCELLED)  # its executor stops it as asked
    run = await stub.GetRun(pb.GetRunRequest(run_id=submitted.run_id))
    assert run.state == pb.RUN_STATE_CANCELLED and run.counts.cancelled == 3
    assert run.finished_at.ToMilliseconds() > 0

    done = await stub.SubmitRun(run_request("d"))
    (job,) = await claim_all(queue)
    await end(queue, job, JobState.COMPLETED)
    with pytest.raises(grpc.aio.AioRpcError) as finished:
        await stub.CancelRun(pb.CancelRunRequest(run_id=done.run_id))
    assert finished.value.code() == Code.FAILED_PRECONDITION


async def test_submit_run_checks_every_test_and_names_the_field(
    api: Harness,
) -> None:
    stub = api.stub
    with pytest.raises(grpc.aio.AioRpcError) as empty:
        await stub.SubmitRun(pb.SubmitRunRequest(name="nothing"))
    assert empty.value.code() == Code.INVALID_ARGUMENT and "tests" in (empty.value.details() or "")

    bad = run_request("a", "b")
    bad.tests[1].definition.steps.add()  # a step with no action
    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await stub.SubmitRun(bad)
    assert invalid.value.code() == Code.INVALID_ARGUMENT
    assert "tests[1].definition.steps[1]" in (invalid.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.GetRun(pb.GetRunRequest(run_id="no-such-run"))
    assert missing.value.code() == Code.NOT_FOUND


async def test_submit_run_refuses_unknown_enum_numbers_naming_the_field(api: Harness) -> None:
    bad = run_request("a", "b")
    bad.options.artifact_policy = 12  # type: ignore[assignment]
    bad.tests[1].options.priority = 99  # type: ignore[assignment]
    err = await rpc_error(api.stub.SubmitRun(bad), Code.INVALID_ARGUMENT)
    assert bad_request_fields(err) == ["options.artifact_policy", "tests[1].options.priority"]
    assert (err.details() or "").startswith("options.artifact_policy: must be one of ARTIFACT_POLICY_UNSPECIFIED")
    assert not [key async for key in api.redis.scan_iter(match=api.keys.job("*"))]


async def test_a_runs_test_keeps_its_own_options_under_the_runs(api: Harness) -> None:
    """A definition file's options go with its test (`sentinel run` used to drop them): the run's
    options win where they set a field, the tags are both lists, each tag once."""
    stub = api.stub
    request = run_request("own", "plain")  # the run's options: tags ["nightly"]
    request.options.priority = pb.PRIORITY_HIGH
    request.tests[0].options.CopyFrom(
        pb.JobOptions(timeout_ms=4000, max_attempts=1, tags=["slow", "nightly"], priority=pb.PRIORITY_LOW)
    )
    submitted = await stub.SubmitRun(request)

    own, plain = [await stub.Status(pb.StatusRequest(job_id=job_id)) for job_id in submitted.job_ids]
    assert (own.timeout_ms, own.max_attempts) == (4000, 1)
    assert list(own.tags) == ["slow", "nightly"]
    assert own.priority == plain.priority == pb.PRIORITY_HIGH  # the run's
    assert list(plain.tags) == ["nightly"] and plain.max_attempts != 1
    run = await stub.GetRun(pb.GetRunRequest(run_id=submitted.run_id))
    assert [list(t.tags) for t in run.tests] == [list(own.tags), list(plain.tags)]  # what a report shows

    keyed = run_request("a")
    keyed.tests[0].options.idempotency_key = "mine"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.SubmitRun(keyed)
    assert refused.value.code() == Code.INVALID_ARGUMENT
    assert "tests[0].options.idempotency_key" in (refused.value.details() or "")


async def test_a_bad_run_option_is_named_once_and_a_tests_own_by_its_own_path(api: Harness) -> None:
    """The run's options are every test's, but a bad one is the run's: one violation, not one a test."""
    request = run_request("a", "b", "c")
    request.options.timeout_ms = MAX_JOB_TIMEOUT_MS + 1
    request.tests[0].options.CopyFrom(pb.JobOptions(tags=["smoke"]))
    request.tests[1].options.CopyFrom(pb.JobOptions(max_attempts=2))
    request.tests[2].options.CopyFrom(pb.JobOptions(max_attempts=11, timeout_ms=MAX_JOB_TIMEOUT_MS + 2))

    err = await rpc_error(api.stub.SubmitRun(request), Code.INVALID_ARGUMENT)

    # tests[2]'s own timeout would lose the merge to the run's; it is named all the same.
    assert bad_request_fields(err) == [
        "options.timeout_ms",
        "tests[2].options.timeout_ms",
        "tests[2].options.max_attempts",
    ]
    assert not [key async for key in api.redis.scan_iter(match=api.keys.job("*"))]


async def test_a_tests_own_repeated_tag_is_refused_but_one_it_shares_with_the_run_is_not(api: Harness) -> None:
    request = run_request("shares", "repeats")  # the run's options: tags ["nightly"]
    request.tests[0].options.CopyFrom(pb.JobOptions(tags=["smoke", "nightly"]))
    request.tests[1].options.CopyFrom(pb.JobOptions(tags=["smoke", "slow", "smoke"]))

    err = await rpc_error(api.stub.SubmitRun(request), Code.INVALID_ARGUMENT)

    assert bad_request_fields(err) == ["tests[1].options.tags[2]"]
    assert "tests[1].options.tags[2]: repeats 'smoke' (tags[0])" in (err.details() or "")

    del request.tests[1]  # a tag in both the run's options and the test's own is the merge's, once
    submitted = await api.stub.SubmitRun(request)
    job = await api.stub.Status(pb.StatusRequest(job_id=submitted.job_ids[0]))
    assert list(job.tags) == ["smoke", "nightly"]


async def test_more_tags_than_a_job_carries_once_merged_are_named_at_the_tests_own(api: Harness) -> None:
    request = run_request("a", "b")
    request.options.tags[:] = [f"run-{i}" for i in range(MAX_TAGS // 2 + 1)]
    request.tests[1].options.CopyFrom(pb.JobOptions(tags=[f"own-{i}" for i in range(MAX_TAGS // 2)]))

    err = await rpc_error(api.stub.SubmitRun(request), Code.INVALID_ARGUMENT)

    assert bad_request_fields(err) == ["tests[1].options.tags"]
    assert f"must have at most {MAX_TAGS} tags with the run's, got {MAX_TAGS + 1}" in (err.details() or "")


async def test_an_idempotency_key_makes_a_repeated_submit_the_same_run(
    api: Harness,
) -> None:
    stub, queue = api.stub, api.queue
    first = await stub.SubmitRun(run_request("a", "b", key="ci-build-42"))
    again = await stub.SubmitRun(run_request("a", "b", key="ci-build-42"))
    assert again.run_id == first.run_id and again.duplicate and list(again.job_ids) == list(first.job_ids)
    assert len(await claim_all(queue)) == 2, "the tests were submitted once"


async def test_a_run_is_its_tenants_only(api: Harness) -> None:
    queue = api.queue
    from shared.model import JobOptions, Navigate, RunCommand, RunTestSpec, Step, TestDefinition

    command = RunCommand(
        name="mine",
        tests=(RunTestSpec(TestDefinition(name="t", steps=(Step(Navigate("https://example.test/")),))),),
        options=JobOptions(),
    )
    submitted = await runs.submit_run(queue, command, tenant="acme")
    assert (await runs.get_run(queue, submitted.run_id, tenant="acme")).name == "mine"
    with pytest.raises(NotFoundError):
        await runs.get_run(queue, submitted.run_id, tenant="globex")
    with pytest.raises(NotFoundError):
        await runs.cancel_run(queue, submitted.run_id, tenant="globex")
