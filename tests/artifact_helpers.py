"""Artifacts for the tests of the API, retention and the CLI: a store per backend, finished jobs.

`BACKENDS` parametrize a fixture with `settings_for`: a fresh directory, or a fresh bucket on the
session's moto server (started only when an S3 case runs). Jobs are submitted and finished as the
executor would (`executor_service.store`), with a result naming their artifacts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from api_service.server import ApiServer
from executor_service.store import claim, finish, promote_due
from shared.artifact_store import ArtifactStore, open_store
from shared.artifacts import artifact_key, content_type_of
from shared.clock import now_ms
from shared.model import JobResult, JobState, Progress, StepResult
from shared.queue import Queue
from shared.settings import ApiSettings, ArtifactSettings, QueueSettings, RedisSettings, SecuritySettings
from tests.moto_s3 import MotoS3
from tests.queue_helpers import TENANT, submit_jobs
from tests.support import RedisProcess

BACKENDS = ("file", "s3")


def settings_for(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactSettings:
    """The settings of a fresh store of the backend `request.param` names."""
    if request.param == "file":
        return ArtifactSettings.from_env({"SENTINEL_ARTIFACTS_URL": (tmp_path / "artifacts").as_uri()})
    moto: MotoS3 = request.getfixturevalue("moto_s3")
    return ArtifactSettings.from_env(moto.env(f"s3://{moto.new_bucket()}/sentinel"))


async def start_api(
    redis_server: RedisProcess, artifacts: ArtifactSettings | None, security: SecuritySettings | None = None
) -> ApiServer:
    """An API server on 127.0.0.1, a free port, serving the artifacts of `artifacts` (None: no store)."""
    return await ApiServer.start(
        redis=RedisSettings(url=redis_server.url, configured=True),
        queue_settings=QueueSettings(),
        api=ApiSettings(host="127.0.0.1", port=0),
        security=security,
        artifacts=artifacts,
    )


async def fresh_store(settings: ArtifactSettings) -> ArtifactStore:
    store = open_store(settings)
    await store.check()
    return store


async def finished_job(
    queue: Queue,
    *,
    tenant: str = TENANT,
    steps: tuple[StepResult, ...] = (),
    artifacts: tuple[str, ...] = (),
    state: JobState = JobState.FAILED,
    runs: int = 1,
) -> str:
    """A job submitted, claimed and finished in `state` with a result of `steps` and `artifacts`,
    after `runs - 1` attempts that ended to be retried.

    Claims the next waiting job: call it while no other job waits.
    """
    await queue.ensure_groups()
    [job_id] = await submit_jobs(queue, 1, tenant=tenant)
    for _ in range(runs - 1):
        [retried] = (await claim(queue, consumer="test", worker_id="test", count=1)).claims
        assert await finish(queue, retried, state=JobState.SCHEDULED, progress=Progress(), due_ms=now_ms())
        assert await promote_due(queue) == 1
    batch = await claim(queue, consumer="test", worker_id="test", count=1)
    [run] = batch.claims
    assert run.job_id == job_id and run.job.runs == runs
    result = JobResult(
        success=state is JobState.COMPLETED,
        steps=steps,
        attempt=1,
        total_attempts=1,
        artifacts=artifacts,
        completed_at_ms=now_ms(),
    )
    progress = Progress(percentage=100, current_step=len(steps), total_steps=len(steps), message=state.value)
    assert await finish(queue, run, state=state, progress=progress, result=result)
    return job_id


async def put_all(store: ArtifactStore, job_id: str, files: dict[str, bytes]) -> None:
    """Store `files` (name → bytes) as the job's artifacts, each with its extension's content type."""
    for name, data in files.items():
        await store.put_bytes(artifact_key(job_id, name), data, content_type=content_type_of(name))
