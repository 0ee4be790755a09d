"""Runs through the SDK against real processes: submit a suite, follow it, wait for it, cancel it.

Each scenario runs with `AsyncClient` and with the blocking `Client` (see `twins`), on the package's
shared stack.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sentinel_client import (
    AsyncClient,
    ErrorCategory,
    InvalidArgumentError,
    JobState,
    ProgressEvent,
    Run,
    RunState,
    RunTestSource,
)
from tests.e2e.conftest import Stack
from tests.sentinel_client.test_client import PASSING, definition, fresh_tag

pytestmark = pytest.mark.timeout(120)

FAILING: list[dict[str, Any]] = [
    {"navigate": {"url": "/index.html"}},
    {"timeoutMs": 1000, "expectText": {"selector": "#out", "text": "never shown"}},
]


async def test_a_suite_runs_as_one_run_with_each_tests_outcome(
    client: AsyncClient, stack: Stack, tmp_path: Path
) -> None:
    tag = fresh_tag()
    from_file = tmp_path / "greets.json"
    from_file.write_text(json.dumps(definition(stack, PASSING, name="from a file")), encoding="utf-8")
    made = {"name": "from a recording", "baseUrl": stack.site, "steps": PASSING}
    tests: list[RunTestSource] = [
        definition(stack, PASSING, name="passes"),
        str(from_file),
        (made, "suite/recording.json"),
    ]
    tests.append(definition(stack, FAILING, name="fails"))

    handle = await client.submit_run(tests, name="suite", max_parallel=2, tags=[tag])
    assert len(handle.job_ids) == 4 and not handle.duplicate
    seen: list[ProgressEvent | Run] = [item async for item in handle.events()]
    done = await handle.wait(timeout=60)

    final = seen[-1]
    assert isinstance(final, Run) and final.state is RunState.FAILED and done.state is RunState.FAILED
    progress = [e for e in seen if isinstance(e, ProgressEvent)]
    for job_id in handle.job_ids:
        assert [e.terminal for e in progress if e.job_id == job_id].count(True) == 1
    assert [t.name for t in done.tests] == ["passes", "from a file", "from a recording", "fails"]
    assert [t.file for t in done.tests] == ["", str(from_file), "suite/recording.json", ""]
    assert [t.state for t in done.tests] == [JobState.COMPLETED] * 3 + [JobState.FAILED]
    assert done.counts[JobState.COMPLETED] == 3 and done.counts[JobState.FAILED] == 1
    failed = done.tests[3]
    assert failed.failing_step == 1 and failed.failing_step_name.startswith("expect #out")
    assert failed.error is not None and failed.error.category is ErrorCategory.ASSERTION
    assert failed.artifacts and failed.steps[1].error and failed.duration_ms > 0
    job = await client.get(handle.job_ids[0])
    assert tag in job.tags
    assert [t.tags for t in done.tests] == [job.tags] * 4 == [(tag,)] * 4  # each test's job's, as the API says
    assert (await client.get_run(handle.id)).tests == done.tests


async def test_a_run_is_cancelled_and_its_waiting_tests_never_run(client: AsyncClient, stack: Stack) -> None:
    waits: list[dict[str, Any]] = [{"navigate": {"url": "/index.html"}}, {"wait": {"ms": 30000}}]
    handle = await client.submit_run([definition(stack, waits, name=f"w{i}") for i in range(3)], max_parallel=1)

    cancelled = await client.run(handle.id).cancel()

    assert cancelled.state is RunState.CANCELLED
    assert [t.state for t in cancelled.tests][1:] == [JobState.CANCELLED, JobState.CANCELLED]
    done = await client.wait_run(handle.id, timeout=60)
    assert done.state is RunState.CANCELLED and done.counts[JobState.CANCELLED] == 3


async def test_validate_run_checks_a_run_as_submit_run_would_and_submits_nothing(
    client: AsyncClient, stack: Stack
) -> None:
    tag = fresh_tag()
    good = definition(stack, PASSING, name="good")
    await client.validate_run([good, good], name="checked", max_parallel=1, tags=[tag])  # accepted: no error

    empty = definition(stack, [{"click": {"selector": ""}}], name="empty")  # only the API finds this one
    with pytest.raises(InvalidArgumentError) as refused:
        await client.validate_run([good, empty], max_parallel=10_000, tags=[tag])
    assert sorted(v.field for v in refused.value.violations) == [
        "max_parallel",
        "tests[1].definition.steps[0].click.selector",
    ]
    assert [job async for job in client.jobs(tag=tag)] == []  # neither call made a job
    with pytest.raises(InvalidArgumentError) as submitted:  # submit_run refuses what validate_run did
        await client.submit_run([good, empty], max_parallel=10_000, tags=[tag])
    assert submitted.value.violations == refused.value.violations
