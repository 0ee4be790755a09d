"""`sentinel run --artifacts DIR`: the failing tests' evidence, downloaded when the run ends.

A job's screenshots and trace live in the artifact store only while the job is retained, and the
queue keeps few failed jobs by default (`QUEUE_REMOVE_ON_FAIL`): a CI run's evidence can be gone
minutes after the run. With `--artifacts DIR` the run's end downloads every artifact of every test
that failed or erred (`reports.outcome`: not the passed, not the skipped), and of every flaky one,
into `DIR/<job id>/<attempt>/<file>`,
the layout `sentinel artifacts JOB --out DIR/JOB` makes, so a CI job can keep DIR as its own artifact.

The JUnit report then names each file in its test's <system-out> as a `[[ATTACHMENT|path]]` line,
the form Jenkins' JUnit Attachments plugin and GitLab's unit test reports read (GitLab shows the
first, so the failure screenshot comes first: newest attempt first, its failure screenshot, its
other images, the rest), and the JSON report lists them as `artifactFiles`. The paths are written
relative to the working directory when DIR lies below it (given absolute or not), else as given:
a relative path below the checkout is what both servers resolve (Jenkins from the workspace, GitLab
from the project directory).

A test whose files cannot be downloaded (its job removed already, the store unreachable, a file
that cannot be written) is named on stderr with the reason; the others are still downloaded, and
the run's exit code is the run's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import TextIO

from sentinel_cli import artifacts, reports
from sentinel_cli.client import described, printable
from sentinel_client import Artifact, AsyncClient, SentinelError
from shared.screenshots import is_failure_shot

#: Tests whose files are downloaded at once (each test's files one after another).
PARALLEL_TESTS = 4
_WANTED = frozenset({reports.Outcome.FAILURE, reports.Outcome.ERROR})


def attachable(folder: Path) -> Path:
    """`folder` as the reports name it: relative to the working directory when it lies below it (the
    checkout, which Jenkins and GitLab resolve attachment paths from), else as given."""
    if folder.is_absolute():
        # Physical paths: a workspace reached through a link is still the working directory.
        with contextlib.suppress(ValueError):
            return Path(os.path.realpath(folder)).relative_to(os.path.realpath(Path.cwd()))
    return folder


def wanted(report: reports.RunReport) -> list[reports.TestReport]:
    """The tests whose evidence is downloaded: those that failed or erred, and the flaky ones (what
    their failed attempt kept)."""
    return [test for test in report.tests if reports.outcome(test) in _WANTED or test.flaky]


def attachment_order(artifact: Artifact) -> tuple[int, int, str]:
    """The newest attempt first; within it the failure screenshot, the other images, the rest."""
    file = PurePosixPath(artifact.name).name
    kind = 0 if is_failure_shot(file) else 1 if artifact.content_type.startswith("image/") else 2
    return (-artifact.attempt, kind, artifact.name)


async def download(
    client: AsyncClient,
    tests: Iterable[reports.TestReport],
    folder: Path,
    into: dict[str, tuple[str, ...]],
    *,
    err: TextIO = sys.stderr,
) -> None:
    """Every artifact of each test into `folder/<job id>/<attempt>/<file>`; `into` maps each job to its
    files, in `attachment_order`, as paths under `folder` as given, as each file is done (so an
    interrupted download still says what it got). A test whose files could not all be downloaded is
    named on `err` with the reason, and keeps the files that were."""
    gate = asyncio.Semaphore(PARALLEL_TESTS)

    async def one(test: reports.TestReport) -> None:
        into[test.job_id] = ()
        async with gate:
            try:
                listing = sorted(await client.artifacts(test.job_id), key=attachment_order)
                for artifact in listing:
                    path, _ = await artifacts.download(client, test.job_id, artifact, folder / test.job_id)
                    into[test.job_id] += (str(path),)
            except (SentinelError, OSError) as exc:
                why = described(exc) if isinstance(exc, SentinelError) else str(exc)
                print(
                    f"sentinel: the artifacts of test {printable(test.name)} (job {test.job_id}) could not all be"
                    f" downloaded: {why}",
                    file=err,
                )

    await asyncio.gather(*(one(test) for test in tests))
