"""`sentinel run --artifacts DIR`: the failing tests' evidence, downloaded as each test ends.

A job's screenshots and trace live in the artifact store only while the job is retained, and the
queue keeps few failed jobs by default (`QUEUE_REMOVE_ON_FAIL`, queue-wide): a run with many
failures, or other pipelines failing meanwhile, could see its first failures' evidence removed before
the run ended. So each test's files are downloaded the moment it ends failed or timed out, or passed
on a later attempt (`Downloads.ended`); at the run's end whatever else the reports count as failed,
erred (`reports.outcome`: not the passed, not the skipped) or flaky is downloaded too. Every artifact
goes into `DIR/<job id>/<attempt>/<file>`,
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
from sentinel_client import Artifact, AsyncClient, JobState, SentinelError
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


class Downloads:
    """Tests' artifacts, each test's into `folder/<job id>/<attempt>/<file>`; `into` maps each job to
    its files, in `attachment_order`, as paths under `folder` as given, as each file is done (so an
    interrupted download still says what it got). A test whose files could not all be downloaded is
    named on `err` with the reason, and keeps the files that were. Each test is downloaded once."""

    def __init__(
        self, client: AsyncClient, folder: Path, into: dict[str, tuple[str, ...]], *, err: TextIO = sys.stderr
    ) -> None:
        self._client, self._folder, self._into, self._err = client, folder, into, err
        self._gate = asyncio.Semaphore(PARALLEL_TESTS)
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def ended(self, job_id: str, name: str, *, state: JobState, attempt: int) -> None:
        """A test ended: its files are fetched now if it failed, timed out or passed on a later attempt
        (what the reports will want), before retention may remove its job."""
        if state in (JobState.FAILED, JobState.TIMEOUT) or (state is JobState.COMPLETED and attempt > 1):
            self._start(job_id, name)

    async def finish(self, tests: Iterable[reports.TestReport]) -> None:
        """Every file of `tests` (those not fetched yet now), and of every test fetched as it ended."""
        for test in tests:
            self._start(test.job_id, test.name)
        await asyncio.gather(*self._tasks.values())

    def _start(self, job_id: str, name: str) -> None:
        if job_id not in self._tasks:
            self._into[job_id] = ()
            self._tasks[job_id] = asyncio.create_task(self._one(job_id, name))

    async def _one(self, job_id: str, name: str) -> None:
        async with self._gate:
            try:
                listing = sorted(await self._client.artifacts(job_id), key=attachment_order)
                for artifact in listing:
                    path, _ = await artifacts.download(self._client, job_id, artifact, self._folder / job_id)
                    self._into[job_id] += (str(path),)
            except (SentinelError, OSError) as exc:
                why = described(exc) if isinstance(exc, SentinelError) else str(exc)
                print(
                    f"sentinel: the artifacts of test {printable(name)} (job {job_id}) could not all be"
                    f" downloaded: {why}",
                    file=self._err,
                )


async def download(
    client: AsyncClient,
    tests: Iterable[reports.TestReport],
    folder: Path,
    into: dict[str, tuple[str, ...]],
    *,
    err: TextIO = sys.stderr,
) -> None:
    """Every artifact of each of `tests` (`Downloads`)."""
    await Downloads(client, folder, into, err=err).finish(tests)
