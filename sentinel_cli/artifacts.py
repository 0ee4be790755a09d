"""`sentinel artifacts` and `sentinel trace`: a job's failure evidence, downloaded from the API.

    sentinel artifacts JOB_ID [--out DIR]              every artifact, into DIR/<attempt>/<file>
    sentinel trace JOB_ID [--out DIR] [--attempt N]    the newest attempt's trace.zip (or attempt N's)

DIR is `./<job id>` unless given. Each file is streamed to a temporary name beside it and renamed
into place once complete and of the size the API announced, so an interrupted download never
leaves a file that looks whole, and no artifact is ever held in memory. A name from the API is
checked (`<attempt>/<file>`) before it becomes a path, so nothing is written outside DIR.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
import uuid
from pathlib import Path
from typing import Any

import grpc

from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from sentinel_cli.client import channel
from shared.artifacts import parse_name
from shared.errors import UnavailableError

COMMANDS = ("artifacts", "trace")
TRACE = "trace.zip"


def add_parsers(sub: Any) -> None:
    """Add the commands to the `sentinel` argument parser's subcommands."""
    everything = sub.add_parser("artifacts", help="download a job's artifacts (screenshots, trace, video)")
    everything.add_argument("job_id")
    everything.add_argument("--out", metavar="DIR", help="where to put them (default ./JOB_ID): DIR/<attempt>/<file>")
    trace = sub.add_parser("trace", help="download a job's Playwright trace and say how to open it")
    trace.add_argument("job_id")
    trace.add_argument("--out", metavar="DIR", help="where to put it (default ./JOB_ID): DIR/<attempt>/trace.zip")
    trace.add_argument("--attempt", type=int, metavar="N", help="that attempt's trace (default: the newest)")


def size_text(size: int) -> str:
    """`512 B`, `12.3 KiB`, `4.0 MiB`."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1024 * 1024):.1f} MiB"


async def download(stub: pb_grpc.TestExecutionStub, job_id: str, name: str, out: Path) -> tuple[Path, int]:
    """Stream artifact `name` to `out/<attempt>/<file>`; returns the path and its size.

    Raises:
        ValidationError: the API named the artifact in a form that cannot be a path under `out`.
        UnavailableError: the stream ended before the announced size.
    """
    attempt, file = parse_name(name)
    dest = out / str(attempt) / file
    await asyncio.to_thread(dest.parent.mkdir, parents=True, exist_ok=True)
    partial = dest.with_name(f".{file}.{uuid.uuid4().hex[:8]}.part")
    expected, written = -1, 0
    out_file = await asyncio.to_thread(partial.open, "wb")
    try:
        with out_file:
            async for chunk in stub.GetArtifact(pb.GetArtifactRequest(job_id=job_id, name=name), timeout=None):
                if expected < 0:
                    expected = chunk.size_bytes
                await asyncio.to_thread(out_file.write, chunk.data)
                written += len(chunk.data)
        if written != expected:
            raise UnavailableError(f"the download of {name} ended after {written} of {expected} bytes; try again")
        await asyncio.to_thread(os.replace, partial, dest)
    finally:
        await asyncio.to_thread(partial.unlink, missing_ok=True)
    return dest, written


async def download_all(stub: pb_grpc.TestExecutionStub, job_id: str, out: Path) -> int:
    """`sentinel artifacts`: every artifact of the job, each path printed with its size."""
    listing = await stub.ListArtifacts(pb.ListArtifactsRequest(job_id=job_id), timeout=30)
    if not listing.artifacts:
        print(f"job {job_id} has no artifacts")
        return 0
    total = 0
    for artifact in listing.artifacts:
        path, size = await download(stub, job_id, artifact.name, out)
        total += size
        print(f"{path}  {size_text(size)}", flush=True)
    print(f"{len(listing.artifacts)} artifact(s), {size_text(total)}, in {out}")
    return 0


async def download_trace(stub: pb_grpc.TestExecutionStub, job_id: str, out: Path, *, attempt: int | None) -> int:
    """`sentinel trace`: the newest attempt's trace (or `attempt`'s), and the command that opens it."""
    listing = await stub.ListArtifacts(pb.ListArtifactsRequest(job_id=job_id), timeout=30)
    traces = {a.attempt: a.name for a in listing.artifacts if a.name == f"{a.attempt}/{TRACE}"}
    if not traces or (attempt is not None and attempt not in traces):
        which = f" for attempt {attempt}" if attempt is not None else ""
        kept = f" (attempts with one: {', '.join(str(n) for n in sorted(traces))})" if traces else ""
        print(f"sentinel: job {job_id} has no trace{which}{kept}", file=sys.stderr)
        return 1
    name = traces[attempt if attempt is not None else max(traces)]
    path, size = await download(stub, job_id, name, out)
    print(f"{path}  {size_text(size)}")
    print(f"open it with:  playwright show-trace {shlex.quote(str(path))}")
    return 0


async def run(args: argparse.Namespace, address: str) -> int:
    """Run one of COMMANDS; exit code 1 when the job (or an artifact of it) is not found."""
    out = Path(args.out or args.job_id)
    async with channel(address) as ch:
        stub = pb_grpc.TestExecutionStub(ch)
        try:
            if args.command == "trace":
                return await download_trace(stub, args.job_id, out, attempt=args.attempt)
            return await download_all(stub, args.job_id, out)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
            print(f"sentinel: {exc.details()}", file=sys.stderr)
            return 1
