"""`sentinel run PATH…`: a suite of test files as one run, with one answer a CI job can use.

The paths are definition files, Chrome Recorder recordings, directories (every `*.json` below them)
and globs. They are submitted as one run (`SubmitRun`), followed live (`StreamRun`: a line per test
and an overall bar on a terminal, plain lines otherwise), summed up in a table, and written as
JUnit XML and JSON reports when asked (`sentinel_cli.reports`). The exit code: 0 when every test
passed, 1 when any did not, 2 for bad usage or when Sentinel cannot be reached (`main` maps errors).
"""

from __future__ import annotations

import glob
import os
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from sentinel_cli import recorder, reports
from sentinel_cli.client import open_client
from sentinel_client import JobState, ProgressEvent, Run, RunTest, RunTestSource, SubmitOptions
from shared.errors import FieldViolation, ValidationError

__all__ = ["collect", "run_suite", "to_report"]

#: More tests than this and a terminal shows only the overall bar and each test's end.
MAX_LIVE_LINES = 25
_BAR = 30


def collect(paths: Sequence[str]) -> list[Path]:
    """The definition files `paths` name: files as given, directories' `*.json` (recursively,
    sorted), globs expanded; each file once, in that order.

    Raises:
        ValidationError: a path that names no file (field `paths[i]`).
    """
    found: dict[Path, None] = {}
    problems: list[FieldViolation] = []
    for i, given in enumerate(paths):
        matches = sorted(glob.glob(given, recursive=True)) if glob.has_magic(given) else [given]
        files: list[Path] = []
        for match in matches:
            path = Path(match)
            if path.is_dir():
                files += sorted(p for p in path.rglob("*.json") if p.is_file() and "node_modules" not in p.parts)
            elif path.is_file():
                files.append(path)
        if not files:
            problems.append(FieldViolation(f"paths[{i}]", f"{given!r} names no definition file"))
        for file in files:
            found.setdefault(file, None)
    if problems:
        raise ValidationError(problems)
    return list(found)


def _load(file: Path) -> RunTestSource:
    loaded = recorder.load_test(str(file))  # a recording comes back converted
    return (loaded, str(file)) if isinstance(loaded, dict) else loaded


@dataclass
class LiveView:
    """The run's progress: one line per test and an overall bar on a terminal, plain lines otherwise."""

    out: TextIO
    names: dict[str, str]  # job id -> test name
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
        filled = done * _BAR // total if total else _BAR
        return f"[{'█' * filled}{'░' * (_BAR - filled)}] {done}/{total} tests done"

    def _line(self, event: ProgressEvent) -> str:
        name = self.names.get(event.job_id, event.job_id)[:48]
        p = event.progress
        detail = p.message if not event.terminal else event.state.name
        return f"{name:<48} {event.state.name:<9} {p.percentage:3d}%  {detail}"[:160]

    def _redraw(self) -> None:
        lines = []
        if len(self.names) <= MAX_LIVE_LINES:
            for job_id, name in self.names.items():
                event = self.states.get(job_id)
                lines.append(self._line(event) if event else f"{name[:48]:<48} {'WAITING':<9}")
        lines.append(self._overall())
        up = f"\x1b[{self._drawn - 1}F" if self._drawn > 1 else "\r"
        self.out.write(up + "".join(f"\x1b[2K{line}\n" for line in lines[:-1]) + f"\x1b[2K{lines[-1]}")
        self._drawn = len(lines)
        self.out.flush()


def render_summary(run: Run, out: TextIO) -> None:
    """A table of every test: state, time, and where a failing one failed."""
    width = min(max((len(t.name) for t in run.tests), default=4), 48)
    out.write(f"\nRun {run.id} — {run.state.name} ({_counts(run)})\n")
    out.write(f"  {'test':<{width}}  {'result':<9}  {'time':>8}\n")
    for test in run.tests:
        out.write(f"  {test.name[:width]:<{width}}  {test.state.name:<9}  {test.duration_ms:>6}ms\n")
        if not test.passed and (test.failing_step_name or test.error):
            where = (
                f"step {test.failing_step + 1} ({test.failing_step_name}): " if test.failing_step is not None else ""
            )
            out.write(f"  ↳ {where}{test.error.message if test.error else ''}\n")
        if test.artifacts:
            out.write(f"  ↳ artifacts: {', '.join(test.artifacts)}  (sentinel artifacts {test.job_id})\n")


def _counts(run: Run) -> str:
    return ", ".join(f"{n} {state.value}" for state, n in run.counts.items() if n) or "no tests"


def to_report(run: Run, *, tags: Sequence[str] = (), started: datetime | None = None) -> reports.RunReport:
    """The run as the report writers take it."""
    began = started or run.created_at or datetime.now(UTC)
    ended = run.finished_at or datetime.now(UTC)
    return reports.RunReport(
        run_id=run.id,
        name=run.name,
        started_at=began,
        duration_ms=max(int((ended - began).total_seconds() * 1000), 0),
        tests=tuple(_test_report(t, tags) for t in run.tests),
        hostname=socket.gethostname(),
    )


def _test_report(test: RunTest, tags: Sequence[str]) -> reports.TestReport:
    return reports.TestReport(
        name=test.name,
        job_id=test.job_id,
        state=test.state.value,
        duration_ms=test.duration_ms,
        attempts=test.attempt,
        source=test.file,
        failing_step=test.failing_step if test.failing_step is not None else -1,
        failing_step_name=test.failing_step_name,
        category=test.error.category.value if test.error and test.error.category else "",
        message=test.error.message if test.error else "",
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
        tags=tuple(tags),
    )


async def run_suite(
    address: str | None,
    paths: Sequence[str],
    *,
    junit: str | None = None,
    json_report: str | None = None,
    tags: Sequence[str] = (),
    parallel: int = 0,
    priority: str | None = None,
    name: str = "",
    out: TextIO = sys.stdout,
) -> int:
    """`sentinel run`: 0 when every test passed, else 1 (errors are raised for `main` to map to 2)."""
    files = collect(paths)
    tests = [_load(f) for f in files]
    options: SubmitOptions = {}
    if tags:
        options["tags"] = list(tags)
    if priority:
        options["priority"] = priority
    run_name = name or " ".join(paths)[:200]
    started = datetime.now(UTC)
    began = time.monotonic()
    async with open_client(address, follow=True) as client:
        handle = await client.submit_run(tests, name=run_name, max_parallel=parallel, **options)
        out.write(f"run {handle.id}: {len(files)} test(s){f', {parallel} at a time' if parallel else ''}\n")
        run = await client.get_run(handle.id)
        view = LiveView(out, {t.job_id: t.name or os.path.basename(t.file) for t in run.tests}, tty=out.isatty())
        async for item in handle.events():
            if isinstance(item, ProgressEvent):
                view.show(item)
            else:
                run = item
        view.close()
        if not run.ended:  # the stream ended early (the API shut down): the latest word on the run
            run = await client.get_run(handle.id)
    render_summary(run, out)
    out.write(f"  finished in {time.monotonic() - began:.1f} s\n")
    report = to_report(run, tags=tags, started=started)
    for path, write in ((junit, reports.write_junit), (json_report, reports.write_json)):
        if path:
            write(report, path)
            out.write(f"  report: {path}\n")
    return 0 if all(t.state is JobState.COMPLETED for t in run.tests) else 1
