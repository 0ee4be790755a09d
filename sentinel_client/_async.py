"""`AsyncClient`: the asyncio twin. Every call is an `_ops` description run over a `grpc.aio` channel.

Keep it the mirror of `_sync.Client` (same method names, arguments and results); logic that is
not about awaiting belongs in `_ops`, `_convert`, `_retry` or `_base`, where both use it. Files
are read and written in a thread, so neither a submit from a file nor a download blocks the loop.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, Unpack

import grpc

from sentinel_client import _alerts as alert_ops
from sentinel_client import _ops as ops
from sentinel_client import _schedules as schedule_ops
from sentinel_client._base import ClientBase, HandleBase, Unseen, Waiting, warn_partial
from sentinel_client._files import PartialFile
from sentinel_client._loop_channel import LoopChannel
from sentinel_client._requests import SubmitOptions, check_keywords, run_request, submit_request
from sentinel_client._retry import Retrying
from sentinel_client._schedules import ScheduleFields
from sentinel_client._sources import RunTestSource, TestSource
from sentinel_client.errors import DeadlineExceededError, UnavailableError
from sentinel_client.models import (
    AlertRule,
    Artifact,
    DeadLetter,
    Delivery,
    ErrorCategory,
    Job,
    JobState,
    Page,
    Priority,
    ProgressEvent,
    QueueEvent,
    QueueHealth,
    QueueState,
    QueueStats,
    Run,
    Schedule,
)

T = TypeVar("T")


class AsyncClient(ClientBase[LoopChannel]):
    """An asyncio client of a Sentinel API (see `ClientBase` for the options). Close it, or `async with`.

    It may be made outside any event loop (at import time, say): its channel is opened by its first
    call, in that call's loop, and opened again in a new loop once that one has been closed (a second
    `asyncio.run`). Used from two open loops at once, it raises ConfigError: make one per loop.
    """

    def _open_channel(self) -> LoopChannel:
        return LoopChannel(self._conn.aio_opener(), repr(self))

    async def _aio_channel(self) -> grpc.aio.Channel:
        return await self._live_channel().get()

    async def aclose(self) -> None:
        """Close the client and its channel (calls still on it are cancelled); later calls raise ConfigError."""
        self._closed = True
        await self._channel.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # --- jobs -------------------------------------------------------------------------------------

    async def submit(self, test: TestSource, **options: Unpack[SubmitOptions]) -> AsyncJobHandle:
        """Submit a test: a definition dict (or a SubmitRequest-shaped one), or a JSON file's path.

        Retried on UNAVAILABLE under its idempotency key, so it makes one job however often it is sent.
        Raises InvalidArgumentError for a bad test, naming the field (`definition.steps[2].wait.ms`),
        or `file` for a file that cannot be read (missing, a folder: with the OS's reason).
        """
        request = await asyncio.to_thread(submit_request, test, options)
        job_id, duplicate = await self._call(ops.submit(request))
        return AsyncJobHandle(self, job_id, duplicate=duplicate)

    def job(self, job_id: str) -> AsyncJobHandle:
        """A handle on an existing job (no call is made)."""
        return AsyncJobHandle(self, job_id)

    async def get(self, job_id: str) -> Job:
        """The job as it stands now. Raises NotFoundError for a job that is not there (or is another tenant's)."""
        return await self._call(ops.status(job_id))

    async def cancel(self, job_id: str) -> Job:
        """Cancel a waiting or running job; a finished one raises FailedPreconditionError."""
        return await self._call(ops.cancel(job_id))

    async def retry(self, job_id: str, *, priority: Priority | str | None = None) -> Job:
        """Run a failed, timed-out or cancelled job again (in its own lane unless `priority` says)."""
        return await self._call(ops.retry(job_id, priority))

    def events(self, job_id: str, *, cursor: str = "") -> AsyncGenerator[ProgressEvent, None]:
        """The job's progress events from `cursor` ("" = the start), live, until its terminal event.

        Reopened after the last event's cursor when the stream drops: nothing missed, nothing repeated.
        """
        return self._stream(ops.progress(job_id, cursor))

    # `timeout` as in the blocking twin (ASYNC109): the SDK's two clients take the same arguments.
    async def wait(self, job_id: str, timeout: float | None = None) -> Job:  # noqa: ASYNC109
        """The job once it has ended. Raises WaitTimeout when `timeout` seconds pass first."""
        waiting = Waiting(job_id, timeout)
        try:
            async for event in self._stream(ops.progress(job_id, ""), deadline=waiting.deadline):
                waiting.saw(event)
        except DeadlineExceededError as exc:
            timed_out = waiting.expired()
            if timed_out is None:
                raise
            raise timed_out from exc
        return await self.get(job_id)

    # --- runs -----------------------------------------------------------------------------------

    async def submit_run(
        self,
        tests: Iterable[RunTestSource] | str | os.PathLike[str],
        *,
        name: str = "",
        max_parallel: int = 0,
        **options: Unpack[SubmitOptions],
    ) -> AsyncRunHandle:
        """Submit tests as one run (files, definitions, or either paired with the file name to show for
        it); `options` apply to every test. A folder or a glob, in the list or alone (`"tests/"`), stands
        for its definition files as `sentinel run` takes them: every `*.json` below a folder, sorted.

        `max_parallel`: most of the run's tests waiting or running at once (0: no limit). Retried
        on UNAVAILABLE under the run's idempotency key, so it makes one run however often it is sent.
        Raises InvalidArgumentError for a bad test, named `tests[i]` (counting the tests sent: a
        folder's files one each): a field of it, a file that cannot be read, a folder with no tests.
        """
        check_keywords(options, SubmitOptions, also=("name", "max_parallel"))
        request = await asyncio.to_thread(run_request, tests, name=name, max_parallel=max_parallel, options=options)
        run_id, job_ids, duplicate = await self._call(ops.submit_run(request))
        return AsyncRunHandle(self, run_id, job_ids=job_ids, duplicate=duplicate)

    async def validate_run(
        self,
        tests: Iterable[RunTestSource] | str | os.PathLike[str],
        *,
        name: str = "",
        max_parallel: int = 0,
        **options: Unpack[SubmitOptions],
    ) -> None:
        """Check a run as `submit_run` would, here and on the API (every test, the options, whether
        its secrets can be sealed), and submit nothing. Returns None when `submit_run` with the same
        arguments would be accepted; raises InvalidArgumentError naming every problem otherwise.
        """
        check_keywords(options, SubmitOptions, also=("name", "max_parallel"))
        request = await asyncio.to_thread(run_request, tests, name=name, max_parallel=max_parallel, options=options)
        await self._call(ops.validate_run(request))

    def run(self, run_id: str) -> AsyncRunHandle:
        """A handle on an existing run (no call is made)."""
        return AsyncRunHandle(self, run_id)

    async def get_run(self, run_id: str) -> Run:
        """The run as it stands now: its state, counts and every test. Raises NotFoundError for an unknown run."""
        return await self._call(ops.get_run(run_id))

    async def cancel_run(self, run_id: str) -> Run:
        """Cancel every test of the run that has not ended; a finished run raises FailedPreconditionError."""
        return await self._call(ops.cancel_run(run_id))

    async def run_events(self, run_id: str) -> AsyncGenerator[ProgressEvent | Run, None]:
        """Every test's progress events, then (last) the finished run; a dropped stream is reopened
        and what it repeats is dropped."""
        unseen = Unseen()
        async for item in self._stream(ops.stream_run(run_id)):
            if unseen(item):
                yield item

    async def wait_run(self, run_id: str, timeout: float | None = None) -> Run:  # noqa: ASYNC109
        """The run once every test has ended. Raises WaitTimeout when `timeout` seconds pass first."""
        waiting = Waiting(run_id, timeout, kind="run")
        try:
            async for item in self._stream(ops.stream_run(run_id), deadline=waiting.deadline):
                if isinstance(item, Run):
                    return item
                waiting.saw(item)
        except DeadlineExceededError as exc:
            timed_out = waiting.expired()
            if timed_out is None:
                raise
            raise timed_out from exc
        return await self.get_run(run_id)

    def jobs(
        self, *, state: JobState | str | None = None, tag: str = "", schedule_id: str = "", page_size: int = 100
    ) -> AsyncGenerator[Job, None]:
        """The tenant's jobs, newest first, fetched a page at a time as you iterate."""
        return self._pages(lambda token: ops.list_jobs(state, tag, page_size, token, schedule_id))

    async def list_jobs(
        self,
        *,
        state: JobState | str | None = None,
        tag: str = "",
        schedule_id: str = "",
        page_size: int = 0,
        page_token: str = "",
    ) -> Page[Job]:
        """One page of jobs (page_size 0: the API's default, 50); `schedule_id`: only the jobs it fired."""
        return await self._call(ops.list_jobs(state, tag, page_size, page_token, schedule_id))

    # --- artifacts --------------------------------------------------------------------------------

    async def artifacts(self, job_id: str) -> list[Artifact]:
        """The job's stored artifacts (screenshots, the trace, a video): name, size, content type, and the
        run and step that made each. Raises NotFoundError for an unknown job, UnavailableError when the
        artifact store cannot be reached."""
        return await self._call(ops.list_artifacts(job_id))

    async def download_artifact(self, job_id: str, name: str, path: str | os.PathLike[str]) -> Path:
        """Stream artifact `name` ("1/trace.zip") into the file `path`, or into the directory `path`
        under its own file name (`path/trace.zip`); returns the file's path.

        Written to a temporary name beside it and renamed when complete; started over on UNAVAILABLE.
        Raises NotFoundError for an unknown job or artifact; an OSError (naming the path) when the
        file cannot be written.
        """
        op = ops.get_artifact(job_id, name)
        chunks = op.bind(await self._aio_channel())
        part = PartialFile(path, name)

        async def attempt(_: Retrying) -> Path:
            await asyncio.to_thread(part.start)
            call = chunks(op.request(""), metadata=self._conn.metadata)
            try:
                async for chunk in call:
                    await asyncio.to_thread(part.write, chunk.data, chunk.size_bytes)
            finally:
                call.cancel()
            return await asyncio.to_thread(part.commit)

        try:
            return await self._retried(True, attempt)
        finally:
            await asyncio.to_thread(part.discard)

    async def download_artifacts(self, job_id: str, directory: str | os.PathLike[str]) -> list[Path]:
        """Every artifact of the job into `directory/<attempt>/<file>`; returns the paths."""
        return [
            await self.download_artifact(job_id, a.name, a.path_in(directory)) for a in await self.artifacts(job_id)
        ]

    # --- queue administration ---------------------------------------------------------------------

    async def stats(self, queue: str = "") -> QueueStats:
        """The queue's figures, lane by lane (only the tenant's jobs when the API checks keys); `queue`
        "": the default queue."""
        return await self._call(ops.stats(queue))

    async def health(self, queue: str = "") -> QueueHealth:
        """The queue's health: HEALTHY, DEGRADED (paused, or stalled) or UNHEALTHY, with the reasons and
        its figures."""
        return await self._call(ops.health(queue))

    async def pause(self, queue: str = "") -> QueueState:
        """Stop claiming jobs until `resume` (running ones finish; submits are still taken); returns the
        queue's state. Needs the admin role (else PermissionDeniedError)."""
        return await self._call(ops.pause(queue))

    async def resume(self, queue: str = "") -> QueueState:
        """Claim jobs again after `pause`; returns the queue's state. Needs the admin role (else
        PermissionDeniedError)."""
        return await self._call(ops.resume(queue))

    def dead_letters(
        self, *, category: ErrorCategory | str | None = None, tag: str = "", page_size: int = 100
    ) -> AsyncGenerator[DeadLetter, None]:
        """The jobs that ran out of attempts, newest first, fetched a page at a time as you iterate;
        only those of `category` and `tag` when given. Needs the admin role (else PermissionDeniedError)."""
        return self._pages(lambda token: ops.list_dead_letters(category, tag, page_size, token))

    async def requeue_dead_letter(self, job_id: str, *, priority: Priority | str | None = None) -> Job:
        """Run a dead-lettered job again, attempts reset, in the low lane unless `priority` says;
        returns the job. Raises NotFoundError when it is no dead letter. Not retried on UNAVAILABLE.
        Needs the admin role (else PermissionDeniedError)."""
        return await self._call(ops.requeue_dead_letter(job_id, priority))

    async def purge_dead_letters(self, *, older_than_ms: int = 0) -> int:
        """Drop the dead letters older than `older_than_ms` (0: all); returns how many. Their jobs
        stay until retention removes them. Not retried on UNAVAILABLE. Needs the admin role (else
        PermissionDeniedError)."""
        return await self._call(ops.purge_dead_letters(older_than_ms))

    async def clean(self, *, state: JobState | str | None = None, older_than_ms: int = 0, limit: int = 0) -> int:
        """Remove finished jobs older than `older_than_ms`, of `state` (None: every finished state), at
        most `limit` (0: no limit), with their artifacts; returns how many. Raises InvalidArgumentError
        for a state that is not a finished one. Not retried on UNAVAILABLE. Needs the admin role (else
        PermissionDeniedError)."""
        return await self._call(ops.clean(state, older_than_ms, limit))

    def watch_events(
        self, *, states: Sequence[JobState | str] = (), kinds: Sequence[str] = (), tag: str = "", cursor: str = ""
    ) -> AsyncGenerator[QueueEvent, None]:
        """Queue events as they happen (from after `cursor`; "" = only new ones), resumed after a drop;
        only `kinds` (e.g. "active", "completed": `QueueEvent.kind`), `states` and `tag` when given."""
        return self._stream(ops.watch_events(states, kinds, tag, cursor))

    # --- schedules --------------------------------------------------------------------------------

    async def create_schedule(
        self, test: TestSource, *, options: SubmitOptions | None = None, **fields: Unpack[ScheduleFields]
    ) -> Schedule:
        """Schedule a test (a definition or SubmitRequest, dict or file): `cron=` or `interval_ms=`,
        and the other `ScheduleFields`; `options` (priority, tags, ...) apply to the test. Without
        `name=`, a file's schedule is named after the file (`login` for `tests/login.json`)."""
        return await self._call(schedule_ops.create(test, fields, options=options))

    async def get_schedule(self, schedule_id: str) -> Schedule:
        """The schedule with its next fire times and latest runs."""
        return await self._call(schedule_ops.get(schedule_id))

    async def list_schedules(self, *, page_size: int = 0, page_token: str = "") -> Page[Schedule]:
        """One page of the tenant's schedules, newest first (page_size 0: the API's default, 50)."""
        return await self._call(schedule_ops.list_page(page_size, page_token))

    def schedules(self, *, page_size: int = 100) -> AsyncGenerator[Schedule, None]:
        """The tenant's schedules, newest first, fetched a page at a time as you iterate."""
        return self._pages(lambda token: schedule_ops.list_page(page_size, token))

    async def update_schedule(
        self,
        schedule_id: str,
        *,
        test: TestSource | None = None,
        options: SubmitOptions | None = None,
        **fields: Unpack[ScheduleFields],
    ) -> Schedule:
        """Change only the fields given (and the template, with `test`); a new timing counts from now."""
        return await self._call(schedule_ops.update(schedule_id, fields, test=test, options=options))

    async def delete_schedule(self, schedule_id: str) -> bool:
        """Delete it; the jobs it fired stay (`list_jobs(schedule_id=...)` still finds them)."""
        return await self._call(schedule_ops.delete(schedule_id))

    async def pause_schedule(self, schedule_id: str, *, note: str = "") -> Schedule:
        """Stop firing the schedule until `resume_schedule` (`note` says why); returns it."""
        return await self._call(schedule_ops.pause(schedule_id, note))

    async def resume_schedule(self, schedule_id: str, *, note: str = "") -> Schedule:
        """Fire again from now on (fires that fell while it was paused do not run)."""
        return await self._call(schedule_ops.resume(schedule_id, note))

    async def trigger_schedule(self, schedule_id: str) -> Job:
        """Run the schedule's test once now; the job counts as its latest run."""
        return await self._call(schedule_ops.trigger(schedule_id))

    # --- alerts -----------------------------------------------------------------------------------

    async def create_alert_rule(self, tag: str, notifications: Sequence[Mapping[str, Any]]) -> AlertRule:
        """Alert on every job tagged `tag`: each notification a dict `{"url": ..., "events": [...],
        "secret": ...}` (events default to failed and recovered; the secret signs each delivery)."""
        return await self._call(alert_ops.create_rule(tag, notifications))

    async def list_alert_rules(self, *, page_size: int = 0, page_token: str = "") -> Page[AlertRule]:
        """One page of the tenant's alert rules, newest first (page_size 0: the API's default, 50)."""
        return await self._call(alert_ops.list_rules(page_size, page_token))

    def alert_rules(self, *, page_size: int = 100) -> AsyncGenerator[AlertRule, None]:
        """The tenant's alert rules, newest first, fetched a page at a time as you iterate."""
        return self._pages(lambda token: alert_ops.list_rules(page_size, token))

    async def delete_alert_rule(self, rule_id: str) -> bool:
        """Delete it; deliveries already made are kept (and still sent)."""
        return await self._call(alert_ops.delete_rule(rule_id))

    async def list_deliveries(
        self,
        *,
        schedule_id: str = "",
        rule_id: str = "",
        job_id: str = "",
        page_size: int = 0,
        page_token: str = "",
    ) -> Page[Delivery]:
        """One page of webhook deliveries, newest first, only those of the schedule, rule and job given."""
        return await self._call(
            alert_ops.list_deliveries(
                schedule_id=schedule_id, rule_id=rule_id, job_id=job_id, page_size=page_size, page_token=page_token
            )
        )

    def deliveries(
        self, *, schedule_id: str = "", rule_id: str = "", job_id: str = "", page_size: int = 100
    ) -> AsyncGenerator[Delivery, None]:
        """Webhook deliveries (filtered as `list_deliveries`), fetched a page at a time as you iterate."""
        return self._pages(
            lambda token: alert_ops.list_deliveries(
                schedule_id=schedule_id, rule_id=rule_id, job_id=job_id, page_size=page_size, page_token=token
            )
        )

    # --- the machinery ----------------------------------------------------------------------------

    async def _call(self, op: ops.Unary[T]) -> T:
        call = op.bind(await self._aio_channel())

        async def attempt(retrying: Retrying) -> T:
            timeout = retrying.timeout(self._conn.timeout)
            return op.convert(await call(op.request, timeout=timeout, metadata=self._conn.metadata))

        return await self._retried(op.safe, attempt)

    async def _retried(self, safe: bool, attempt: Callable[[Retrying], Awaitable[T]]) -> T:
        retrying = Retrying(self._conn.retries, safe=safe)
        while True:
            try:
                return await attempt(retrying)
            except (grpc.RpcError, UnavailableError) as exc:
                pause = retrying.failed(exc)
            await asyncio.sleep(pause)

    async def _stream(self, op: ops.Stream[T], *, deadline: float | None = None) -> AsyncGenerator[T, None]:
        open_stream = op.bind(await self._aio_channel())
        retrying = Retrying(self._conn.stream_retries, safe=True, deadline=deadline, stream=True)
        cursor = op.cursor
        while True:
            call = open_stream(op.request(cursor), timeout=retrying.timeout(None), metadata=self._conn.metadata)
            try:
                async for reply in call:
                    item = op.convert(reply)
                    cursor = op.cursor_of(item) or cursor
                    retrying.progressed()
                    yield item
                    if op.last(item):
                        return
                return
            except grpc.RpcError as exc:
                pause = retrying.failed(exc)
            finally:
                call.cancel()
            await asyncio.sleep(pause)

    async def _pages(self, page: Callable[[str], ops.Unary[Page[T]]]) -> AsyncGenerator[T, None]:
        token = ""
        warned = False
        while True:
            got = await self._call(page(token))
            warned = warn_partial(got, warned)
            for item in got.items:
                yield item
            token = got.next_page_token
            if not token:
                return


class AsyncJobHandle(HandleBase[AsyncClient]):
    """A submitted (or named) job: `.id`, and the calls about it."""

    async def refresh(self) -> Job:
        """The job as it stands now (`AsyncClient.get`). Raises NotFoundError for a job that is not there."""
        return await self._client.get(self.id)

    def events(self, *, cursor: str = "") -> AsyncGenerator[ProgressEvent, None]:
        """The job's progress events from `cursor` ("" = the start), live, until its terminal one
        (`AsyncClient.events`); reopened after a dropped stream. Raises NotFoundError for a job that is not there."""
        return self._client.events(self.id, cursor=cursor)

    async def wait(self, timeout: float | None = None) -> Job:  # noqa: ASYNC109
        """The job once it has ended (`AsyncClient.wait`). Raises WaitTimeout (also a TimeoutError) when
        `timeout` seconds pass first (None: no limit)."""
        return await self._client.wait(self.id, timeout)

    async def cancel(self) -> Job:
        """Cancel the job while it waits or runs (`AsyncClient.cancel`); returns it. Raises
        FailedPreconditionError once it has ended."""
        return await self._client.cancel(self.id)

    async def retry(self, *, priority: Priority | str | None = None) -> Job:
        """Run the job again after it failed, timed out or was cancelled, attempts reset, in its own lane
        unless `priority` says (`AsyncClient.retry`); returns it. Raises FailedPreconditionError while it
        waits or runs. Not retried on UNAVAILABLE."""
        return await self._client.retry(self.id, priority=priority)

    async def artifacts(self) -> list[Artifact]:
        """The job's stored artifacts (`AsyncClient.artifacts`): name, size, content type, run and step."""
        return await self._client.artifacts(self.id)

    async def download_artifacts(self, directory: str | os.PathLike[str]) -> list[Path]:
        """Every artifact of the job into `directory/<run>/<file>` (`AsyncClient.download_artifacts`);
        returns the paths."""
        return await self._client.download_artifacts(self.id, directory)


class AsyncRunHandle(HandleBase[AsyncClient]):
    """A submitted (or named) run: `.id`, `.job_ids` (when submitted here), and the calls about it."""

    def __init__(
        self, client: AsyncClient, run_id: str, *, job_ids: Sequence[str] = (), duplicate: bool = False
    ) -> None:
        super().__init__(client, run_id, duplicate=duplicate)
        self.job_ids = tuple(job_ids)

    async def refresh(self) -> Run:
        """The run as it stands now (`AsyncClient.get_run`). Raises NotFoundError for a run that is not there."""
        return await self._client.get_run(self.id)

    def events(self) -> AsyncGenerator[ProgressEvent | Run, None]:
        """Every test's progress events, then (last) the finished run (`AsyncClient.run_events`); reopened
        after a dropped stream, without repeats."""
        return self._client.run_events(self.id)

    async def wait(self, timeout: float | None = None) -> Run:  # noqa: ASYNC109
        """The run once every test has ended (`AsyncClient.wait_run`). Raises WaitTimeout (also a TimeoutError)
        when `timeout` seconds pass first (None: no limit)."""
        return await self._client.wait_run(self.id, timeout)

    async def cancel(self) -> Run:
        """Cancel every test of the run that has not ended (`AsyncClient.cancel_run`); returns the run. Raises
        FailedPreconditionError once it has ended."""
        return await self._client.cancel_run(self.id)
