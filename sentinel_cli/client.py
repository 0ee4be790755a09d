"""The CLI's client side: submit a definition file, follow its progress, show results.

Every call goes through the SDK (`sentinel_client.AsyncClient`); this module only renders.
"""

from __future__ import annotations

import asyncio
import functools
import re
import signal
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextvars import ContextVar
from datetime import datetime, tzinfo
from pathlib import PurePath
from typing import Any, ParamSpec, TextIO

from opentelemetry.sdk.trace import TracerProvider

from sentinel_cli import recorder, reports
from sentinel_client import (
    AsyncClient,
    InvalidArgumentError,
    Job,
    JobError,
    JobState,
    NotFoundError,
    Priority,
    ProgressEvent,
    Run,
    RunTest,
    SentinelError,
    SubmitOptions,
    TestSource,
)
from sentinel_client._connection import check_target
from shared.errors import ValidationError
from shared.field_paths import json_path
from shared.telemetry import client_interceptors

PRIORITIES = tuple(p.value for p in Priority)
#: The most a test's label takes in a run's table and its progress lines.
LABEL_WIDTH = 48

#: The CLI's tracer provider while a command runs (None: tracing is off); `main` sets it from OTEL_*.
TRACING: ContextVar[TracerProvider | None] = ContextVar("sentinel_cli_tracing", default=None)


def open_client(address: str | None) -> AsyncClient:
    """A client of the API at `address` (None: SENTINEL_API), with the API key and TLS as SENTINEL_API_KEY
    and SENTINEL_TLS* say, and a client span for every call when tracing is on (its context travels to
    the API's server span)."""
    if address is not None:
        check_target(address, "--api")  # named as the user gave it; SENTINEL_API is named by the SDK
    # A command that follows a stream (`submit --follow`, `run`, `events`) rides out an API restart
    # as every SDK stream does by default: it reconnects with its last cursor for about a minute.
    return AsyncClient.from_env(target=address, interceptors=client_interceptors(TRACING.get()))


#: A run's violation names its test by index (`tests[3].definition.steps[0]`); the CLI names the file.
_RUN_TEST = re.compile(r"tests\[(\d+)\]\.?(.*)")


class Interrupted(Exception):
    """Ctrl-C (or SIGTERM) while a command waited on the API; the message says what goes on and how to
    stop it; `code` is the exit code (130 for Ctrl-C, 143 for SIGTERM: 128 + the signal)."""

    def __init__(self, message: str, *, code: int = 130) -> None:
        super().__init__(message)
        self.code = code


P = ParamSpec("P")


def sigterm_as_interrupt(command: Callable[P, Coroutine[Any, Any, int]]) -> Callable[P, Coroutine[Any, Any, int]]:
    """`command` with SIGTERM taken as Ctrl-C is: a CI job that is cancelled or runs out of time
    (Jenkins' abort, GitLab's cancel, `timeout`) gets what Ctrl-C gets (`sentinel run`'s reports
    written as the run stands, the run or job named), then `Interrupted` with exit 143, instead of
    the process dying with nothing written. The handler it replaces is put back after."""

    @functools.wraps(command)
    async def taking_sigterm(*args: P.args, **kwargs: P.kwargs) -> int:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        terminated: list[bool] = []

        def on_sigterm() -> None:
            terminated.append(True)
            task.cancel()

        before = signal.getsignal(signal.SIGTERM)
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
        try:
            return await command(*args, **kwargs)
        except Interrupted as exc:
            if not terminated:
                raise
            said = str(exc).replace("interrupted", "terminated (SIGTERM)", 1)
            raise Interrupted(said, code=128 + signal.SIGTERM) from None
        except asyncio.CancelledError:
            if not terminated:
                raise
            raise Interrupted("terminated (SIGTERM)", code=128 + signal.SIGTERM) from None  # nothing under way
        finally:
            loop.remove_signal_handler(signal.SIGTERM)
            if before is not None:  # None: not set from Python, nothing to put back
                signal.signal(signal.SIGTERM, before)

    return taking_sigterm


def described(exc: SentinelError) -> str:
    """An SDK error as the CLI says it: its status code (the API's, or the one the SDK gave an error
    it found first), then its message."""
    return f"{exc.code.name}: {exc.message}" if exc.code else exc.message


def show_invalid(exc: InvalidArgumentError | ValidationError, *, source: str = "", files: Sequence[str] = ()) -> int:
    """Print every violation on a line of its own, its field as the JSON file spells it
    (`waitFor`, not `wait_for`) after the file it is in: `source`, or for a run's `tests[i]` the
    i-th of `files`. Returns 2, the exit code for bad input."""
    code = f"{exc.code.name}: " if isinstance(exc, InvalidArgumentError) and exc.code else ""
    violations = [(v.field, v.description) for v in exc.violations]
    if not violations:
        print(f"sentinel: {code}{f'{source}: ' if source else ''}{exc}", file=sys.stderr)
    for field, description in violations:
        where, path = source, json_path(field)
        named = _RUN_TEST.fullmatch(path)
        if named and int(named[1]) < len(files):
            where, path = files[int(named[1])], named[2]
        place = ": ".join(part for part in (where, path) if part)
        print(f"sentinel: {code}{place}: {description}", file=sys.stderr)
    if source and isinstance(exc, ValidationError) and recorder.unsupported_steps(exc.violations):
        print(f"sentinel: `sentinel import {source} --skip-unsupported` leaves these steps out", file=sys.stderr)
    return 2


def run_counts(run: Run) -> str:
    """`2 completed, 1 cancelled`: the run's tests by state."""
    return ", ".join(f"{n} {state.value}" for state, n in run.counts.items() if n) or "no tests"


def attempt_text(job: Job) -> str:
    """`attempt 2 of 3`; a job that has ended before its last allowed attempt will not run again
    (its failure is not one that is retried, or it was cancelled), so no "of 3" promises more. A job
    run more often than its attempt says — taken over after its executor died, or run again — adds
    its run (`attempt 1 of 1 · run 2`), as the dashboard does: its evidence is named by run."""
    if job.ended and job.attempt < job.max_attempts and job.state is not JobState.COMPLETED:
        text = f"attempt {job.attempt}, not retried"
    else:
        text = f"attempt {job.attempt} of {job.max_attempts}"
    return f"{text} · run {job.runs}" if 0 < job.attempt < job.runs else text


def shown_time(when: datetime | None, zone: tzinfo | None = None) -> str:
    """`2026-12-07 09:00:00-05:00`: to the second, in `zone` (None: this machine's), always with its
    UTC offset so that nobody reads one zone's time as another's ("-" when unset)."""
    return when.astimezone(zone).isoformat(sep=" ", timespec="seconds") if when else "-"


def state_name(state: JobState | None) -> str:
    """`COMPLETED`, as the CLI prints states."""
    return state.name if state else "-"


def bar_text(done: float, width: int = 30) -> str:
    """A progress bar of `width` cells, `done` (0..1) of them full: for a terminal only."""
    filled = max(0, min(width, int(done * width)))
    return "█" * filled + "░" * (width - filled)


class ProgressView:
    """Renders progress events: a live bar on a terminal, one line per change otherwise."""

    def __init__(self, out: TextIO, *, label: str = "") -> None:
        self._out = out
        self._tty = out.isatty()
        self._label = f"{label} " if label else ""
        self._last = ""

    def show(self, event: ProgressEvent) -> None:
        p = event.progress
        steps = f" step {p.current_step}/{p.total_steps}" if p.total_steps else ""
        # The bar on a terminal only: a CI log gets plain lines (in any encoding its agent has).
        bar = f"[{bar_text(p.percentage / 100)}] " if self._tty else ""
        line = f"{self._label}{bar}{p.percentage:3d}% {state_name(event.state):<9}{steps}  {p.message}"
        if self._tty:
            self._out.write("\r\x1b[2K" + line[:160])
            if event.terminal:
                self._out.write("\n")
        elif line != self._last:
            self._out.write(line + "\n")
        self._last = line
        self._out.flush()

    def end(self) -> None:
        """End a live bar's line when it stops before the job's end (Ctrl-C)."""
        if self._tty and self._last:
            self._out.write("\n")
            self._out.flush()


def render_result(job: Job, out: TextIO) -> None:
    """A per-step table with each step's evidence, a one-line verdict, and how to fetch the artifacts."""
    steps = job.result.steps if job.result else ()
    out.write(f"\nJob {job.id} — {state_name(job.state)} ({attempt_text(job)})\n")
    if steps:
        width = max(len(s.name) for s in steps)
        width = min(max(width, 4), 60)
        out.write(f"  {'#':>3}  {'step':<{width}}  {'result':<7}  {'time':>8}\n")
        for s in steps:
            verdict = "skipped" if s.skipped else ("ok" if s.success else "FAILED")
            http = f"  HTTP {s.http_status}" if s.http_status else ""
            name = printable(s.name)[:width]
            out.write(f"  {s.index + 1:>3}  {name:<{width}}  {verdict:<7}  {s.duration_ms:>6}ms{http}\n")
            if s.error:
                out.write(f"       ↳ {printable(s.error)}\n")
            evidence = (("artifact", s.artifacts), ("console", s.console_errors), ("request", s.failed_requests))
            for label, lines in evidence:
                for line in lines:
                    out.write(f"       ↳ {label}: {printable(line)}\n")
    if job.result and job.result.execution_time_ms:
        out.write(f"  executed in {job.result.execution_time_ms} ms on {job.result.worker_id}\n")
    if job.error and job.error.message and not steps:
        kind = f"error ({job.error.category.value})" if job.error.category else "ended"  # no category: a cancel
        out.write(f"  {kind}: {printable(job.error.message)}\n")
    if job.flaky:
        out.write(f"  flaky: {flaky_text(job.attempt, job.error)}\n")
    for note in job.result.artifact_notes if job.result else ():
        out.write(f"  note: {note}\n")
    names = {*(job.result.artifacts if job.result else ()), *(a for s in steps for a in s.artifacts)}
    if names:
        out.write(f"  artifacts: sentinel artifacts {job.id}\n")
    if any(name.endswith("/trace.zip") for name in names):
        out.write(f"  trace:     sentinel trace {job.id}\n")


@sigterm_as_interrupt
async def submit_and_follow(
    address: str | None,
    test: TestSource,
    *,
    priority: str | None,
    follow_progress: bool,
    base_url: str | None = None,
) -> int:
    """`sentinel submit`: 0 when submitted (or, with --follow, when the test passed), else 1.

    `test` is a definition file's path (or its content as a dict); `base_url` replaces its base URL.
    """
    options: SubmitOptions = {}
    if priority:
        options["priority"] = priority
    if base_url:
        options["base_url"] = base_url
    async with open_client(address) as client:
        job = await client.submit(test, **options)
        print(f"submitted {job.id}{' (duplicate of an earlier submit)' if job.duplicate else ''}", flush=True)
        if not follow_progress:
            return 0
        view = ProgressView(sys.stdout)
        last: ProgressEvent | None = None
        try:
            async for last in job.events():
                view.show(last)
        except asyncio.CancelledError:  # Ctrl-C: asyncio.run cancels the command
            view.end()
            raise Interrupted(f"interrupted; job {job.id} goes on (sentinel cancel {job.id} stops it)") from None
        try:
            done = await job.refresh()
        except SentinelError as exc:
            if last is None or not last.terminal:
                raise
            # The job's end was seen; only its result could not be read (a direct-mode API that stopped).
            print(f"sentinel: the result of job {job.id} could not be read: {described(exc)}", file=sys.stderr)
            return 0 if last.state is JobState.COMPLETED else 1
        render_result(done, sys.stdout)
        return 0 if done.passed else 1


#: Control characters (C0, DEL, C1: a bell, an ANSI colour code's ESC) in text a test or a page chose.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` fit for a terminal or a CI log: each control character shown as `\\x1b` instead of
    acted on (a test named with colour codes or a bell would otherwise colour or ring the log)."""
    return _CONTROL.sub(reports.visible_escape, text)


def row_labels(tests: Sequence[RunTest]) -> dict[str, str]:
    """Each test's label by its job id, at most LABEL_WIDTH characters: its name, or where tests share
    a name, its name and the file that tells it apart, as its path below the folder those files have
    in common (`log in (a/login.json)`: the rule that tells JUnit classnames apart); a test with no
    file, or with a file another of them has too, is told by its job id."""
    by_name: dict[str, list[RunTest]] = {}
    for test in tests:
        by_name.setdefault(printable(test.name or PurePath(test.file).name or test.job_id), []).append(test)
    labels: dict[str, str] = {}
    for name, alike in by_name.items():
        if len(alike) == 1:
            labels[alike[0].job_id] = name[:LABEL_WIDTH]
            continue
        files = Counter(test.file for test in alike)
        below = reports.below_common_folder(file for file in files if file and files[file] == 1)
        for test in alike:
            where = below[test.file].as_posix() if test.file in below else test.job_id
            labels[test.job_id] = _fit(name, where, LABEL_WIDTH)
    return labels


def _fit(name: str, where: str, width: int) -> str:
    """`name (where)` in at most `width` characters: the name is shortened first (to no less than
    half of them), then `where` from its start, so that what tells tests apart stays in sight."""
    tail = f" ({where})"
    if len(name) + len(tail) <= width:
        return name + tail
    keep = max(width - len(tail), width // 2)
    head = name if len(name) <= keep else f"{name[: keep - 1]}…"
    room = width - len(head)
    return head + (tail if len(tail) <= room else f" (…{where[-max(room - 4, 1) :]})")


def render_tests(run: Run, out: TextIO) -> None:
    """A table of the run's tests: state, time, and where a failing one failed."""
    labels = row_labels(run.tests)
    width = max([4, *(len(label) for label in labels.values())])  # never narrower than its title
    out.write(f"  {'test':<{width}}  {'result':<9}  {'time':>8}\n")
    for test in run.tests:
        out.write(f"  {labels[test.job_id]:<{width}}  {test.state.name:<9}  {test.duration_ms:>6}ms\n")
        if not test.passed and (test.failing_step_name or test.error):
            where = (
                f"step {test.failing_step + 1} ({test.failing_step_name}): " if test.failing_step is not None else ""
            )
            out.write(f"  ↳ {printable(where)}{printable(test.error.message) if test.error else ''}\n")
        if test.flaky:
            out.write(f"  ↳ flaky: {flaky_text(test.attempt, test.error)}\n")
        if test.artifacts:
            out.write(f"  ↳ artifacts: {', '.join(test.artifacts)}  (sentinel artifacts {test.job_id})\n")


def flaky_text(attempt: int, error: JobError | None) -> str:
    """`passed on attempt 2; attempt 1 failed (assertion): …`, for a job or test that is `flaky`."""
    category = error.category.value if error and error.category else ""
    return printable(reports.flaky_text(attempt, category, error.message if error else ""))


def run_tally(run: Run) -> str:
    """`1 passed, 1 failed, 2 not ended`: passed and failed (or timed out) always, the rest when there are any."""
    states = [t.state for t in run.tests]
    failed = sum(s in (JobState.FAILED, JobState.TIMEOUT) for s in states)
    cancelled = states.count(JobState.CANCELLED)
    waiting = sum(not s.ended for s in states)
    flaky = sum(t.flaky for t in run.tests)
    parts = [f"{states.count(JobState.COMPLETED)} passed{f' ({flaky} flaky)' if flaky else ''}", f"{failed} failed"]
    parts += [f"{cancelled} cancelled"] if cancelled else []
    parts += [f"{waiting} not ended"] if waiting else []
    return ", ".join(parts)


def render_run(run: Run, out: TextIO) -> None:
    """`sentinel status RUN_ID`: the run's state, its tests counted once, then its tests (as `sentinel
    run`'s summary)."""
    name = f"  {run.name}" if run.name else ""
    out.write(f"run {run.id}  {run.state.name}{name}\n")
    out.write(f"  {len(run.tests)} test(s): {run_tally(run)}\n")
    render_tests(run, out)


async def _job_or_run(
    id_: str, job_call: Callable[[str], Awaitable[Job]], run_call: Callable[[str], Awaitable[Run]]
) -> Job | Run:
    """`job_call(id_)`, or `run_call(id_)` when no job has the id (a job id and a run id never meet);
    NotFoundError naming both when neither has it."""
    try:
        return await job_call(id_)
    except NotFoundError:
        try:
            return await run_call(id_)
        except NotFoundError:
            raise NotFoundError(f"no job or run {id_!r}") from None


async def show_status(address: str | None, id_: str) -> int:
    """`sentinel status ID`: the job with that id, or else the run (as `cancel` takes either); 0 when
    found (whatever its state), NotFoundError (exit 1) when neither is."""
    async with open_client(address) as client:
        found = await _job_or_run(id_, client.get, client.get_run)
    if isinstance(found, Run):
        render_run(found, sys.stdout)
        return 0
    p = found.progress
    print(f"{found.id}  {state_name(found.state)}  {p.percentage}%  {p.message}")
    if found.ended:
        render_result(found, sys.stdout)
    return 0


async def cancel(address: str | None, job_id: str) -> int:
    """`sentinel cancel ID`: the job with that id, or else the run (every test of it not yet ended)."""
    async with open_client(address) as client:
        found = await _job_or_run(job_id, client.cancel, client.cancel_run)
    if isinstance(found, Run):
        print(f"run {found.id}  {found.state.name}  ({run_counts(found)})")
    else:
        print(f"{found.id}  {state_name(found.state)}")
    return 0
