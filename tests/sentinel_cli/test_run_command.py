"""`sentinel run` as a user runs it, where no browser is needed: the real console script against a
real API server (port 0) and redis-server with no executor, so the run's tests wait for as long as a
test needs. Bad files are named by their paths, report paths are checked before anything runs, and
Ctrl-C leaves the run going with the reports written and the command that cancels it. (A run through
Chromium to its end is tests/e2e/test_sentinel_run.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from junitparser import JUnitXml, Skipped

from sentinel_cli import run_command
from sentinel_cli.client import Interrupted
from sentinel_client import (
    AsyncClient,
    ErrorCategory,
    JobError,
    JobState,
    Run,
    RunState,
    RunTest,
    RunTestSource,
    UnavailableError,
)
from sentinel_client._async import AsyncRunHandle
from sentinel_client._requests import run_request
from shared.errors import ValidationError
from tests.sentinel_cli.test_client import SENTINEL, WAITS, interrupted, sentinel, write
from tests.sentinel_cli.test_client import api as api
from tests.support import closed_port

pytestmark = pytest.mark.timeout(60)

RECORDING = Path(__file__).parent / "recordings" / "unsupported.json"
#: The last line after the problems of a run that was not submitted.
NOT_SENT = "sentinel: nothing was submitted; fix these and run again"


async def test_every_problem_of_every_file_is_named_by_its_file(api: str, tmp_path: Path) -> None:
    good = write(tmp_path / "a-good.json", {"name": "good", "steps": WAITS})
    server_refuses = write(tmp_path / "b-empty.json", {"name": "empty", "steps": [{"waitFor": {"selector": ""}}]})

    code, _, err = await sentinel(api, "run", good, server_refuses)

    assert code == 2
    said = f"sentinel: INVALID_ARGUMENT: {server_refuses}: definition.steps[0].waitFor.selector: must not be empty"
    assert err.splitlines() == [said, NOT_SENT]  # the API's refusal ends as the local problems do

    local = write(tmp_path / "c-local.json", {"name": "local", "viewport": {"width": -1}, "steps": WAITS})
    code, out, err = await sentinel(api, "run", good, local, str(RECORDING), server_refuses)
    assert code == 2 and out == ""  # nothing was submitted
    lines = err.splitlines()
    # Found by the SDK before any call, and said as the API's refusals are: with INVALID_ARGUMENT.
    assert lines[0] == f"sentinel: INVALID_ARGUMENT: {local}: definition.viewport.width: Value out of range: -1"
    unsupported = [line for line in lines if line.startswith(f"sentinel: {RECORDING}: steps[")]
    assert len(unsupported) == 17 and "(and" not in err  # every step Sentinel cannot run, as import lists them
    assert lines[-3] == f"sentinel: `sentinel import {RECORDING} --skip-unsupported` leaves these steps out"
    assert lines[-2] == said  # the API checked the files read here, in the same go, and submitted nothing
    assert lines[-1] == NOT_SENT
    async with AsyncClient(api) as client:
        assert [job async for job in client.jobs()] == []


async def test_dry_run_checks_every_file_here_and_on_the_api_and_submits_nothing(api: str, tmp_path: Path) -> None:
    good = write(tmp_path / "a-good.json", {"name": "good", "steps": WAITS})
    also = write(tmp_path / "b-also.json", {"name": "also", "steps": WAITS})
    code, out, err = await sentinel(api, "run", "--dry-run", str(tmp_path), "--parallel", "1")
    assert (code, err) == (0, "")
    assert out == "2 test(s) checked here and by the API: all valid; nothing was submitted\n"

    server_refuses = write(tmp_path / "c-empty.json", {"name": "empty", "steps": [{"waitFor": {"selector": ""}}]})
    code, out, err = await sentinel(api, "run", "--dry-run", good, also, server_refuses, "--parallel", "5000")
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        "sentinel: INVALID_ARGUMENT: maxParallel: at most 1000, got 5000",
        f"sentinel: INVALID_ARGUMENT: {server_refuses}: definition.steps[0].waitFor.selector: must not be empty",
        NOT_SENT,
    ]
    async with AsyncClient(api) as client:
        assert [job async for job in client.jobs()] == []


async def test_a_rerun_in_the_same_folder_does_not_read_its_own_last_outputs_as_tests(api: str, tmp_path: Path) -> None:
    write(tmp_path / "a-good.json", {"name": "good", "steps": WAITS})
    (tmp_path / "report.json").write_text(json.dumps({"schemaVersion": 1, "tests": []}), encoding="utf-8")
    (tmp_path / "evidence" / "job" / "1").mkdir(parents=True)
    write(tmp_path / "evidence" / "job" / "1" / "data.json", {"downloaded": "by the last run"})
    own = ("--json", str(tmp_path / "report.json"), "--artifacts", str(tmp_path / "evidence"))
    code, out, err = await sentinel(api, "run", "--dry-run", str(tmp_path), *own)
    assert (code, err) == (0, "")
    assert out.startswith("1 test(s) checked")  # a-good.json only


async def test_a_report_path_that_cannot_be_written_is_refused_before_the_run(tmp_path: Path) -> None:
    test = write(tmp_path / "t.json", {"name": "t", "steps": WAITS})
    (tmp_path / "file").write_text("", encoding="utf-8")
    nowhere = f"127.0.0.1:{closed_port()}"  # were the run submitted, this would say UNAVAILABLE
    with pytest.raises(ValidationError) as refused:
        await run_command.run_suite(
            nowhere,
            [test],
            junit=str(tmp_path),
            json_report=str(tmp_path / "file" / "report.json"),
            artifacts=str(tmp_path / "file"),
        )
    assert [(v.field, v.description) for v in refused.value.violations] == [
        ("--junit", f"{str(tmp_path)!r} is a directory; name the file to write in it"),
        (
            "--json",
            f"{str(tmp_path / 'file' / 'report.json')!r} cannot be made: {str(tmp_path / 'file')!r} is not a directory",
        ),
        ("--artifacts", f"{str(tmp_path / 'file')!r} is not a directory"),
    ]
    code, _, err = await sentinel(nowhere, "run", test, "--junit", str(tmp_path))
    assert code == 2 and err.startswith("sentinel: --junit: ") and "UNAVAILABLE" not in err

    # The artifacts' folder may be neither a report's file nor a folder the tests are in.
    report = str(tmp_path / "out" / "junit.xml")
    (tmp_path / "nested").mkdir()
    inner = write(tmp_path / "nested" / "inner.json", {"name": "inner", "steps": WAITS})
    hides = "which it would hide; give the artifacts a folder of their own"
    for paths, artifacts, said in (
        ([test], report, "is the --junit report's file too; give the artifacts a folder of their own"),
        ([test], str(tmp_path), f"holds the test {test!r}, {hides}"),
        ([str(tmp_path)], str(tmp_path / "nested"), f"holds the test {inner!r}, {hides}"),  # inside a folder given
        ([str(tmp_path / "**" / "*.json")], str(tmp_path / "nested"), f"holds the test {inner!r}, {hides}"),  # a glob's
    ):
        with pytest.raises(ValidationError) as refused:
            await run_command.run_suite(nowhere, paths, junit=report, artifacts=artifacts)
        [violation] = refused.value.violations
        assert (violation.field, violation.description) == ("--artifacts", f"{artifacts!r} {said}")


async def test_ctrl_c_leaves_the_run_going_writes_the_reports_and_names_the_cancel_command(
    api: str, tmp_path: Path
) -> None:
    tests = [write(tmp_path / f"t{i}.json", {"name": f"t{i}", "steps": WAITS}) for i in range(2)]
    junit, report = tmp_path / "out" / "junit.xml", tmp_path / "out" / "report.json"

    code, out, err = await interrupted(
        api, "run", *tests, "--junit", str(junit), "--json", str(report), ready=r"run \S+: 2 test"
    )

    run_id = out.split()[1].rstrip(":")
    assert code == 130
    assert err == f"sentinel: interrupted; run {run_id} goes on (sentinel cancel {run_id} stops it)\n"
    assert f"report: {junit}" in out and f"report: {report}" in out
    [suite] = list(JUnitXml.fromfile(str(junit)))
    assert suite.tests == 2 and all(isinstance(case.result[0], Skipped) for case in suite)  # never ran
    document = json.loads(report.read_text(encoding="utf-8"))
    assert document["runId"] == run_id and [t["outcome"] for t in document["tests"]] == ["skipped", "skipped"]

    code, out, _ = await sentinel(api, "cancel", run_id)
    assert code == 0 and out.startswith(f"run {run_id}  CANCELLED")
    async with AsyncClient(api) as client:
        assert (await client.get_run(run_id)).state is RunState.CANCELLED


async def test_sigterm_as_a_cancelled_ci_job_sends_it_is_taken_as_ctrl_c_with_its_own_exit_code(
    api: str, tmp_path: Path
) -> None:
    test = write(tmp_path / "t.json", {"name": "t", "steps": WAITS})
    junit = tmp_path / "junit.xml"
    code, out, err = await interrupted(
        api, "run", test, "--junit", str(junit), ready=r"run \S+: 1 test", sig=signal.SIGTERM
    )
    run_id = out.split()[1].rstrip(":")
    assert code == 143  # 128 + SIGTERM, as a shell reports a command the signal ended
    assert err == f"sentinel: terminated (SIGTERM); run {run_id} goes on (sentinel cancel {run_id} stops it)\n"
    [suite] = list(JUnitXml.fromfile(str(junit)))
    [case] = list(suite)
    assert suite.tests == 1 and isinstance(case.result[0], Skipped)  # written as the run stood


async def test_a_reader_that_goes_away_still_gets_the_run_its_reports(api: str, tmp_path: Path) -> None:
    """`sentinel run … --json r.json | head -1`: the pipe's end does not drop the reports asked for; the
    run is followed to its end without a word, the reports written, then exit 141 as for any pipe."""
    test = write(tmp_path / "t.json", {"name": "t", "steps": WAITS})
    report = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTINEL_", "OTEL_"))} | {"SENTINEL_API": api}
    process = subprocess.Popen([SENTINEL, "run", test, "--json", str(report)], env=env, stdout=subprocess.PIPE)  # noqa: ASYNC220 (a pipe whose end this test closes, as `head` does)
    try:
        assert process.stdout is not None
        first = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), timeout=30)
        run_id = first.decode().split()[1].rstrip(":")
        process.stdout.close()  # `head -1` has its line and leaves
        async with AsyncClient(api) as client:
            await client.cancel_run(run_id)  # the run ends (no executor here); its events meet the closed pipe
        code = await asyncio.to_thread(process.wait, 60)
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 141
    document = json.loads(report.read_text(encoding="utf-8"))
    assert document["runId"] == run_id and [t["outcome"] for t in document["tests"]] == ["skipped"]


async def test_each_testcase_has_its_own_tags_and_a_classname_of_its_own(api: str, tmp_path: Path) -> None:
    """A test's JUnit `tags` are its job's (the file's own and the run's, each once), and two files
    named login.json in different folders are told apart (a.login, b.login)."""
    own = {"definition": {"name": "tagged", "steps": WAITS}, "options": {"tags": ["smoke", "ci"]}}
    tagged = write(_folder(tmp_path / "checks" / "a") / "login.json", own)
    plain = write(_folder(tmp_path / "checks" / "b") / "login.json", {"name": "plain", "steps": WAITS})
    junit, report = tmp_path / "junit.xml", tmp_path / "report.json"

    code, _, _ = await interrupted(
        api,
        "run",
        tagged,
        plain,
        "--tag",
        "ci",
        "--tag",
        "nightly",
        "--junit",
        str(junit),
        "--json",
        str(report),
        ready=r"run \S+: 2 test",
    )

    assert code == 130
    cases = {case.get("name"): case for case in ET.parse(junit).iter("testcase")}
    tags = {name: _properties(case)["tags"] for name, case in cases.items()}
    assert tags == {"tagged": "smoke,ci,nightly", "plain": "ci,nightly"}
    assert {name: case.get("classname") for name, case in cases.items()} == {"tagged": "a.login", "plain": "b.login"}
    document = json.loads(report.read_text(encoding="utf-8"))
    async with AsyncClient(api) as client:  # as the run submitted them: each job's own tags
        for test in document["tests"]:
            job = await client.get(test["jobId"])
            assert test["tags"] == list(job.tags) == tags[test["name"]].split(",")


async def test_tests_of_two_files_that_share_a_name_show_as_two(api: str, tmp_path: Path) -> None:
    """Told apart as their JUnit classnames are: by each file's path below their common folder."""
    first = write(_folder(tmp_path / "checks" / "a") / "login.json", {"name": "log in", "steps": WAITS})
    second = write(_folder(tmp_path / "checks" / "b") / "login.json", {"name": "log in", "steps": WAITS})

    code, out, _ = await interrupted(api, "run", first, second, ready=r"(?s)\nlog in .*\nlog in ")

    assert code == 130
    rows = {line.split("  ")[0].rstrip() for line in out.splitlines() if line.startswith("log in")}
    assert rows == {"log in (a/login.json)", "log in (b/login.json)"}  # each test's progress, as it came


def test_each_file_is_read_once_and_the_sdk_reads_none_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = [
        write(tmp_path / "plain.json", {"name": "plain", "steps": WAITS}),
        write(tmp_path / "own.json", {"definition": {"name": "own", "steps": WAITS}, "options": {"tags": ["smoke"]}}),
        str(Path(__file__).parent / "recordings" / "checkout.json"),
    ]
    reads: Counter[str] = Counter()
    read_text = Path.read_text

    def counted(path: Path, *args: Any, **kwargs: Any) -> str:
        reads[str(path)] += 1
        return read_text(path, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counted)
    loaded = [run_command._load(Path(file)) for file in files]
    request = run_request(loaded, name="suite", max_parallel=0, options={})

    assert reads == dict.fromkeys(files, 1)
    assert [t.file for t in request.tests] == files  # each named by its file, for the reports
    assert [list(t.options.tags) for t in request.tests] == [[], ["smoke"], []]


def test_a_reports_tags_are_the_ones_the_api_gave_each_test() -> None:
    tests = (RunTest(job_id="j1", name="t", tags=("smoke", "ci")), RunTest(job_id="j2", name="u"))
    report = run_command.to_report(Run(id="r1", name="", state=RunState.RUNNING, tests=tests))
    assert [t.tags for t in report.tests] == [("smoke", "ci"), ()]


def test_a_passed_test_carries_a_failed_attempts_error_only_when_it_is_flaky() -> None:
    failed = JobError(message="expected 'Hi, Ada'", category=ErrorCategory.ASSERTION)
    tests = (
        RunTest(job_id="j1", name="flaky", state=JobState.COMPLETED, attempt=2, error=failed),
        RunTest(job_id="j2", name="rerun", state=JobState.COMPLETED, attempt=1, error=failed),  # an earlier run's
        RunTest(job_id="j3", name="failed", state=JobState.FAILED, attempt=1, error=failed),
    )
    report = run_command.to_report(Run(id="r1", name="", state=RunState.FAILED, tests=tests))
    said = [(t.flaky, t.category, t.message) for t in report.tests]
    assert said == [(True, "assertion", failed.message), (False, "", ""), (False, "assertion", failed.message)]


async def test_ctrl_c_while_the_files_are_read_submits_nothing_and_says_so(
    api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tests = [write(tmp_path / f"t{i}.json", {"name": f"t{i}", "steps": WAITS}) for i in range(2)]
    load = run_command._load

    def load_then_ctrl_c(file: Path) -> RunTestSource:
        current = asyncio.current_task()
        assert current is not None
        current.cancel()  # what asyncio.run does to the command on SIGINT, while it reads a file
        return load(file)

    monkeypatch.setattr(run_command, "_load", load_then_ctrl_c)
    out = io.StringIO()
    command = asyncio.create_task(run_command.run_suite(api, tests, out=out))
    with pytest.raises(Interrupted) as stopped:
        await command

    assert str(stopped.value) == "interrupted before the run was submitted; nothing was sent to the API"
    assert out.getvalue() == ""
    async with AsyncClient(api) as client:
        assert [job async for job in client.jobs()] == []


async def test_ctrl_c_while_the_submit_is_unanswered_says_the_run_may_have_been_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_command, "INTERRUPT_GRACE", 0.5)
    test = write(tmp_path / "t.json", {"name": "t", "steps": WAITS})
    async with _proxy(None) as (address, sent, _):  # takes the submit, never answers
        command = asyncio.create_task(run_command.run_suite(address, [test], tags=["ci"], out=io.StringIO()))
        await asyncio.wait_for(sent.wait(), timeout=10)
        command.cancel()  # Ctrl-C
        with pytest.raises(Interrupted) as stopped:
            await command

    assert str(stopped.value) == (
        "interrupted while submitting the run (no answer in 0.5 s): it may or may not have been made; if it was,"
        " it goes on and its tests are among the newest jobs (sentinel jobs --tag ci; sentinel cancel <job-id>"
        " stops one)"
    )


async def test_ctrl_c_while_the_submit_is_on_its_way_names_the_run_it_made(api: str, tmp_path: Path) -> None:
    """The submit is not dropped half-way: its answer is awaited, and the run named as after any Ctrl-C."""
    test = write(tmp_path / "t.json", {"name": "t", "steps": WAITS})
    junit = tmp_path / "junit.xml"
    async with _proxy(api) as (address, sent, release):  # holds the submit until released
        out = io.StringIO()
        command = asyncio.create_task(run_command.run_suite(address, [test], junit=str(junit), out=out))
        await asyncio.wait_for(sent.wait(), timeout=10)
        command.cancel()  # Ctrl-C
        await asyncio.sleep(0)
        release.set()
        with pytest.raises(Interrupted) as stopped:
            await command

    run_id = out.getvalue().split()[1].rstrip(":")
    assert str(stopped.value) == f"interrupted; run {run_id} goes on (sentinel cancel {run_id} stops it)"
    assert out.getvalue() == f"run {run_id}: 1 test(s)\n  report: {junit}\n"
    async with AsyncClient(api) as client:
        assert [t.name for t in (await client.get_run(run_id)).tests] == ["t"]


def _folder(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def _properties(case: ET.Element) -> dict[str, str]:
    return {p.get("name", ""): p.get("value", "") for p in case.iter("property")}


@contextlib.asynccontextmanager
async def _proxy(target: str | None) -> AsyncIterator[tuple[str, asyncio.Event, asyncio.Event]]:
    """A TCP proxy to `target` (None: nowhere, a peer that never answers) on a free port: its address,
    an event set once the client has sent something, and one that lets what it sent through."""
    sent, release = asyncio.Event(), asyncio.Event()
    tasks: list[asyncio.Task[Any]] = []
    writers: list[asyncio.StreamWriter] = []

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter | None, *, gated: bool) -> None:
        while data := await reader.read(65536):
            sent.set()
            if gated:
                await release.wait()
            if writer is not None:
                writer.write(data)
                await writer.drain()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        if target is None:
            await pipe(reader, None, gated=False)
            return
        host, port = target.rsplit(":", 1)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        writers.append(up_writer)
        await asyncio.gather(pipe(reader, up_writer, gated=True), pipe(up_reader, writer, gated=False))

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.append(task)
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            await serve(reader, writer)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}", sent, release
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for writer in writers:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        await server.wait_closed()


async def test_an_api_lost_for_longer_than_the_sdk_rides_out_still_leaves_the_reports(
    api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CI server gets a JUnit file as the run last stood (a test not started yet is skipped), and
    the exit code says the infrastructure failed (2), not a test."""
    test = write(tmp_path / "t.json", {"name": "t", "steps": WAITS})
    junit = tmp_path / "junit.xml"

    async def lost(self: AsyncRunHandle) -> AsyncIterator[Any]:
        raise UnavailableError("the API did not answer")
        yield  # pragma: no cover - an async generator

    monkeypatch.setattr(AsyncRunHandle, "events", lost)
    code = await run_command.run_suite(api, [test], junit=str(junit), out=io.StringIO())

    assert code == 2
    err = capsys.readouterr().err
    assert "lost the API while following run" in err and f"reports written as the run stood then: {junit}" in err
    [suite] = list(JUnitXml.fromfile(str(junit)))
    [case] = list(suite)
    assert suite.tests == 1 and isinstance(case.result[0], Skipped)


async def test_a_cancelled_ci_job_cancels_its_run_when_asked(api: str, tmp_path: Path) -> None:
    """`--cancel-on-interrupt`: GitLab's cancel or Jenkins' abort (SIGTERM) stops the tests too, so a
    cancelled pipeline leaves no executor busy with it."""
    test = write(tmp_path / "t.json", {"name": "t", "steps": WAITS})
    junit = tmp_path / "junit.xml"
    code, out, err = await interrupted(
        api, "run", test, "--junit", str(junit), "--cancel-on-interrupt", ready=r"run \S+: 1 test", sig=signal.SIGTERM
    )
    run_id = out.split()[1].rstrip(":")
    assert code == 143
    assert err == f"sentinel: terminated (SIGTERM); run {run_id} cancelled\n"
    async with AsyncClient(api) as client:
        assert (await client.get_run(run_id)).state is RunState.CANCELLED
    [suite] = list(JUnitXml.fromfile(str(junit)))
    assert suite.tests == 1 and isinstance(next(iter(suite)).result[0], Skipped)


def test_the_summary_counts_flaky_tests_as_the_readme_shows() -> None:
    failed = JobError(message="expected 'Hi, Ada'", category=ErrorCategory.ASSERTION)
    tests = (
        RunTest(job_id="j1", name="flaky", state=JobState.COMPLETED, attempt=2, error=failed),
        RunTest(job_id="j2", name="steady", state=JobState.COMPLETED, attempt=1),
        RunTest(job_id="j3", name="broken", state=JobState.FAILED, attempt=1, error=failed),
    )
    out = io.StringIO()
    run_command.render_summary(Run(id="r1", name="", state=RunState.FAILED, tests=tests), out)
    assert out.getvalue().splitlines()[1] == "Run r1 — FAILED (2 passed (1 flaky), 1 failed)"
