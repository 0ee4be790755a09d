"""Operating Sentinel through real processes: pause/resume, stats and events from the CLI, both
services' /metrics, and job context on the executor's log lines."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import urllib.request

import grpc
import pytest
import redis as redis_py

from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from shared.taskdump import END_MARK
from tests.e2e import conftest as e2e_conftest
from tests.e2e.conftest import SENTINEL, Stack
from tests.e2e.helpers import request, wait_state
from tests.support import free_port, wait_for_blocking

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

STEPS = [{"navigate": {"url": "/index.html"}}, {"expectTitle": {"text": "E2E Home"}}]


def cli(stack: Stack, api_port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SENTINEL, *args],
        env=stack.env(SENTINEL_API=f"127.0.0.1:{api_port}"),
        capture_output=True,
        text=True,
        timeout=60,
    )


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        return str(reply.read().decode())


async def test_pause_resume_stats_events_metrics_and_job_logs(stack: Stack) -> None:
    api_metrics, executor_metrics = free_port(), free_port()
    api = stack.start("api", API_METRICS_PORT=str(api_metrics))
    executor = stack.start("executor", EXECUTOR_METRICS_PORT=str(executor_metrics))
    # From the start of the event stream (cursor 0-0), so it cannot miss what happens before it connects.
    events = await asyncio.create_subprocess_exec(
        SENTINEL,
        *("events", "--tag", "ops", "--state", "pending", "--state", "completed", "--cursor", "0-0", "--limit", "2"),
        env=stack.env(SENTINEL_API=f"127.0.0.1:{api.port}"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        paused = await asyncio.to_thread(cli, stack, api.port, "pause")
        assert paused.returncode == 0 and "paused" in paused.stdout
        async with grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel:
            stub = pb_grpc.TestExecutionStub(channel)
            reply = await stub.Submit(request(stack.site, STEPS, tags=["ops"]), timeout=10)
            await asyncio.sleep(1.0)  # an executor that ignored the pause would have claimed it by now
            assert (await stub.Status(pb.StatusRequest(job_id=reply.job_id), timeout=10)).state == pb.JOB_STATE_PENDING
            stats = await asyncio.to_thread(cli, stack, api.port, "stats")
            assert stats.returncode == 1 and "PAUSED  health DEGRADED" in stats.stdout, stats.stdout
            assert "  medium          1       0" in stats.stdout

            assert (await asyncio.to_thread(cli, stack, api.port, "resume")).returncode == 0
            await wait_state(stub, reply.job_id, pb.JOB_STATE_COMPLETED, within=60)

        stats = await asyncio.to_thread(cli, stack, api.port, "stats")
        assert stats.returncode == 0 and "running  health HEALTHY" in stats.stdout
        assert "  medium          0       0        0          1       0          0     0          1 " in stats.stdout
        assert "processed 1 (0 failed, 0 cancelled)" in stats.stdout
        raw_out, raw_err = await asyncio.wait_for(events.communicate(), timeout=30)
        out, err = raw_out.decode(), raw_err.decode()
        lines = out.splitlines()
        assert [line.split()[1:4] for line in lines] == [
            ["waiting", "pending", reply.job_id],
            ["completed", "completed", reply.job_id],
        ], (out, err)
    finally:
        if events.returncode is None:
            events.kill()
            await events.wait()

    api_text = await asyncio.to_thread(scrape, api_metrics)
    assert 'sentinel_queue_jobs_finished_total{outcome="completed",queue="default"} 1.0' in api_text
    assert 'sentinel_rpc_requests_total{code="OK",method="Pause",service="sentinel.v1.QueueAdmin"} 1.0' in api_text
    executor_text = await asyncio.to_thread(scrape, executor_metrics)
    assert 'sentinel_executor_jobs_total{lane="medium",outcome="completed"} 1.0' in executor_text
    log = executor.log.read_text()
    claimed = next(line for line in log.splitlines() if reply.job_id in line and "claimed" in line)
    assert f"[job={reply.job_id} tenant=default attempt=1" in claimed


def test_after_a_failed_test_each_service_logs_what_its_tasks_await_before_it_stops(stack: Stack) -> None:
    executor = stack.start("executor")
    # SERVING comes before the claim loop's first claim is done: wait until it is parked on the lanes
    # (the only client so far that blocks in XREAD), or the dump may catch it mid-claim.
    with redis_py.Redis(port=stack.redis.port, decode_responses=True) as client:
        wait_for_blocking(
            lambda: any(c["cmd"] == "xread" and "b" in c["flags"] for c in client.client_list()),
            within=30,
            what="the executor's claim loop to block on the lanes",
        )
    api = stack.start("api")
    codes = stack.stop_services(failed=True)
    assert codes == [0, 0]
    executor_log, api_log = executor.log.read_text(), api.log.read_text()
    for log in (executor_log, api_log):
        assert log.count(END_MARK) == 1 and "asyncio tasks (" in log
    # An idle executor's claim loop is parked in its blocking read of the lanes, down to redis-py.
    claim_loop = executor_log.split("task 'claim-loop'", 1)[1].split("\ntask ", 1)[0]
    assert "in Worker._claim_loop" in claim_loop and "in wait_for_entries" in claim_loop, claim_loop
    assert "task 'health-watch'" in api_log


def test_a_service_whose_port_was_taken_meanwhile_starts_on_another(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The harness picks a free port, and the service binds it a moment later; in between another
    # process can take it. That start is made again on another port, and only the one that runs
    # is left to stop.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = int(held.getsockname()[1])
        picks = iter([taken])
        monkeypatch.setattr(e2e_conftest, "free_port", lambda: next(picks, 0) or free_port())
        api = stack.start("api")
    assert api.port != taken
    assert [s.name for s in stack.services] == ["api"]


async def test_with_json_logs_every_line_an_executor_writes_is_json_through_a_job(stack: Stack) -> None:
    """Chromium, its driver and ffmpeg are started while gRPC's threads run; gRPC's fork handlers
    wrote a raw C-core line to stderr each time, which a log shipper reading JSON lines rejects."""
    api = stack.start("api")
    port = free_port()
    log = stack.directory / "executor-json.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            SENTINEL,
            "--log-format",
            "json",
            "executor",
            env=stack.env(EXECUTOR_GRPC_PORT=str(port), EXECUTOR_GRPC_HOST="127.0.0.1"),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel:
            stub = pb_grpc.TestExecutionStub(channel)
            reply = await stub.Submit(request(stack.site, STEPS), timeout=10)
            await wait_state(stub, reply.job_id, pb.JOB_STATE_COMPLETED, within=60)
    finally:
        process.terminate()
        assert await asyncio.wait_for(process.wait(), timeout=30) == 0
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert lines and not [line for line in lines if not line.startswith("{")], log.read_text()
    assert all(json.loads(line) for line in lines)
