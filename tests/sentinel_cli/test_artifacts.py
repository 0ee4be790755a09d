"""`sentinel artifacts` and `sentinel trace` against a real API server, redis-server and artifact store;
and the evidence `render_result` shows under each step."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
import redis.asyncio as aioredis

from sentinel_cli import artifacts as artifact_commands
from sentinel_cli import evidence, reports
from sentinel_cli.client import render_result
from sentinel_cli.main import _parser
from sentinel_client import (
    Artifact,
    AsyncClient,
    ErrorCategory,
    InvalidArgumentError,
    Job,
    JobError,
    JobResult,
    JobState,
    NotFoundError,
    StepResult,
)
from shared.artifact_store import CHUNK_SIZE, ArtifactStore
from shared.queue import Queue
from shared.settings import ArtifactSettings, QueueSettings
from tests.artifact_helpers import BACKENDS, finished_job, fresh_store, put_all, settings_for, start_api
from tests.support import RedisProcess

SENTINEL = str(Path(sys.executable).with_name("sentinel"))
UNKNOWN = "0b8f2a52-2d0c-4f7e-8d55-7c1d0c3e9a11"


@dataclass
class Api:
    address: str
    queue: Queue
    store: ArtifactStore


@pytest.fixture(params=BACKENDS)
async def api(
    request: pytest.FixtureRequest, redis_server: RedisProcess, redis_client: aioredis.Redis, tmp_path: Path
) -> AsyncIterator[Api]:
    settings: ArtifactSettings = settings_for(request, tmp_path)
    server = await start_api(redis_server, settings)
    try:
        queue = Queue.open(redis_client, QueueSettings())
        yield Api(address=f"127.0.0.1:{server.port}", queue=queue, store=await fresh_store(settings))
    finally:
        await server.stop(0)


async def sentinel(api: Api, *argv: str) -> int:
    return await artifact_commands.run(_parser().parse_args(list(argv)), api.address)


def files_below(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


async def test_artifacts_downloads_every_artifact_by_attempt(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = await finished_job(api.queue)
    files = {
        "1/step-02-failure.png": b"\x89PNG shot",
        "1/trace.zip": os.urandom(2 * CHUNK_SIZE + 7),
        "2/video.webm": b"webm",
        "2/empty.json": b"",
    }
    await put_all(api.store, job_id, files)
    out = tmp_path / "evidence"
    assert await sentinel(api, "artifacts", job_id, "--out", str(out)) == 0
    assert files_below(out) == files  # and no partial files left beside them
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"{out}/1/step-02-failure.png  9 B",
        f"{out}/1/trace.zip  2.0 MiB",
        f"{out}/2/empty.json  0 B",
        f"{out}/2/video.webm  4 B",
        f"4 artifact(s), 2.0 MiB, in {out}",
    ]


async def test_artifacts_go_to_a_folder_named_after_the_job_by_default(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = await finished_job(api.queue)
    await put_all(api.store, job_id, {"1/final.png": b"png"})
    monkeypatch.chdir(tmp_path)
    assert await sentinel(api, "artifacts", job_id) == 0
    assert files_below(tmp_path / job_id) == {"1/final.png": b"png"}
    assert capsys.readouterr().out.startswith(f"{job_id}/1/final.png  3 B\n")

    empty = await finished_job(api.queue)
    assert await sentinel(api, "artifacts", empty) == 0
    assert capsys.readouterr().out == f"job {empty} has no artifacts\n"


async def test_an_unknown_job_is_exit_1_with_a_message(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in ("artifacts", "trace"):
        assert await sentinel(api, command, UNKNOWN, "--out", str(tmp_path / "out")) == 1
        assert capsys.readouterr().err == f"sentinel: job '{UNKNOWN}' not found\n"
    assert not (tmp_path / "out").exists()


async def test_trace_takes_the_newest_attempt_or_the_one_asked(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = await finished_job(api.queue)
    await put_all(api.store, job_id, {"1/trace.zip": b"PK first", "2/trace.zip": b"PK second", "3/video.webm": b"v"})
    out = tmp_path / "t"
    assert await sentinel(api, "trace", job_id, "--out", str(out)) == 0
    assert files_below(out) == {"2/trace.zip": b"PK second"}
    assert capsys.readouterr().out.splitlines() == [
        f"{out}/2/trace.zip  9 B",
        f"open it with:  playwright show-trace {out}/2/trace.zip",
    ]
    assert await sentinel(api, "trace", job_id, "--out", str(out), "--attempt", "1") == 0
    assert (out / "1" / "trace.zip").read_bytes() == b"PK first"
    capsys.readouterr()
    assert await sentinel(api, "trace", job_id, "--attempt", "3") == 1
    assert capsys.readouterr().err == f"sentinel: job {job_id} has no trace for attempt 3 (attempts with one: 1, 2)\n"

    bare = await finished_job(api.queue)
    await put_all(api.store, bare, {"1/step-00-failure.png": b"png"})
    assert await sentinel(api, "trace", bare) == 1
    assert capsys.readouterr().err == f"sentinel: job {bare} has no trace\n"

    # The newest run kept a screenshot but no trace, or kept nothing at all: the older trace comes, and
    # says it is the older one.
    for newest in ({"2/step-00-failure.png": b"png"}, {}):
        capped = await finished_job(api.queue, runs=2)
        await put_all(api.store, capped, {"1/trace.zip": b"PK one", **newest})
        assert await sentinel(api, "trace", capped, "--out", str(tmp_path / "c")) == 0
        said = capsys.readouterr()
        assert said.err == (
            f"sentinel: the newest run (2) kept no trace (sentinel status {capped} says why); this is run 1's\n"
        )
        assert said.out.startswith(f"{tmp_path / 'c'}/1/trace.zip  6 B\n")


async def test_a_download_that_fails_leaves_no_file(api: Api, tmp_path: Path) -> None:
    job_id = await finished_job(api.queue)
    async with AsyncClient(api.address) as client:
        with pytest.raises(NotFoundError) as info:
            await artifact_commands.download(client, job_id, Artifact(name="1/gone.png"), tmp_path)
        assert info.value.code is grpc.StatusCode.NOT_FOUND
        assert files_below(tmp_path) == {}
        # A name that would climb out of the folder is refused before anything is asked or written.
        for name in ("../../x.png", "1/../../x.png", "/etc/x", "1/.hidden", "0/x.png"):
            with pytest.raises(InvalidArgumentError) as refused:
                await artifact_commands.download(client, job_id, Artifact(name=name), tmp_path / "out")
            assert [v.field for v in refused.value.violations] == ["name"]
        assert not (tmp_path / "out").exists()


async def test_the_console_script_runs_them(api: Api, tmp_path: Path) -> None:
    job_id = await finished_job(api.queue)
    await put_all(api.store, job_id, {"1/trace.zip": b"PK"})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTINEL_", "OTEL_"))}
    env["SENTINEL_API"] = api.address
    for argv, code, said in (
        (["trace", job_id], 0, f"playwright show-trace {job_id}/1/trace.zip"),
        (["artifacts", UNKNOWN], 1, f"job '{UNKNOWN}' not found"),
    ):
        process = await asyncio.create_subprocess_exec(
            SENTINEL, *argv, env=env, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode == code, err.decode()
        assert said in (out + err).decode()
    assert (tmp_path / job_id / "1" / "trace.zip").read_bytes() == b"PK"


async def test_a_runs_failing_tests_evidence_is_downloaded_newest_attempt_and_failure_screenshot_first(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = await finished_job(api.queue)
    files = {
        "1/step-01-failure.png": b"first failure",
        "1/trace.zip": b"PK 1",
        "2/checkout.png": b"a step's own",
        "2/trace.zip": b"PK 2",
        "2/step-03-failure.png": b"second failure",
        "2/data.json": b"{}",
    }
    await put_all(api.store, job_id, files)

    def test(name: str, job: str, state: str, category: str = "") -> reports.TestReport:
        return reports.TestReport(name, job, state, 10, 1, "t.json", category=category)

    failed, erred = test("checkout", job_id, "failed", "assertion"), test("gone \x1b[2J", UNKNOWN, "failed", "browser")
    run = reports.RunReport("r", "", datetime.now(UTC), 1, (test("ok", "j", "completed"), failed, erred))
    flaky = replace(test("flaky", "m", "completed", "assertion"), attempts=2, flaky=True)
    others = (test("cancelled", "k", "cancelled"), test("still", "l", "running"), flaky)
    run = replace(run, tests=(*run.tests, *others))
    # Failures, errors and what a flaky test's failed attempt kept; not the passed or the skipped.
    assert evidence.wanted(run) == [failed, erred, others[1], flaky]

    monkeypatch.chdir(tmp_path)
    # Named as Jenkins and GitLab resolve them: relative to the checkout when the folder is in it.
    assert evidence.attachable(tmp_path / "evidence") == Path("evidence")
    assert evidence.attachable(tmp_path.parent / "elsewhere") == tmp_path.parent / "elsewhere"
    err = io.StringIO()
    downloaded: dict[str, tuple[str, ...]] = {}
    async with AsyncClient(api.address) as client:
        await evidence.download(client, [failed, erred], Path("evidence"), downloaded, err=err)

    below = f"evidence/{job_id}"
    order = ["2/step-03-failure.png", "2/checkout.png", "2/data.json", "2/trace.zip", "1/step-01-failure.png"]
    assert downloaded == {job_id: tuple(f"{below}/{name}" for name in [*order, "1/trace.zip"]), UNKNOWN: ()}
    assert files_below(tmp_path / below) == files
    # The test that could not be downloaded is named, control characters as text; the others still are.
    assert err.getvalue() == (
        f"sentinel: the artifacts of test gone \\x1b[2J (job {UNKNOWN}) could not all be downloaded:"
        f" NOT_FOUND: job '{UNKNOWN}' not found\n"
    )


def test_the_result_shows_each_steps_evidence_and_how_to_fetch_it() -> None:
    job = Job(
        id="j1",
        state=JobState.FAILED,
        attempt=1,
        max_attempts=1,
        result=JobResult(
            steps=(
                StepResult(index=0, name="open", success=True, duration_ms=12),
                StepResult(
                    index=1,
                    name="buy",
                    duration_ms=30,
                    error="#buy not found",
                    artifacts=("1/step-01-failure.png",),
                    console_errors=("TypeError: x is undefined",),
                    failed_requests=("GET https://shop.test/api/cart 500",),
                ),
            ),
            artifacts=("1/step-01-failure.png", "1/trace.zip"),
            artifact_notes=("video not kept: over the 100 MiB cap",),
        ),
    )
    out = io.StringIO()
    render_result(job, out)
    assert out.getvalue().splitlines()[4:] == [
        "    2  buy   FAILED       30ms",
        "       ↳ #buy not found",
        "       ↳ artifact: 1/step-01-failure.png",
        "       ↳ console: TypeError: x is undefined",
        "       ↳ request: GET https://shop.test/api/cart 500",
        "  note: video not kept: over the 100 MiB cap",
        "  artifacts: sentinel artifacts j1",
        "  trace:     sentinel trace j1",
    ]
    out = io.StringIO()
    render_result(Job(id="j2", state=JobState.COMPLETED, result=JobResult(success=True)), out)
    assert "sentinel artifacts" not in out.getvalue()
    out = io.StringIO()
    render_result(Job(id="j3", state=JobState.CANCELLED, error=JobError(message="cancelled before it ran")), out)
    assert out.getvalue().splitlines()[1:] == [
        "Job j3 — CANCELLED (attempt 0 of 0)",
        "  ended: cancelled before it ran",
    ]


def test_a_job_that_passed_on_a_later_attempt_says_it_is_flaky() -> None:
    failed = JobError(category=ErrorCategory.ASSERTION, message="expected '#s' to contain 'good', got 'bad'")
    passed = JobResult(success=True)
    job = Job(id="j5", state=JobState.COMPLETED, attempt=2, max_attempts=3, error=failed, result=passed)
    assert job.flaky
    out = io.StringIO()
    render_result(job, out)
    said = "  flaky: passed on attempt 2; attempt 1 failed (assertion): expected '#s' to contain 'good', got 'bad'\n"
    assert said in out.getvalue()
    first_time = Job(id="j6", state=JobState.COMPLETED, attempt=1, max_attempts=3, result=JobResult(success=True))
    assert not first_time.flaky and not Job(id="j7", state=JobState.FAILED, attempt=2, error=failed).flaky


def test_a_request_steps_http_status_is_shown_in_the_step_table() -> None:
    steps = (
        StepResult(index=0, name="GET /health", success=True, duration_ms=12, http_status=200),
        StepResult(index=1, name="open", success=True, duration_ms=30),
    )
    out = io.StringIO()
    render_result(Job(id="j4", state=JobState.COMPLETED, result=JobResult(success=True, steps=steps)), out)
    assert out.getvalue().splitlines()[3:5] == [
        "    1  GET /health  ok           12ms  HTTP 200",
        "    2  open         ok           30ms",
    ]
