"""Building schedules for the tests of shared.schedules, against a real redis-server."""

from __future__ import annotations

from shared.model import JobOptions, Navigate, Step, SubmitCommand, TestDefinition
from shared.schedules.model import OverlapPolicy, ScheduleSpec
from shared.schedules.timing import Timing

TENANT = "acme"


def spec(
    *,
    interval_ms: int = 1000,
    cron: str = "",
    overlap: OverlapPolicy = OverlapPolicy.SKIP,
    catchup_window_ms: int = 0,
    jitter_ms: int = 0,
    tags: tuple[str, ...] = ("sched",),
    paused: bool = False,
) -> ScheduleSpec:
    definition = TestDefinition(name="check", steps=(Step(Navigate(url="http://example.test/")),))
    return ScheduleSpec(
        name="every second",
        timing=Timing(cron=cron, interval_ms=0 if cron else interval_ms, jitter_ms=jitter_ms),
        template=SubmitCommand(definition=definition, options=JobOptions(tags=tags)),
        overlap=overlap,
        catchup_window_ms=catchup_window_ms,
        paused=paused,
    )
