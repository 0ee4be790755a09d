"""A job's artifacts as its owner sees them: names, listing and streamed reads over the store.

An artifact's public **name** is `<attempt>/<file>` (`1/step-04-failure.png`, `2/trace.zip`); its
key in the artifact store is `<job id>/<name>` (`artifact_key`). Every read first proves the job
exists and is the caller's tenant's through the API's jobs backend (`JobLookup`: the queue's
`shared.jobs.get_job`, the API's memory for direct jobs, both in hybrid mode), so one tenant can
neither read nor learn of another's artifacts, whatever the execution mode. A name comes from the
caller and is checked here before it is joined into a key: no `..`, no leading `/`, exactly an
attempt number and one file segment.

Reads stream: `open_artifact` hands out the store's chunk iterator and never holds the object.
No grpc here; the API's servicer converts these values at its edge.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Protocol

from shared.artifact_store import DEFAULT_CONTENT_TYPE, ArtifactInfo, ArtifactStore, check_key
from shared.errors import ArtifactStoreUnavailable, FieldViolation, NotFoundError, ValidationError
from shared.model import Job

#: Content types of the files Sentinel makes, the same on every machine (mimetypes reads the
#: system's tables, which may lack some of them); anything else is guessed by `mimetypes`.
CONTENT_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".zip": "application/zip",
    ".webm": "video/webm",
    ".json": "application/json",
    ".txt": "text/plain",
    ".html": "text/html",
}
#: A failure screenshot's file name starts with the 0-based index of its step: `step-04-failure.png`.
_STEP_PREFIX = re.compile(r"step-(\d{1,6})-")


class JobLookup(Protocol):
    """Where a job is found for its tenant: any jobs backend (`shared.direct.backend`)."""

    async def get_job(self, job_id: str, *, tenant: str | None) -> Job:
        """The job; NotFoundError when there is none, or it is another tenant's."""
        ...


@dataclass(frozen=True)
class Artifact:
    """One stored artifact of a job."""

    name: str  # "<attempt>/<file>"
    attempt: int
    size: int
    content_type: str
    step_index: int  # the step that made it; -1 for the whole run (trace, video, final screenshot)
    created_at_ms: int


@dataclass(frozen=True)
class OpenArtifact:
    """An artifact's metadata and its bytes, to be streamed once.

    Close `chunks` (`contextlib.aclosing`) when stopping early, to free the store's connection.
    """

    artifact: Artifact
    chunks: AsyncGenerator[bytes, None]  # each at most 1 MiB; NotFoundError if it vanished meanwhile


def _invalid(name: str, problem: str) -> ValidationError:
    return ValidationError([FieldViolation("name", f"{problem}, got {name!r}")])


def parse_name(name: str) -> tuple[int, str]:
    """The attempt and file of an artifact name `<attempt>/<file>`.

    Raises:
        ValidationError: naming the field `name`, for anything else (`..`, a leading `/`, more or
            fewer segments, an attempt that is not a positive integer, a file the store refuses).
    """
    if ".." in name:
        raise _invalid(name, "must not contain '..'")
    if name.startswith("/"):
        raise _invalid(name, "must be relative (no leading '/')")
    check_key(name, field="name")
    attempt, _, file = name.partition("/")
    if not file or "/" in file:
        raise _invalid(name, "must be <attempt>/<file>, e.g. 1/trace.zip")
    if not attempt.isdecimal() or not attempt.isascii() or attempt.startswith("0"):
        raise _invalid(name, "must start with the attempt, a positive integer")
    return int(attempt), file


def artifact_key(job_id: str, name: str) -> str:
    """The store key of job `job_id`'s artifact `name` (checked as `parse_name` does)."""
    parse_name(name)
    if not job_id or "/" in job_id:
        raise ValidationError([FieldViolation("job_id", f"must be a job id, got {job_id!r}")])
    return check_key(f"{job_id}/{name}", field="name")


def content_type_of(name: str) -> str:
    """The content type of a file by its extension (`application/octet-stream` when unknown)."""
    suffix = PurePosixPath(name).suffix.lower()
    return CONTENT_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or DEFAULT_CONTENT_TYPE


def step_index_of(job: Job, name: str) -> int:
    """The step that made artifact `name`: the step of the job's last result that lists it, else the
    `step-NN-` prefix of its file name, else -1 (an artifact of the whole run)."""
    if job.result is not None:
        for step in job.result.steps:
            if name in step.artifacts:
                return step.index
    match = _STEP_PREFIX.match(name.partition("/")[2])
    return int(match.group(1)) if match else -1


def _require(store: ArtifactStore | None) -> ArtifactStore:
    if store is None:
        raise ArtifactStoreUnavailable("this API has no artifact store configured")
    return store


def _artifact(job: Job, info: ArtifactInfo, name: str, attempt: int) -> Artifact:
    content_type = info.content_type
    if not content_type or content_type == DEFAULT_CONTENT_TYPE:
        content_type = content_type_of(name)
    return Artifact(
        name=name,
        attempt=attempt,
        size=info.size,
        content_type=content_type,
        step_index=step_index_of(job, name),
        created_at_ms=int(info.last_modified.timestamp() * 1000),
    )


async def list_artifacts(
    jobs: JobLookup, store: ArtifactStore | None, job_id: str, *, tenant: str | None
) -> Sequence[Artifact]:
    """Every artifact of the job, all attempts, sorted by attempt then name.

    Objects under the job's prefix that are not `<attempt>/<file>` are not artifacts and are left out.

    Raises:
        NotFoundError: no such job, or another tenant's.
        ArtifactStoreUnavailable: no store, or it cannot be reached.
    """
    job = await jobs.get_job(job_id, tenant=tenant)
    prefix = f"{job.job_id}/"
    found: list[Artifact] = []
    for info in await _require(store).list(job.job_id):
        name = info.key.removeprefix(prefix)
        try:
            attempt, _ = parse_name(name)
        except ValidationError:
            continue
        found.append(_artifact(job, info, name, attempt))
    return sorted(found, key=lambda a: (a.attempt, a.name))


async def open_artifact(
    jobs: JobLookup, store: ArtifactStore | None, job_id: str, name: str, *, tenant: str | None
) -> OpenArtifact:
    """The artifact `name` of the job: its metadata, and its bytes as a stream of chunks.

    Raises:
        ValidationError: a malformed name (checked before anything is looked up).
        NotFoundError: no such job (or another tenant's), or no such artifact.
        ArtifactStoreUnavailable: no store, or it cannot be reached.
    """
    attempt, _ = parse_name(name)
    job = await jobs.get_job(job_id, tenant=tenant)
    store = _require(store)
    key = artifact_key(job.job_id, name)
    try:
        info = await store.stat(key)
    except NotFoundError:
        raise NotFoundError(f"job {job.job_id!r} has no artifact {name!r}") from None
    return OpenArtifact(artifact=_artifact(job, info, name, attempt), chunks=store.read(key))
