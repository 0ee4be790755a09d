"""A schedule's domain values: what its owner sets (`ScheduleSpec`) and what Sentinel keeps of it.

Plain frozen dataclasses and `str` enums; no protobuf, no Redis.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from shared.model import JobState, SubmitCommand
from shared.notifications import Notification
from shared.schedules.timing import Timing

__all__ = ["RECENT_RUNS", "OverlapPolicy", "Schedule", "ScheduleRun", "ScheduleSpec"]

#: The runs a schedule keeps to show (its runs list; the ends of their jobs, `shared.schedules.history`).
RECENT_RUNS = 20


class OverlapPolicy(enum.StrEnum):
    """What a fire does while the schedule's previous run has not ended (Temporal's meanings)."""

    SKIP = "skip"  # the fire is skipped
    ALLOW = "allow"  # the fire runs beside the unfinished run
    BUFFER_ONE = "buffer_one"  # one fire waits and runs when the previous run ends; later ones are skipped


@dataclass(frozen=True)
class ScheduleSpec:
    """Everything a caller sets on a schedule."""

    name: str
    timing: Timing
    template: SubmitCommand
    overlap: OverlapPolicy = OverlapPolicy.SKIP
    catchup_window_ms: int = 0
    paused: bool = False
    note: str = ""
    notifications: tuple[Notification, ...] = ()


@dataclass(frozen=True)
class ScheduleRun:
    """One of a schedule's latest fires: the job it started, or why it started none; or the fire
    BUFFER_ONE holds until the running fire ends (no job, not skipped, `store.HELD` as its reason)."""

    fire_time_ms: int
    job_id: str = ""
    state: JobState | None = None  # the job's state now, or how it ended once gone (None: no job, or unknown)
    error: str = ""  # how a failed job failed: its error's first line
    removed: bool = False  # its job is gone (retention); `state` and `error` are from the schedule's history
    skipped: bool = False
    reason: str = ""  # why it was skipped (or that it is held)
    triggered: bool = False  # a TriggerSchedule, not a fire time


@dataclass(frozen=True)
class Schedule:
    schedule_id: str
    tenant_id: str
    spec: ScheduleSpec
    created_at_ms: int = 0
    updated_at_ms: int = 0
    #: When the timing was set: interval fire times are anchor + k * interval.
    anchor_ms: int = 0
    #: Raised by every change of timing; a fire computed under another generation is refused.
    generation: int = 0
    #: The latest claimed fire time (ms); it only ever moves forward.
    last_fire_ms: int = 0
    last_job_id: str = ""
    buffered_ms: int = 0  # a fire held back by BUFFER_ONE (0: none)
    fired: int = 0
    skipped: int = 0
    missed: int = 0
    next_fires: tuple[int, ...] = ()
    recent_runs: tuple[ScheduleRun, ...] = ()
