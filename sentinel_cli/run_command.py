"""`sentinel run PATH…`: a suite of test files as one run, with one answer a CI job can use.

The paths are definition files, Chrome Recorder recordings, directories (every `*.json` below them)
and globs. They are submitted as one run (`SubmitRun`), followed live (`StreamRun`: a line per test
and an overall bar on a terminal, plain lines otherwise), summed up in a table, and written as JUnit
XML and JSON reports when asked (`sentinel_cli.reports`). The exit code: 0 when every test passed, 1
when any did not, 2 for bad usage or when Sentinel cannot be reached (`main` maps errors). Bad files
are listed at once, every problem of every file by its file: those found here (unreadable, not JSON,
no valid definition, a recording Sentinel cannot run), and beside them the API's checks of the other
files (`validate_run`: SubmitRun's checks, nothing submitted); nothing is submitted while there are
any. `--dry-run` runs both checks and stops there (0: the run would be accepted). On Ctrl-C the run
goes on: the reports say where it was, and the message names the command that cancels it. A Ctrl-C
before the run's id is known says whether anything was submitted: nothing, when the files were still
being read; when the submit was on its way, its answer is awaited a moment (the run is made, or not,
whatever the CLI does now), and without one the message says the run may have been made and where
its tests show.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn, TextIO

from sentinel_cli import evidence, recorder, reports
from sentinel_cli.arguments import file_problem, folder_problem
from sentinel_cli.client import (
    LABEL_WIDTH,
    Interrupted,
    bar_text,
    described,
    open_client,
    printable,
    render_tests,
    row_labels,
    run_tally,
    show_invalid,
    sigterm_as_interrupt,
)
from sentinel_client import (
    AsyncClient,
    AsyncRunHandle,
    CallCancelledError,
    DeadlineExceededError,
    InternalError,
    InvalidArgumentError,
    JobState,
    ProgressEvent,
    Run,
    RunTest,
    SentinelError,
    SubmitOptions,
    TestSource,
    UnavailableError,
)
from sentinel_client._requests import load_document
from sentinel_client._sources import definition_files, read_document
from shared.errors import FieldViolation, ValidationError

__all__ = ["collect", "load_all", "run_suite", "to_report"]

#: The last line under a run's problems, wherever they were found.
NOT_SUBMITTED = "sentinel: nothing was submitted; fix these and run again"
#: More tests than this and a terminal shows only the overall bar and each test's end.
MAX_LIVE_LINES = 25
_BAR = 30


def collect(paths: Sequence[str], *, outputs: Sequence[str] = ()) -> tuple[list[Path], list[FieldViolation]]:
    """The definition files `paths` name: files as given, directories' `*.json` (recursively,
    sorted), globs expanded; each file once, in that order, but the run's own `outputs`, its report
    files and its artifacts folder (a rerun's `sentinel run . --json report.json` would read the
    last run's report as a test, and a downloaded JSON file as another). Beside them, a problem for
    each path that names no file (field `paths[i]`), to be listed with the files' own.
    """
    written = [Path(os.path.realpath(output)) for output in outputs]
    found: dict[Path, None] = {}
    problems: list[FieldViolation] = []
    for i, given in enumerate(paths):
        # The SDK's rule: `submit_run("tests/")` takes the same files.
        files = [f for f in definition_files(given) if not _below(Path(os.path.realpath(f)), written)]
        if not files:
            problems.append(FieldViolation(f"paths[{i}]", f"{given!r} names no definition file"))
        for file in files:
            found.setdefault(file, None)
    return list(found), problems


def _below(file: Path, outputs: Sequence[Path]) -> bool:
    """Whether `file` is one of `outputs` or lies below one."""
    return any(file.is_relative_to(output) for output in outputs)


def _load(file: Path) -> tuple[TestSource, str]:
    """The test in `file`, read once, paired with its path for the reports: a recording converted,
    any other file's document checked here, so that every bad file is named by its path (the SDK
    would stop at the first, naming only the field).

    Raises:
        ValidationError: a file that cannot be read (field `file`), or a recording Sentinel cannot run.
        InvalidArgumentError: a definition that is no valid TestDefinition or SubmitRequest.
    """
    try:
        document = read_document(file)
    except UnicodeDecodeError as exc:  # a ValueError: `main` would show a traceback
        raise ValidationError([FieldViolation("file", f"is not UTF-8 text: {exc.reason} at byte {exc.start}")]) from exc
    except OSError as exc:  # as a problem of this file, so that the other files' are listed too
        raise ValidationError([FieldViolation("file", f"cannot be read: {exc.strerror or exc}")]) from exc
    if recorder.is_recording(document):
        return recorder.convert_recording(document).definition, str(file)
    load_document(document, field="file")
    return document, str(file)


@dataclass(frozen=True)
class Loaded:
    """The tests the paths name, as far as they could be read here."""

    files: list[Path]  # every file the paths name
    tests: list[tuple[TestSource, str]]  # those read and checked here, each with its path
    complete: bool  # no path or file had a problem


def load_all(paths: Sequence[str], *, outputs: Sequence[str] = ()) -> Loaded:
    """Every test the paths name (but the run's own `outputs`), read and checked as far as can be done
    here, every problem of every path and file listed as it is found, each by its path."""
    files, missing = collect(paths, outputs=outputs)
    if missing:
        show_invalid(ValidationError(missing))
    tests: list[tuple[TestSource, str]] = []
    for file in files:
        try:
            tests.append(_load(file))
        except (ValidationError, InvalidArgumentError) as exc:
            show_invalid(exc, source=str(file))
    return Loaded(files, tests, complete=not missing and len(tests) == len(files))


async def check_only(
    client: AsyncClient, loaded: Loaded, *, name: str, parallel: int, options: SubmitOptions, out: TextIO
) -> int:
    """The API's checks of the tests read here (`validate_run`), listed beside the problems already
    shown; nothing is submitted. 0 when every file would be accepted, 2 otherwise.

    Raises:
        SentinelError: the API could not check them, when no problem was found here (otherwise the
            problems found are the answer, and the message says the API did not check the others).
    """
    accepted = loaded.complete
    if loaded.tests:
        try:
            await client.validate_run(loaded.tests, name=name, max_parallel=parallel, **options)
        except InvalidArgumentError as exc:
            show_invalid(exc, files=[file for _, file in loaded.tests])
            accepted = False
        except SentinelError as exc:
            if loaded.complete:
                raise
            print(
                f"sentinel: the API could not check the other {len(loaded.tests)} file(s): {described(exc)}",
                file=sys.stderr,
            )
    if accepted:
        out.write(f"{len(loaded.tests)} test(s) checked here and by the API: all valid; nothing was submitted\n")
        return 0
    print(NOT_SUBMITTED, file=sys.stderr)
    return 2


def check_writable(
    *, junit: str | None, json: str | None, artifacts: str | None = None, paths: Sequence[str] = ()
) -> None:
    """Refuse a report path that cannot be written, or that another report is written to too, and an
    `--artifacts` folder files cannot be written below, that is a report's file, or that holds the
    tests `paths` name (never read as tests, it would hide them), before the run (not after it has
    run for an hour).

    Raises:
        ValidationError: naming each option (`--junit`) and what is wrong with its path.
    """
    problems: list[FieldViolation] = []
    taken: dict[Path, str] = {}  # resolved, so that `./x` and `x` (or a link to it) are one file
    for flag, given in (("--junit", junit), ("--json", json)):
        if not given:
            continue
        problem = file_problem(Path(given))
        first = taken.setdefault(Path(given).resolve(), flag)
        if problem is None and first != flag:
            problem = f"is the {first} report's file too; give each report a file of its own"
        if problem:
            problems.append(FieldViolation(flag, f"{given!r} {problem}"))
    if artifacts:
        folder = Path(artifacts).resolve()
        problem = folder_problem(Path(artifacts))
        if problem is None and folder in taken:
            problem = f"is the {taken[folder]} report's file too; give the artifacts a folder of their own"
        if problem is None and (hidden := _tests_below(paths, folder)):
            problem = f"holds the test {str(hidden)!r}, which it would hide; give the artifacts a folder of their own"
        if problem:
            problems.append(FieldViolation("--artifacts", f"{artifacts!r} {problem}"))
    if problems:
        raise ValidationError(problems)


def _tests_below(paths: Sequence[str], folder: Path) -> Path | None:
    """The first definition file `paths` name (directories and globs expanded) that lies in `folder`
    but not where a download puts a file (`<job id>/<attempt>/<file>`: a last run's, never a test)."""
    for given in paths:
        for file in definition_files(given):
            below = Path(os.path.realpath(file))
            if below.is_relative_to(folder):
                parts = below.relative_to(folder).parts
                if not (len(parts) == 3 and parts[1].isdigit()):
                    return file
    return None


@dataclass
class LiveView:
    """The run's progress: one line per test and an overall bar on a terminal, plain lines otherwise."""

    out: TextIO
    names: dict[str, str]  # job id -> the test's label (`row_labels`)
    tty: bool = False
    states: dict[str, ProgressEvent] = field(default_factory=dict)
    _drawn: int = 0

    def show(self, event: ProgressEvent) -> None:
        before = self.states.get(event.job_id)
        self.states[event.job_id] = event
        if self.tty:
            self._redraw()
        elif before is None or before.state is not event.state or event.terminal:
            self.out.write(f"{self._line(event)}\n")
            if event.terminal:
                self.out.write(f"{self._overall()}\n")
            self.out.flush()

    def close(self) -> None:
        if self.tty and self._drawn:
            self.out.write("\n")
            self.out.flush()

    def _done(self) -> int:
        return sum(1 for e in self.states.values() if e.terminal)

    def _overall(self) -> str:
        total = len(self.names)
        done = self._done()
        said = f"{done}/{total} tests done"
        # The bar on a terminal only: a CI log gets plain lines (in any encoding its agent has).
        return f"[{bar_text(done / total if total else 1, _BAR)}] {said}" if self.tty else said

    def _line(self, event: ProgressEvent) -> str:
        name = self.names.get(event.job_id, event.job_id)[:LABEL_WIDTH]
        p = event.progress
        detail = printable(p.message) if not event.terminal else event.state.name
        return f"{name:<{LABEL_WIDTH}} {event.state.name:<9} {p.percentage:3d}%  {detail}"[:160]

    def _redraw(self) -> None:
        lines = []
        if len(self.names) <= MAX_LIVE_LINES:
            for job_id, name in self.names.items():
                event = self.states.get(job_id)
                lines.append(self._line(event) if event else f"{name[:LABEL_WIDTH]:<{LABEL_WIDTH}} {'WAITING':<9}")
        lines.append(self._overall())
        up = f"\x1b[{self._drawn - 1}F" if self._drawn > 1 else "\r"
        self.out.write(up + "".join(f"\x1b[2K{line}\n" for line in lines[:-1]) + f"\x1b[2K{lines[-1]}")
        self._drawn = len(lines)
        self.out.flush()


def render_summary(run: Run, out: TextIO) -> None:
    """A table of every test: state, time, and where a failing one failed."""
    out.write(f"\nRun {run.id} — {run.state.name} ({run_tally(run)})\n")
    render_tests(run, out)


def to_report(
    run: Run, *, started: datetime | None = None, files: Mapping[str, tuple[str, ...]] | None = None
) -> reports.RunReport:
    """The run as the report writers take it; each test tagged as the API says its job is, with the
    files of its artifacts downloaded here (`files`: job id -> paths)."""
    files = files or {}
    began = started or run.created_at or datetime.now(UTC)
    ended = run.finished_at or datetime.now(UTC)
    return reports.RunReport(
        run_id=run.id,
        name=run.name,
        started_at=began,
        duration_ms=max(int((ended - began).total_seconds() * 1000), 0),
        tests=tuple(_test_report(t, files.get(t.job_id, ())) for t in run.tests),
        hostname=socket.gethostname(),
    )


def _test_report(test: RunTest, files: tuple[str, ...]) -> reports.TestReport:
    # A passed test keeps the error of a failed attempt only when it is that attempt's (flaky); one
    # left from an earlier run of a rerun job says nothing about this run.
    error = test.error if not test.passed or test.flaky else None
    return reports.TestReport(
        name=test.name,
        job_id=test.job_id,
        state=test.state.value,
        duration_ms=test.duration_ms,
        attempts=test.attempt,
        source=test.file,
        failing_step=test.failing_step if test.failing_step is not None else -1,
        failing_step_name=test.failing_step_name,
        category=error.category.value if error and error.category else "",
        message=error.message if error else "",
        artifacts=test.artifacts,
        steps=tuple(
            reports.StepRow(
                index=s.index,
                name=s.name,
                status="skipped" if s.skipped else ("passed" if s.success else "failed"),
                duration_ms=s.duration_ms,
                error=s.error,
                artifacts=s.artifacts,
                console_errors=s.console_errors,
                failed_requests=s.failed_requests,
                http_status=s.http_status,
            )
            for s in test.steps
        ),
        tags=test.tags,
        files=files,
        flaky=test.flaky,
    )


@sigterm_as_interrupt
async def run_suite(
    address: str | None,
    paths: Sequence[str],
    *,
    junit: str | None = None,
    json_report: str | None = None,
    artifacts: str | None = None,
    tags: Sequence[str] = (),
    parallel: int = 0,
    priority: str | None = None,
    name: str = "",
    dry_run: bool = False,
    cancel_on_interrupt: bool = False,
    out: TextIO = sys.stdout,
) -> int:
    """`sentinel run`: 0 when every test passed, 1 when any did not, 2 for invalid tests (every
    problem listed, here and the API's: `check_only`, which is all `dry_run` does); other errors
    are raised for `main` to map to 2.

    Raises:
        Interrupted: Ctrl-C (or SIGTERM, exit 143); once the run's id is known, after the reports
            are written.
    """
    check_writable(junit=junit, json=json_report, artifacts=artifacts, paths=paths)
    loaded = load_all(paths, outputs=[r for r in (junit, json_report, artifacts) if r])
    files, tests = loaded.files, loaded.tests
    options: SubmitOptions = {}
    if tags:
        options["tags"] = list(tags)
    if priority:
        options["priority"] = priority
    run_name = name or " ".join(paths)[:200]
    folder = evidence.attachable(Path(artifacts)) if artifacts else None
    wanted = _Reports(junit, json_report, datetime.now(UTC), folder, cancel_on_interrupt)
    began = time.monotonic()
    said = f"{len(files)} test(s){f', {parallel} at a time' if parallel else ''}"
    async with open_client(address) as client:
        if dry_run or not loaded.complete:
            return await check_only(client, loaded, name=run_name, parallel=parallel, options=options, out=out)
        try:
            await asyncio.sleep(0)  # a Ctrl-C while the files were read lands here, before any submit
        except asyncio.CancelledError:
            raise Interrupted("interrupted before the run was submitted; nothing was sent to the API") from None
        submitting = asyncio.ensure_future(client.submit_run(tests, name=run_name, max_parallel=parallel, **options))
        try:
            # Shielded: Ctrl-C must not drop a submit that may already be on its way unanswered.
            handle = await asyncio.shield(submitting)
        except InvalidArgumentError as exc:
            show_invalid(exc, files=[str(f) for f in files])
            print(NOT_SUBMITTED, file=sys.stderr)
            return 2
        except asyncio.CancelledError:
            handle = await _submit_interrupted(submitting, tags)
            out.write(f"run {handle.id}: {said}\n")
            await _interrupted(client, handle.id, wanted, out)
        out.write(f"run {handle.id}: {said}\n")
        out.flush()  # the run's id, for Ctrl-C's `sentinel cancel`, before any progress
        downloaded: dict[str, tuple[str, ...]] = {}
        # Each failing test's evidence as it ends, before retention may remove its job.
        early = evidence.Downloads(client, folder, downloaded) if folder is not None else None
        seen: list[Run] = []  # the run as it last stood, should the API be lost
        try:
            run = await _follow(client, handle, out, early, seen)
        except asyncio.CancelledError:  # Ctrl-C: asyncio.run cancels the command; the run goes on
            await _interrupted(client, handle.id, wanted, out)
        except BrokenPipeError:
            if not (wanted.junit or wanted.json):
                raise
            # The output's reader went away (`| head`): the run is still followed to its end, without
            # a word, for the reports asked for; then the pipe's end is `main`'s to report (141).
            run = await _follow(client, handle, io.StringIO(), early)
            await wanted.download(run, early)
            wanted.write_files(run, downloaded)
            raise
        except (UnavailableError, DeadlineExceededError) as exc:  # lost for longer than the SDK rides out
            rest = f"sentinel status {handle.id} shows it, sentinel cancel {handle.id} stops it"
            said = ""
            if (wanted.junit or wanted.json) and seen:
                # What is known goes to the CI server: tests still running count as errors, those not
                # started as skipped, each with what it had reached.
                if early is not None:
                    with contextlib.suppress(Exception):
                        async with asyncio.timeout(INTERRUPT_GRACE):
                            await early.finish(())
                paths = wanted.write_files(seen[0], downloaded)
                said = f"; reports written as the run stood then: {', '.join(paths)}"
            elif wanted.junit or wanted.json:
                said = "; no report written"
            print(
                f"sentinel: lost the API while following run {handle.id} ({described(exc)}); it goes on: {rest}" + said,
                file=sys.stderr,
            )
            return 2
        try:
            await wanted.download(run, early)
        except asyncio.CancelledError:  # Ctrl-C: the run has ended; the reports name what was downloaded
            wanted.write(run, out, downloaded)
            raise Interrupted(
                f"interrupted while downloading the artifacts; run {handle.id} has ended (the reports name the"
                " files downloaded)"
            ) from None
    written = wanted.write_files(run, downloaded)  # before the summary: a reader that leaves during it costs no report
    render_summary(run, out)
    out.write(f"  finished in {time.monotonic() - began:.1f} s\n")
    for path in written:
        out.write(f"  report: {path}\n")
    if wanted.artifacts:
        count = sum(len(paths) for paths in downloaded.values())
        out.write(f"  artifacts: {count} file(s) of {len(downloaded)} failed or flaky test(s) in {wanted.artifacts}\n")
    return 0 if all(t.state is JobState.COMPLETED for t in run.tests) else 1


async def _follow(
    client: AsyncClient,
    handle: AsyncRunHandle,
    out: TextIO,
    downloads: evidence.Downloads | None = None,
    seen: list[Run] | None = None,
) -> Run:
    """Show the run's progress until it ends (or its stream does); the run as it then stands. Each
    test that ends is told to `downloads`, which fetches a failing one's evidence at once; `seen`
    holds the run as it last stood, for a report should the API be lost."""
    seen = seen if seen is not None else []
    run = await client.get_run(handle.id)
    seen[:] = [run]
    labels = row_labels(run.tests)
    view = LiveView(out, labels, tty=out.isatty())
    try:
        async for item in handle.events():
            if isinstance(item, ProgressEvent):
                view.show(item)
                if item.terminal and downloads is not None:
                    label = labels.get(item.job_id, item.job_id)
                    downloads.ended(item.job_id, label, state=item.state, attempt=item.attempt)
            else:
                run = item
                seen[:] = [run]
    finally:
        view.close()
    if not run.ended:  # the stream ended early (the API shut down): the latest word on the run
        run = await client.get_run(handle.id)
    return run


@dataclass(frozen=True)
class _Reports:
    """The reports a run was asked for."""

    junit: str | None
    json: str | None
    started: datetime
    artifacts: Path | None = None  # `--artifacts`: where the failing tests' files go
    cancel: bool = False  # `--cancel-on-interrupt`: Ctrl-C and SIGTERM cancel the run first

    async def download(self, run: Run, downloads: evidence.Downloads | None) -> None:
        """The failing and flaky tests' artifacts, when asked (`downloads`, which fetched those that
        ended failing already): what it does not have yet, then all of it done."""
        if downloads is not None:
            await downloads.finish(evidence.wanted(to_report(run)))

    def write_files(self, run: Run, files: Mapping[str, tuple[str, ...]] | None = None) -> list[str]:
        """Write the reports asked for, naming the downloaded `files`; their paths."""
        report = to_report(run, started=self.started, files=files)
        written = []
        for path, write in ((self.junit, reports.write_junit), (self.json, reports.write_json)):
            if path:
                write(report, path)
                written.append(path)
        return written

    def write(self, run: Run, out: TextIO, files: Mapping[str, tuple[str, ...]] | None = None) -> None:
        """Write the reports asked for, naming the downloaded `files`, and say where."""
        for path in self.write_files(run, files):
            out.write(f"  report: {path}\n")


#: How long Ctrl-C waits for the run's state to write the reports with, before it gives up on them.
INTERRUPT_GRACE = 5.0


async def _submit_interrupted(submitting: asyncio.Future[AsyncRunHandle], tags: Sequence[str]) -> AsyncRunHandle:
    """After Ctrl-C while the submit was on its way: the run, when the API answers within
    INTERRUPT_GRACE (it then goes on as after any Ctrl-C); else `Interrupted` saying whether the run
    was made: not when the submit failed, perhaps when there was no answer (then where its tests
    would show, for no command lists runs)."""
    try:
        async with asyncio.timeout(INTERRUPT_GRACE):
            return await submitting
    except TimeoutError:
        why = f"no answer in {INTERRUPT_GRACE:g} s"
    except SentinelError as exc:
        why = described(exc)
        if not isinstance(exc, _NO_WORD):
            raise Interrupted(f"interrupted while submitting the run, which failed ({why}); no run was made") from None
    finally:
        submitting.cancel()  # a no-op once it has ended
    where = f"sentinel jobs --tag {tags[0]}" if tags else "sentinel jobs"
    raise Interrupted(
        f"interrupted while submitting the run ({why}): it may or may not have been made; if it was, it goes on"
        f" and its tests are among the newest jobs ({where}; sentinel cancel <job-id> stops one)"
    )


#: Errors of a submit that say nothing of whether the run was made (any other is a refusal).
_NO_WORD = (UnavailableError, DeadlineExceededError, CallCancelledError, InternalError)


async def _interrupted(client: AsyncClient, run_id: str, wanted: _Reports, out: TextIO) -> NoReturn:
    """After Ctrl-C: the run cancelled if asked (`--cancel-on-interrupt`), the reports as the run
    stands (tests still running are errors, those not started skipped), then `Interrupted` naming
    the run and, if it goes on, the command that cancels it."""
    said = f"interrupted; run {run_id} goes on (sentinel cancel {run_id} stops it)"
    if wanted.cancel:
        try:
            async with asyncio.timeout(INTERRUPT_GRACE):
                await client.cancel_run(run_id)
            said = f"interrupted; run {run_id} cancelled"
        except (TimeoutError, SentinelError) as exc:
            said += f"; cancelling it failed ({exc or 'the API did not answer in time'})"
    if wanted.junit or wanted.json:
        try:
            async with asyncio.timeout(INTERRUPT_GRACE):
                run = await client.get_run(run_id)
            wanted.write(run, out)
        except (TimeoutError, SentinelError) as exc:
            said += f"; no report written ({exc or 'the API did not answer in time'})"
    raise Interrupted(said)
