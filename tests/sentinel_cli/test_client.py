"""`sentinel submit`, `status` and `cancel` as a user runs them: the real console script against a real
API server (port 0) and redis-server, with no executor, so a submitted job waits for as long as a
test needs. What the user sees is checked: every problem of a bad file on its own line, exit codes
as `sentinel --help` documents them, Ctrl-C and a reader that goes away."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from api_service.server import ApiServer
from sentinel_cli.client import LABEL_WIDTH, render_result, render_run, row_labels
from sentinel_client import AsyncClient, ErrorCategory, Job, JobError, JobState, Run, RunState, RunTest

pytestmark = pytest.mark.timeout(60)

SENTINEL = str(Path(sys.executable).with_name("sentinel"))
WAITS = [{"navigate": {"url": "https://shop.test/"}}, {"wait": {"ms": 1000}}]


@pytest.fixture
def api(api: ApiServer) -> str:
    """The address of the package's API server (tests/sentinel_cli/conftest.py)."""
    return f"127.0.0.1:{api.port}"


def write(path: Path, document: Any) -> str:
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


async def sentinel(api: str, *argv: str, cwd: Path | None = None) -> tuple[int, str, str]:
    """Run the console script; its exit code, stdout and stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTINEL_", "OTEL_"))}
    env["SENTINEL_API"] = api
    process = await asyncio.create_subprocess_exec(
        SENTINEL, *argv, env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=45)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def interrupted(api: str, *argv: str, ready: str, sig: int = signal.SIGINT) -> tuple[int, str, str]:
    """Run the console script, press Ctrl-C (or send `sig`) once stdout has a line matching `ready`;
    what it did then."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTINEL_", "OTEL_"))}
    env["SENTINEL_API"] = api
    process = await asyncio.create_subprocess_exec(
        SENTINEL, *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None and process.stderr is not None
    seen = ""
    while not re.search(ready, seen):
        line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
        assert line, f"ended before {ready!r}: {seen}{(await process.stderr.read()).decode()}"
        seen += line.decode()
    process.send_signal(sig)
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode is not None
    return process.returncode, seen + out.decode(), err.decode()


async def test_submit_shows_every_violation_on_a_line_as_the_file_spells_the_field(api: str, tmp_path: Path) -> None:
    steps = [{"click": {"selector": ""}}, {"waitFor": {"selector": ""}}, {"expectText": {"selector": "#a"}}]
    bad = write(tmp_path / "bad.json", {"name": "bad", "steps": steps})

    code, _, err = await sentinel(api, "submit", bad)

    assert code == 2
    assert err.splitlines() == [
        f"sentinel: INVALID_ARGUMENT: {bad}: definition.steps[0].click.selector: must not be empty",
        f"sentinel: INVALID_ARGUMENT: {bad}: definition.steps[1].waitFor.selector: must not be empty",
        f"sentinel: INVALID_ARGUMENT: {bad}: definition.steps[2].expectText.text: must not be empty",
    ]


async def test_submit_names_the_file_and_the_field_protobuf_refuses(api: str, tmp_path: Path) -> None:
    for document, said in (
        ({"name": "n", "viewport": {"width": -1}, "steps": WAITS}, "definition.viewport.width: Value out of range: -1"),
        ({"name": "n", "steps": [{"wait": {"ms": "abc"}}]}, "definition.steps[0].wait.ms: must be an integer, got"),
        ({"name": "n", "steps": [{"wait": {"ms": 1}, "click": {"selector": "a"}}]}, "definition.steps[0]: has more"),
        ({"name": "n", "steps": [{"wiat": {"ms": 1}}]}, 'definition.steps[0]: unknown field "wiat"'),
    ):
        path = write(tmp_path / "bad.json", document)
        code, _, err = await sentinel(api, "submit", path)
        assert code == 2 and err.startswith(f"sentinel: INVALID_ARGUMENT: {path}: {said}"), err
        assert len(err.splitlines()) == 1 and ".." not in err and "Available Fields" not in err


async def test_cancel_takes_a_run_id_and_an_unknown_id_exits_1_like_artifacts(api: str, tmp_path: Path) -> None:
    async with AsyncClient(api) as client:
        run = await client.submit_run([{"name": f"t{i}", "steps": WAITS} for i in range(2)])
        job = await client.submit({"name": "alone", "steps": WAITS})

        code, out, err = await sentinel(api, "cancel", run.id)
        assert code == 0, err
        assert out == f"run {run.id}  CANCELLED  (2 cancelled)\n"
        assert (await client.get_run(run.id)).state is RunState.CANCELLED
        code, out, _ = await sentinel(api, "cancel", job.id)
        assert code == 0 and out == f"{job.id}  CANCELLED\n"

    for argv, said in (
        (["cancel", "nope"], "sentinel: NOT_FOUND: no job or run 'nope'\n"),
        (["status", "nope"], "sentinel: NOT_FOUND: no job or run 'nope'\n"),
        (["artifacts", "nope"], "sentinel: job 'nope' not found\n"),
    ):
        code, _, err = await sentinel(api, *argv, cwd=tmp_path)
        assert (code, err) == (1, said), argv
    _, out, _ = await sentinel(api, "cancel", "--help")
    assert "or, when no job has the id, the run" in out


async def test_status_takes_a_run_id_and_shows_its_tests(api: str) -> None:
    async with AsyncClient(api) as client:
        run = await client.submit_run([{"name": f"t{i}", "steps": WAITS} for i in range(2)], name="nightly")
        await client.cancel(run.job_ids[1])

    code, out, err = await sentinel(api, "status", run.id)

    assert code == 0, err
    assert out.splitlines() == [
        f"run {run.id}  RUNNING  nightly",
        "  2 test(s): 0 passed, 0 failed, 1 cancelled, 1 not ended",
        "  test  result         time",
        "  t0    PENDING         0ms",
        "  t1    CANCELLED       0ms",
        "  ↳ cancelled before it ran",
    ]
    code, out, _ = await sentinel(api, "status", run.job_ids[0])  # a job id still shows the job
    assert code == 0 and out.startswith(f"{run.job_ids[0]}  PENDING")
    code, _, err = await sentinel(api, "status")
    assert code == 2 and "the following arguments are required: ID" in err
    _, out, _ = await sentinel(api, "status", "--help")
    assert "or, when no job has the id, the run" in out


def test_a_runs_status_counts_its_tests_once_passed_flaky_and_failed() -> None:
    error = JobError(message="expected 'Hi, Ada'", category=ErrorCategory.ASSERTION)
    tests = (
        RunTest(job_id="j1", name="log in", state=JobState.COMPLETED, duration_ms=812),
        RunTest(job_id="j2", name="pay", state=JobState.FAILED, duration_ms=95, failing_step=1, error=error),
        RunTest(job_id="j3", name="slow", state=JobState.TIMEOUT, duration_ms=30000),
        RunTest(job_id="j4", name="cart", state=JobState.COMPLETED, duration_ms=90, attempt=2, error=error),
    )
    counts = {JobState.COMPLETED: 2, JobState.FAILED: 2}
    run = Run(id="r1", name="", state=RunState.FAILED, tests=tests, counts=counts)
    out = io.StringIO()
    render_run(run, out)
    assert out.getvalue().splitlines()[:2] == [
        "run r1  FAILED",
        "  4 test(s): 2 passed (1 flaky), 2 failed",
    ]
    assert "  ↳ step 2 (): expected 'Hi, Ada'" in out.getvalue()
    # A test that passed on its second attempt says what its first one failed with.
    flaky = "  ↳ flaky: passed on attempt 2; attempt 1 failed (assertion): expected 'Hi, Ada'"
    assert out.getvalue().splitlines()[-1] == flaky


def test_tests_that_share_a_name_are_told_apart_by_their_files() -> None:
    """As JUnit classnames are: by the path below the folder the files have in common."""
    long = "checks that a returning customer can log in with a saved card"
    tests = (
        RunTest(job_id="j1", name="log in", file="suite/checks/a/login.json", state=JobState.COMPLETED),
        RunTest(job_id="j2", name="log in", file="suite/checks/b/login.json", state=JobState.FAILED),
        RunTest(job_id="j3", name="pay", file="suite/checks/pay.json", state=JobState.COMPLETED),
        RunTest(job_id="j4", name=long, file="suite/smoke/login.json"),
        RunTest(job_id="j5", name=long, file="suite/nightly/login.json"),
        RunTest(job_id="j6", name="made", state=JobState.COMPLETED),  # no file: told by its job id
        RunTest(job_id="j7", name="made", state=JobState.COMPLETED),
        RunTest(job_id="j8", name="deep", file=f"one/{'x' * 60}/t.json"),
        RunTest(job_id="j9", name="deep", file="two/t.json"),
    )
    run = Run(id="r1", name="", state=RunState.FAILED, tests=tests)
    out = io.StringIO()
    render_run(run, out)

    labels = row_labels(tests)
    assert [labels[t.job_id] for t in tests[:3]] == ["log in (a/login.json)", "log in (b/login.json)", "pay"]
    # Too long for a row: the name is cut first, then the path from its start; never the file's name.
    assert labels["j4"] == "checks that a returning cust… (smoke/login.json)"
    assert labels["j5"] == "checks that a returning cu… (nightly/login.json)"
    assert labels["j8"] == f"deep (…{'x' * 33}/t.json)" and labels["j9"] == "deep (two/t.json)"
    assert all(len(label) <= LABEL_WIDTH for label in labels.values())
    assert (labels["j6"], labels["j7"]) == ("made (j6)", "made (j7)")
    rows = out.getvalue().splitlines()[3:5]
    assert rows == [
        f"  {'log in (a/login.json)':<{LABEL_WIDTH}}  COMPLETED       0ms",
        f"  {'log in (b/login.json)':<{LABEL_WIDTH}}  FAILED          0ms",
    ]


def test_control_characters_a_test_or_page_chose_are_shown_not_acted_on() -> None:
    """A CI log shows what a test is called and what failed; a bell or an ANSI colour code in them is
    written as text, never sent to the terminal to ring or colour it."""
    error = JobError(category=ErrorCategory.ASSERTION, message="expected \x1b[31mred\x1b[0m\x07")
    tests = (RunTest(job_id="j1", name="\x1b[2Jclear", file="t.json", state=JobState.FAILED, error=error),)
    out = io.StringIO()
    render_run(Run(id="r1", name="", state=RunState.FAILED, tests=tests), out)
    shown = out.getvalue()
    assert "\x1b" not in shown and "\x07" not in shown
    assert "\\x1b[2Jclear" in shown and "expected \\x1b[31mred\\x1b[0m\\x07" in shown


async def test_ctrl_c_while_following_a_job_exits_130_with_one_line(api: str, tmp_path: Path) -> None:
    path = write(tmp_path / "waits.json", {"name": "waits", "steps": WAITS})

    code, out, err = await interrupted(api, "submit", path, "--follow", ready=r"PENDING")

    job_id = out.split()[1]
    assert code == 130
    assert err == f"sentinel: interrupted; job {job_id} goes on (sentinel cancel {job_id} stops it)\n"


async def test_a_reader_that_goes_away_ends_the_output_quietly_with_141(api: str) -> None:
    async with AsyncClient(api) as client:
        for i in range(3):
            await client.submit({"name": f"t{i}", "steps": WAITS})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTINEL_", "OTEL_"))}
    env["SENTINEL_API"] = api
    read, write_end = os.pipe()
    os.close(read)  # the reader is gone before the first line: `| head -0`, as `| head -1` after one
    try:
        process = await asyncio.create_subprocess_exec(
            SENTINEL, "jobs", env=env, stdout=write_end, stderr=asyncio.subprocess.PIPE
        )
    finally:
        os.close(write_end)
    _, err = await asyncio.wait_for(process.communicate(), timeout=45)
    assert (process.returncode, err.decode()) == (141, "")


@pytest.mark.parametrize(
    ("state", "attempt", "max_attempts", "runs", "said"),
    [
        (JobState.FAILED, 1, 3, 1, "FAILED (attempt 1, not retried)"),  # an assertion: never retried by default
        (JobState.FAILED, 3, 3, 3, "FAILED (attempt 3 of 3)"),
        (JobState.COMPLETED, 1, 3, 1, "COMPLETED (attempt 1 of 3)"),
        (JobState.CANCELLED, 1, 3, 1, "CANCELLED (attempt 1, not retried)"),
        # Taken over after its executor died: the same attempt, a second run (its evidence is "2/…").
        (JobState.COMPLETED, 1, 1, 2, "COMPLETED (attempt 1 of 1 · run 2)"),
    ],
)
def test_a_job_that_ended_before_its_last_attempt_does_not_promise_more(
    state: JobState, attempt: int, max_attempts: int, runs: int, said: str
) -> None:
    out = io.StringIO()
    error = JobError(message="expected 'Hi, Ada'", category=ErrorCategory.ASSERTION)
    job = Job(id="j1", state=state, attempt=attempt, max_attempts=max_attempts, runs=runs, error=error)
    render_result(job, out)
    assert out.getvalue().splitlines()[1] == f"Job j1 — {said}"


async def test_an_api_key_pasted_with_a_line_break_is_a_configuration_error_naming_the_variable(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTINEL_")}
    env |= {"SENTINEL_API": "127.0.0.1:9", "SENTINEL_API_KEY": "snt_first-half\nsecond-half"}
    done = await asyncio.to_thread(
        subprocess.run, [SENTINEL, "jobs"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("sentinel: configuration error: the API key (SENTINEL_API_KEY) holds")
    assert "second-half" not in done.stderr and "Traceback" not in done.stderr
