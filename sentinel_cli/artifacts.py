"""`sentinel artifacts` and `sentinel trace`: a job's failure evidence, downloaded from the API.

    sentinel artifacts JOB_ID [--out DIR]              every artifact, into DIR/<attempt>/<file>
    sentinel trace JOB_ID [--out DIR] [--attempt N]    the newest attempt's trace.zip (or attempt N's)

DIR is `./<job id>` unless given; it is made when missing, and is checked before anything is asked
of the API, so a DIR that is a file (or below one) is a usage error naming `--out`. The SDK streams
each file to a temporary name beside it and renames it into place once complete and of the size the
API announced, so an interrupted download never leaves a file that looks whole, and no artifact is
ever held in memory. A name from the API is checked (`<attempt>/<file>`) before it becomes a path,
so nothing is written outside DIR.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from sentinel_cli.arguments import folder_problem, positive
from sentinel_cli.client import open_client
from sentinel_client import Artifact, AsyncClient, NotFoundError
from shared.errors import FieldViolation, ValidationError

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
    trace.add_argument(
        "--attempt", type=positive, metavar="N", help="that attempt's trace, 1 or more (default: the newest)"
    )


def size_text(size: int) -> str:
    """`512 B`, `12.3 KiB`, `4.0 MiB`."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1024 * 1024):.1f} MiB"


async def download(client: AsyncClient, job_id: str, artifact: Artifact, out: Path) -> tuple[Path, int]:
    """Stream `artifact` to `out/<attempt>/<file>`; returns the path and its size.

    Raises:
        InvalidArgumentError: the API named the artifact in a form that cannot be a path under `out`.
        UnavailableError: the stream kept ending before the announced size.
    """
    path = await client.download_artifact(job_id, artifact.name, artifact.path_in(out))
    return path, path.stat().st_size


async def download_all(client: AsyncClient, job_id: str, out: Path) -> int:
    """`sentinel artifacts`: every artifact of the job, each path printed with its size."""
    listing = await client.artifacts(job_id)
    if not listing:
        print(f"job {job_id} has no artifacts")
        return 0
    total = 0
    for artifact in listing:
        path, size = await download(client, job_id, artifact, out)
        total += size
        print(f"{path}  {size_text(size)}", flush=True)
    print(f"{len(listing)} artifact(s), {size_text(total)}, in {out}")
    return 0


async def download_trace(client: AsyncClient, job_id: str, out: Path, *, attempt: int | None) -> int:
    """`sentinel trace`: the newest attempt's trace (or `attempt`'s), and the command that opens it."""
    listing = await client.artifacts(job_id)
    traces = {a.attempt: a for a in listing if a.name == f"{a.attempt}/{TRACE}"}
    if not traces or (attempt is not None and attempt not in traces):
        which = f" for attempt {attempt}" if attempt is not None else ""
        kept = f" (attempts with one: {', '.join(str(n) for n in sorted(traces))})" if traces else ""
        print(f"sentinel: job {job_id} has no trace{which}{kept}", file=sys.stderr)
        return 1
    chosen = attempt if attempt is not None else max(traces)
    # The job's runs, not its files: a newest run that kept nothing (a store outage) has none to list.
    newest = (await client.get(job_id)).runs if attempt is None else chosen
    if newest > chosen:  # the newest run's trace was not kept (a size cap, a store outage, a passing run)
        print(
            f"sentinel: the newest run ({newest}) kept no trace (sentinel status {job_id} says why);"
            f" this is run {chosen}'s",
            file=sys.stderr,
        )
    path, size = await download(client, job_id, traces[chosen], out)
    print(f"{path}  {size_text(size)}")
    print(f"open it with:  playwright show-trace {shlex.quote(str(path))}")
    return 0


def out_folder(given: str | None, job_id: str) -> Path:
    """The folder to download into: `--out`, else `./<job id>`.

    Raises:
        ValidationError: field `--out`, when files cannot be written below it (it is a file, say).
    """
    out = Path(given or job_id)
    problem = folder_problem(out)
    if problem:
        default = "" if given else " (the default --out: the job's id)"
        raise ValidationError([FieldViolation("--out", f"{str(out)!r}{default} {problem}")])
    return out


async def run(args: argparse.Namespace, address: str | None) -> int:
    """Run one of COMMANDS; exit code 1 when the job (or an artifact of it) is not found.

    Raises:
        ValidationError: `--out` names no folder files can be written in (before any call).
    """
    out = out_folder(args.out, args.job_id)
    async with open_client(address) as client:
        try:
            if args.command == "trace":
                return await download_trace(client, args.job_id, out, attempt=args.attempt)
            return await download_all(client, args.job_id, out)
        except NotFoundError as exc:
            print(f"sentinel: {exc.message}", file=sys.stderr)
            return 1
