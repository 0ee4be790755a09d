"""`Client`: the blocking twin. Every call is an `_ops` description run over a blocking gRPC channel.

Keep it the mirror of `_async.AsyncClient` (same method names, arguments and results); logic that
is not about blocking belongs in `_ops`, `_convert`, `_retry` or `_base`, where both use it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, Unpack

import grpc

from sentinel_client import _alerts as alert_ops
from sentinel_client import _ops as ops
from sentinel_client import _schedules as schedule_ops
from sentinel_client._base import ClientBase, HandleBase, Unseen, Waiting, warn_partial
from sentinel_client._files import PartialFile
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


class Client(ClientBase[grpc.Channel]):
    """A blocking client of a Sentinel API (see `ClientBase` for the options). Close it, or use `with`."""

    def _open_channel(self) -> grpc.Channel:
        return self._conn.sync_channel()

    def close(self) -> None:
        """Close the client and its channel; a call made after raises ConfigError (`with` closes it for you)."""
        self._closed = True
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # --- jobs -------------------------------------------------------------------------------------

    def submit(self, test: TestSource, **options: Unpack[SubmitOptions]) -> JobHandle:
        """Submit a test: a definition dict (or a SubmitRequest-shaped one), or a JSON file's path.

        Retried on UNAVAILABLE under its idempotency key, so it makes one job however often it is sent.
        Raises InvalidArgumentError for a bad test, naming the field (`definition.steps[2].wait.ms`),
        or `file` for a file that cannot be read (missing, a folder: with the OS's reason).
        """
        job_id, duplicate = self._call(ops.submit(submit_request(test, options)))
        return JobHandle(self, job_id, duplicate=duplicate)

    def job(self, job_id: str) -> JobHandle:
        """A handle on an existing job (no call is made)."""
        return JobHandle(self, job_id)

    def get(self, job_id: str) -> Job:
        """The job as it stands now. Raises NotFoundError for a job that is not there (or is another tenant's)."""
        return self._call(ops.status(job_id))

    def cancel(self, job_id: str) -> Job:
        """Cancel a waiting or running job; a finished one raises FailedPreconditionError."""
        return self._call(ops.cancel(job_id))

    def retry(self, job_id: str, *, priority: Priority | str | None = None) -> Job:
        """Run a failed, timed-out or cancelled job again (in its own lane unless `priority` says)."""
        return self._call(ops.retry(job_id, priority))

    def events(self, job_id: str, *, cursor: str = "") -> Generator[ProgressEvent, None, None]:
        """The job's progress events from `cursor` ("" = the start), live, until its terminal event.

        Reopened after the last event's cursor when the stream drops: nothing missed, nothing repeated.
        """
        return self._stream(ops.progress(job_id, cursor))

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """The job once it has ended. Raises WaitTimeout when `timeout` seconds pass first."""
        waiting = Waiting(job_id, timeout)
        try:
            for event in self._stream(ops.progress(job_id, ""), deadline=waiting.deadline):
                waiting.saw(event)
        except DeadlineExceededError as exc:
            timed_out = waiting.expired()
            if timed_out is None:
                raise
            raise timed_out from exc
        return self.get(job_id)

    # --- runs -----------------------------------------------------------------------------------

    def submit_run(
        self,
        tests: Iterable[RunTestSource] | str | os.PathLike[str],
        *,
        name: str = "",
        max_parallel: int = 0,
        **options: Unpack[SubmitOptions],
    ) -> RunHandle:
        """Submit tests as one run (files, definitions, or either paired with the file name to show for
        it); `options` apply to every test. A folder or a glob, in the list or alone (`"tests/"`), stands
        for its definition files as `sentinel run` takes them: every `*.json` below a folder, sorted.

        `max_parallel`: most of the run's tests waiting or running at once (0: no limit). Retried
        on UNAVAILABLE under the run's idempotency key, so it makes one run however often it is sent.
        Raises InvalidArgumentError for a bad test, named `tests[i]` (counting the tests sent: a
        folder's files one each): a field of it, a file that cannot be read, a folder with no tests.
        """
        check_keywords(options, SubmitOptions, also=("name", "max_parallel"))
        request = run_request(tests, name=name, max_parallel=max_parallel, options=options)
        run_id, job_ids, duplicate = self._call(ops.submit_run(request))
        return RunHandle(self, run_id, job_ids=job_ids, duplicate=duplicate)

    def validate_run(
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
        request = run_request(tests, name=name, max_parallel=max_parallel, options=options)
        self._call(ops.validate_run(request))

    def run(self, run_id: str) -> RunHandle:
        """A handle on an existing run (no call is made)."""
        return RunHandle(self, run_id)

    def get_run(self, run_id: str) -> Run:
        """The run as it stands now: its state, counts and every test. Raises NotFoundError for an unknown run."""
        return self._call(ops.get_run(run_id))

    def cancel_run(self, run_id: str) -> Run:
        """Cancel every test of the run that has not ended; a finished run raises FailedPreconditionError."""
        return self._call(ops.cancel_run(run_id))

    def run_events(self, run_id: str) -> Generator[ProgressEvent | Run, None, None]:
        """Every test's progress events, then (last) the finished run; a dropped stream is reopened
        and what it repeats is dropped."""
        unseen = Unseen()
        for item in self._stream(ops.stream_run(run_id)):
            if unseen(item):
                yield item

    def wait_run(self, run_id: str, timeout: float | None = None) -> Run:
        """The run once every test has ended. Raises WaitTimeout when `timeout` seconds pass first."""
        waiting = Waiting(run_id, timeout, kind="run")
        try:
            for item in self._stream(ops.stream_run(run_id), deadline=waiting.deadline):
                if isinstance(item, Run):
                    return item
                waiting.saw(item)
        except DeadlineExceededError as exc:
            timed_out = waiting.expired()
            if timed_out is None:
                raise
            raise timed_out from exc
        return self.get_run(run_id)

    def jobs(
        self, *, state: JobState | str | None = None, tag: str = "", schedule_id: str = "", page_size: int = 100
    ) -> Generator[Job, None, None]:
        """The tenant's jobs, newest first, fetched a page at a time as you iterate."""
        return self._pages(lambda token: ops.list_jobs(state, tag, page_size, token, schedule_id))

    def list_jobs(
        self,
        *,
        state: JobState | str | None = None,
        tag: str = "",
        schedule_id: str = "",
        page_size: int = 0,
        page_token: str = "",
    ) -> Page[Job]:
        """One page of jobs (page_size 0: the API's default, 50); `schedule_id`: only the jobs it fired."""
        return self._call(ops.list_jobs(state, tag, page_size, page_token, schedule_id))

    # --- artifacts --------------------------------------------------------------------------------

    def artifacts(self, job_id: str) -> list[Artifact]:
        """The job's stored artifacts (screenshots, the trace, a video): name, size, content type, and the
        run and step that made each. Raises NotFoundError for an unknown job, UnavailableError when the
        artifact store cannot be reached."""
        return self._call(ops.list_artifacts(job_id))

    def download_artifact(self, job_id: str, name: str, path: str | os.PathLike[str]) -> Path:
        """Stream artifact `name` ("1/trace.zip") into the file `path`, or into the directory `path`
        under its own file name (`path/trace.zip`); returns the file's path.

        Written to a temporary name beside it and renamed when complete; started over on UNAVAILABLE.
        Raises NotFoundError for an unknown job or artifact; an OSError (naming the path) when the
        file cannot be written.
        """
        op = ops.get_artifact(job_id, name)
        chunks = op.bind(self._live_channel())
        part = PartialFile(path, name)

        def attempt(_: Retrying) -> Path:
            part.start()
            call = chunks(op.request(""), metadata=self._conn.metadata)
            try:
                for chunk in call:
                    part.write(chunk.data, chunk.size_bytes)
            finally:
                call.cancel()
            return part.commit()

        try:
            return self._retried(True, attempt)
        finally:
            part.discard()

    def download_artifacts(self, job_id: str, directory: str | os.PathLike[str]) -> list[Path]:
        """Every artifact of the job into `directory/<attempt>/<file>`; returns the paths."""
        return [self.download_artifact(job_id, a.name, a.path_in(directory)) for a in self.artifacts(job_id)]

    # --- queue administration ---------------------------------------------------------------------

    def stats(self, queue: str = "") -> QueueStats:
        """The queue's figures, lane by lane (only the tenant's jobs when the API checks keys); `queue`
        "": the default queue."""
        return self._call(ops.stats(queue))

    def health(self, queue: str = "") -> QueueHealth:
        """The queue's health: HEALTHY, DEGRADED (paused, or stalled) or UNHEALTHY, with the reasons and
        its figures."""
        return self._call(ops.health(queue))

    def pause(self, queue: str = "") -> QueueState:
        """Stop claiming jobs until `resume` (running ones finish; submits are still taken); returns the
        queue's state. Needs the admin role (else PermissionDeniedError)."""
        return self._call(ops.pause(queue))

    def resume(self, queue: str = "") -> QueueState:
        """Claim jobs again after `pause`; returns the queue's state. Needs the admin role (else
        PermissionDeniedError)."""
        return self._call(ops.resume(queue))

    def dead_letters(
        self, *, category: ErrorCategory | str | None = None, tag: str = "", page_size: int = 100
    ) -> Generator[DeadLetter, None, None]:
        """The jobs that ran out of attempts, newest first, fetched a page at a time as you iterate;
        only those of `category` and `tag` when given. Needs the admin role (else PermissionDeniedError)."""
        return self._pages(lambda token: ops.list_dead_letters(category, tag, page_size, token))

    def requeue_dead_letter(self, job_id: str, *, priority: Priority | str | None = None) -> Job:
        """Run a dead-lettered job again, attempts reset, in the low lane unless `priority` says;
        returns the job. Raises NotFoundError when it is no dead letter. Not retried on UNAVAILABLE.
        Needs the admin role (else PermissionDeniedError)."""
        return self._call(ops.requeue_dead_letter(job_id, priority))

    def purge_dead_letters(self, *, older_than_ms: int = 0) -> int:
        """Drop the dead letters older than `older_than_ms` (0: all); returns how many. Their jobs
        stay until retention removes them. Not retried on UNAVAILABLE. Needs the admin role (else
        PermissionDeniedError)."""
        return self._call(ops.purge_dead_letters(older_than_ms))

    def clean(self, *, state: JobState | str | None = None, older_than_ms: int = 0, limit: int = 0) -> int:
        """Remove finished jobs older than `older_than_ms`, of `state` (None: every finished state), at
        most `limit` (0: no limit), with their artifacts; returns how many. Raises InvalidArgumentError
        for a state that is not a finished one. Not retried on UNAVAILABLE. Needs the admin role (else
        PermissionDeniedError)."""
        return self._call(ops.clean(state, older_than_ms, limit))

    def watch_events(
        self, *, states: Sequence[JobState | str] = (), kinds: Sequence[str] = (), tag: str = "", cursor: str = ""
    ) -> Generator[QueueEvent, None, None]:
        """Queue events as they happen (from after `cursor`; "" = only new ones), resumed after a drop;
        only `kinds` (e.g. "active", "completed": `QueueEvent.kind`), `states` and `tag` when given."""
        return self._stream(ops.watch_events(states, kinds, tag, cursor))

    # --- schedules --------------------------------------------------------------------------------

    def create_schedule(
        self, test: TestSource, *, options: SubmitOptions | None = None, **fields: Unpack[ScheduleFields]
    ) -> Schedule:
        """Schedule a test (a definition or SubmitRequest, dict or file): `cron=` or `interval_ms=`,
        and the other `ScheduleFields`; `options` (priority, tags, ...) apply to the test. Without
        `name=`, a file's schedule is named after the file (`login` for `tests/login.json`)."""
        return self._call(schedule_ops.create(test, fields, options=options))

    def get_schedule(self, schedule_id: str) -> Schedule:
        """The schedule with its next fire times and latest runs."""
        return self._call(schedule_ops.get(schedule_id))

    def list_schedules(self, *, page_size: int = 0, page_token: str = "") -> Page[Schedule]:
        """One page of the tenant's schedules, newest first (page_size 0: the API's default, 50)."""
        return self._call(schedule_ops.list_page(page_size, page_token))

    def schedules(self, *, page_size: int = 100) -> Generator[Schedule, None, None]:
        """The tenant's schedules, newest first, fetched a page at a time as you iterate."""
        return self._pages(lambda token: schedule_ops.list_page(page_size, token))

    def update_schedule(
        self,
        schedule_id: str,
        *,
        test: TestSource | None = None,
        options: SubmitOptions | None = None,
        **fields: Unpack[ScheduleFields],
    ) -> Schedule:
        """Change only the fields given (and the template, with `test`); a new timing counts from now."""
        return self._call(schedule_ops.update(schedule_id, fields, test=test, options=options))

    def delete_schedule(self, schedule_id: str) -> bool:
        """Delete it; the jobs it fired stay (`list_jobs(schedule_id=...)` still finds them)."""
        return self._call(schedule_ops.delete(schedule_id))

    def pause_schedule(self, schedule_id: str, *, note: str = "") -> Schedule:
        """Stop firing the schedule until `resume_schedule` (`note` says why); returns it."""
        return self._call(schedule_ops.pause(schedule_id, note))

    def resume_schedule(self, schedule_id: str, *, note: str = "") -> Schedule:
        """Fire again from now on (fires that fell while it was paused do not run)."""
        return self._call(schedule_ops.resume(schedule_id, note))

    def trigger_schedule(self, schedule_id: str) -> Job:
        """Run the schedule's test once now; the job counts as its latest run."""
        return self._call(schedule_ops.trigger(schedule_id))

    # --- alerts -----------------------------------------------------------------------------------

    def create_alert_rule(self, tag: str, notifications: Sequence[Mapping[str, Any]]) -> AlertRule:
        """Alert on every job tagged `tag`: each notification a dict `{"url": ..., "events": [...],
        "secret": ...}` (events default to failed and recovered; the secret signs each delivery)."""
        return self._call(alert_ops.create_rule(tag, notifications))

    def list_alert_rules(self, *, page_size: int = 0, page_token: str = "") -> Page[AlertRule]:
        """One page of the tenant's alert rules, newest first (page_size 0: the API's default, 50)."""
        return self._call(alert_ops.list_rules(page_size, page_token))

    def alert_rules(self, *, page_size: int = 100) -> Generator[AlertRule, None, None]:
        """The tenant's alert rules, newest first, fetched a page at a time as you iterate."""
        return self._pages(lambda token: alert_ops.list_rules(page_size, token))

    def delete_alert_rule(self, rule_id: str) -> bool:
        """Delete it; deliveries already made are kept (and still sent)."""
        return self._call(alert_ops.delete_rule(rule_id))

    def list_deliveries(
        self,
        *,
        schedule_id: str = "",
        rule_id: str = "",
        job_id: str = "",
        page_size: int = 0,
        page_token: str = "",
    ) -> Page[Delivery]:
        """One page of webhook deliveries, newest first, only those of the schedule, rule and job given."""
        return self._call(
            alert_ops.list_deliveries(
                schedule_id=schedule_id, rule_id=rule_id, job_id=job_id, page_size=page_size, page_token=page_token
            )
        )

    def deliveries(
        self, *, schedule_id: str = "", rule_id: str = "", job_id: str = "", page_size: int = 100
    ) -> Generator[Delivery, None, None]:
        """Webhook deliveries (filtered as `list_deliveries`), fetched a page at a time as you iterate."""
        return self._pages(
            lambda token: alert_ops.list_deliveries(
                schedule_id=schedule_id, rule_id=rule_id, job_id=job_id, page_size=page_size, page_token=token
            )
        )

    # --- the machinery ----------------------------------------------------------------------------

    def _call(self, op: ops.Unary[T]) -> T:
        call = op.bind(self._live_channel())
        return self._retried(
            op.safe,
            lambda retrying: op.convert(
                call(op.request, timeout=retrying.timeout(self._conn.timeout), metadata=self._conn.metadata)
            ),
        )

    def _retried(self, safe: bool, attempt: Callable[[Retrying], T]) -> T:
        retrying = Retrying(self._conn.retries, safe=safe)
        while True:
            try:
                return attempt(retrying)
            except (grpc.RpcError, UnavailableError) as exc:
                pause = retrying.failed(exc)
            time.sleep(pause)

    def _stream(self, op: ops.Stream[T], *, deadline: float | None = None) -> Generator[T, None, None]:
        open_stream = op.bind(self._live_channel())
        retrying = Retrying(self._conn.stream_retries, safe=True, deadline=deadline, stream=True)
        cursor = op.cursor
        while True:
            call = open_stream(op.request(cursor), timeout=retrying.timeout(None), metadata=self._conn.metadata)
            try:
                for reply in call:
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
            time.sleep(pause)

    def _pages(self, page: Callable[[str], ops.Unary[Page[T]]]) -> Generator[T, None, None]:
        token = ""
        warned = False
        while True:
            got = self._call(page(token))
            warned = warn_partial(got, warned)
            yield from got.items
            token = got.next_page_token
            if not token:
                return


class JobHandle(HandleBase[Client]):
    """A submitted (or named) job: `.id`, and the calls about it."""

    def refresh(self) -> Job:
        """The job as it stands now (`Client.get`). Raises NotFoundError for a job that is not there."""
        return self._client.get(self.id)

    def events(self, *, cursor: str = "") -> Generator[ProgressEvent, None, None]:
        """The job's progress events from `cursor` ("" = the start), live, until its terminal one
        (`Client.events`); reopened after a dropped stream. Raises NotFoundError for a job that is not there."""
        return self._client.events(self.id, cursor=cursor)

    def wait(self, timeout: float | None = None) -> Job:
        """The job once it has ended (`Client.wait`). Raises WaitTimeout (also a TimeoutError) when
        `timeout` seconds pass first (None: no limit)."""
        return self._client.wait(self.id, timeout)

    def cancel(self) -> Job:
        """Cancel the job while it waits or runs (`Client.cancel`); returns it. Raises
        FailedPreconditionError once it has ended."""
        return self._client.cancel(self.id)

    def retry(self, *, priority: Priority | str | None = None) -> Job:
        """Run the job again after it failed, timed out or was cancelled, attempts reset, in its own lane
        unless `priority` says (`Client.retry`); returns it. Raises FailedPreconditionError while it
        waits or runs. Not retried on UNAVAILABLE."""
        return self._client.retry(self.id, priority=priority)

    def artifacts(self) -> list[Artifact]:
        """The job's stored artifacts (`Client.artifacts`): name, size, content type, run and step."""
        return self._client.artifacts(self.id)

    def download_artifacts(self, directory: str | os.PathLike[str]) -> list[Path]:
        """Every artifact of the job into `directory/<run>/<file>` (`Client.download_artifacts`);
        returns the paths."""
        return self._client.download_artifacts(self.id, directory)


class RunHandle(HandleBase[Client]):
    """A submitted (or named) run: `.id`, `.job_ids` (when submitted here), and the calls about it."""

    def __init__(self, client: Client, run_id: str, *, job_ids: Sequence[str] = (), duplicate: bool = False) -> None:
        super().__init__(client, run_id, duplicate=duplicate)
        self.job_ids = tuple(job_ids)

    def refresh(self) -> Run:
        """The run as it stands now (`Client.get_run`). Raises NotFoundError for a run that is not there."""
        return self._client.get_run(self.id)

    def events(self) -> Generator[ProgressEvent | Run, None, None]:
        """Every test's progress events, then (last) the finished run (`Client.run_events`); reopened
        after a dropped stream, without repeats."""
        return self._client.run_events(self.id)

    def wait(self, timeout: float | None = None) -> Run:
        """The run once every test has ended (`Client.wait_run`). Raises WaitTimeout (also a TimeoutError)
        when `timeout` seconds pass first (None: no limit)."""
        return self._client.wait_run(self.id, timeout)

    def cancel(self) -> Run:
        """Cancel every test of the run that has not ended (`Client.cancel_run`); returns the run. Raises
        FailedPreconditionError once it has ended."""
        return self._client.cancel_run(self.id)
