"""Building requests and following jobs in the end-to-end tests."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import grpc
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from tests.support import wait_for


def request(site: str, steps: list[Any], *, name: str = "e2e", **options: Any) -> pb.SubmitRequest:
    """A SubmitRequest from proto3-JSON steps, with `site` as the base URL."""
    body = {"definition": {"name": name, "baseUrl": site, "steps": steps}, "options": options}
    return json_format.ParseDict(body, pb.SubmitRequest())


async def events_of(
    stub: pb_grpc.TestExecutionStub, job_id: str, *, cursor: str = "", within: float = 60
) -> list[pb.ProgressEvent]:
    """Every progress event after `cursor` up to and including the terminal one."""

    async def collect() -> list[pb.ProgressEvent]:
        out = []
        async for event in stub.StreamProgress(pb.StreamProgressRequest(job_id=job_id, cursor=cursor)):
            out.append(event)
        return out

    return await asyncio.wait_for(collect(), timeout=within)


async def run_to_end(
    stub: pb_grpc.TestExecutionStub, req: pb.SubmitRequest, *, within: float = 60
) -> tuple[pb.Job, list[pb.ProgressEvent]]:
    reply = await stub.Submit(req, timeout=10)
    events = await events_of(stub, reply.job_id, within=within)
    job = await stub.Status(pb.StatusRequest(job_id=reply.job_id), timeout=10)
    return job, events


async def wait_state(stub: pb_grpc.TestExecutionStub, job_id: str, state: int, *, within: float = 30) -> pb.Job:
    """The job once its Status says `state`; the failure names the state it was last seen in."""
    seen: list[pb.Job] = []

    async def reached() -> pb.Job | None:
        job = await stub.Status(pb.StatusRequest(job_id=job_id), timeout=10)
        seen[:] = [job]
        return job if job.state == state else None

    def what() -> str:
        last = pb.JobState.Name(seen[0].state) if seen else "not seen yet"
        return f"job {job_id} to be {pb.JobState.Name(state)} (last seen: {last})"

    return await wait_for(reached, within=within, what=what)


async def health_becomes(port: int, status: int, *, within: float) -> None:
    """Wait until a service's grpc.health.v1 reports `status`."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)

        async def check() -> bool:
            return bool((await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)).status == status)

        await wait_for(check, within=within, what=f"health {status} on port {port}")


#: The ping a witness page sends (`stays_quiet`), told apart from the pages under test by its query.
WITNESS = "ping.txt?witness"


def pings(seen: Sequence[str]) -> int:
    """Pings of the pages under test (`ping.html` sends one every 100 ms), not the witness's."""
    return sum("ping.txt" in p and WITNESS not in p for p in seen)


async def stays_quiet(seen: Sequence[str], site: str, stub: pb_grpc.TestExecutionStub, quiet: int, what: str) -> None:
    """The ended jobs' pages send no ping past `quiet` while a live page in the same browser (a
    witness job) sends six: a loaded machine slows both alike, so no fixed wait is needed."""
    steps = [{"navigate": {"url": "/ping.html?witness"}}, {"wait": {"ms": 60000}}]
    witness = await stub.Submit(request(site, steps), timeout=10)
    await wait_for(lambda: sum(WITNESS in p for p in seen) >= 6, within=30, what="the witness page pinging")
    # One ping the page sent just before its context closed may reach the server's log after `quiet`
    # was read (a loaded machine: its handler thread ran late); a page still running sends one per
    # 100 ms, about six while the witness sends its six.
    late = pings(seen) - quiet
    assert late <= 1, f"{what}: {late} pings after it ended"
    await stub.Cancel(pb.CancelRequest(job_id=witness.job_id), timeout=10)
