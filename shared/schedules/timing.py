"""When a schedule fires: cron or fixed-interval fire times, in a time zone, with a fixed jitter.

Every API replica computes the same fire times for a schedule, so that claiming one in Redis
(`shared.schedules.firing`) is a race with one winner rather than a disagreement:

- **interval**: the fire times are `anchor + k * interval_ms` (k >= 1), the anchor being when the
  schedule's timing was last set (its creation, or an update that changed the timing);
- **cron**: 5 fields (minute first), or 6 with seconds first, evaluated by `croniter` in the
  schedule's IANA time zone. A spring-forward gap fires at the first time after it; in a
  fall-back hour, a fixed-time cron (`30 2 * * *`, `0 2,14 * * *`) fires once, at the first of the
  two 02:30s, while one whose hours run through the repeated one — `*`, a step, or a range or list
  holding the hour before it (`0 0-23 * * *`, `30 1-3 * * *`) — fires in real time through both.
  croniter's random fields (`R`) are refused: each evaluation would draw other fire times;
- **jitter**: each fire runs up to `jitter_ms` later, by an offset drawn from a hash of the schedule's
  id and the fire time, so every replica agrees on it. It must be less than the interval, or than
  the shortest gap between a cron's fires (fires are submitted in order: a longer jitter would hold
  the next fire behind a late one).

Pure computation: no Redis, no protobuf. Times are Unix milliseconds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from shared.clock import now_ms
from shared.errors import FieldViolation

__all__ = [
    "MAX_INTERVAL_MS",
    "MAX_JITTER_MS",
    "MIN_INTERVAL_MS",
    "Timing",
    "fires_after",
    "jitter_of",
    "next_fire",
    "next_fires",
    "shortest_gap_ms",
    "timing_violations",
]

MIN_INTERVAL_MS = 1000
MAX_INTERVAL_MS = 366 * 86_400_000
MAX_JITTER_MS = 3_600_000
MAX_CRON_CHARS = 200
#: A cron that cannot find its next fire within this many years (`0 0 30 2 *`) is refused.
_CRON_HORIZON_YEARS = 5
#: A cron's jitter must be less than the shortest gap between its fires, found among this many
#: fires ahead, within this long: enough for daily, weekly and monthly patterns, and quick (~50 ms).
GAP_FIRES = 1000
GAP_HORIZON_MS = 366 * 86_400_000


@dataclass(frozen=True)
class Timing:
    """When a schedule fires. Exactly one of `cron` and `interval_ms` is set (validation holds it)."""

    cron: str = ""
    interval_ms: int = 0
    timezone: str = "UTC"
    jitter_ms: int = 0


def timing_violations(timing: Timing, *, prefix: str) -> list[FieldViolation]:
    """Every problem of `timing`, each naming its field (`<prefix>cron`)."""
    found: list[FieldViolation] = []
    if bool(timing.cron) == bool(timing.interval_ms):
        found.append(FieldViolation(f"{prefix}cron", "set exactly one of cron and interval_ms"))
    if timing.interval_ms and not MIN_INTERVAL_MS <= timing.interval_ms <= MAX_INTERVAL_MS:
        found.append(
            FieldViolation(
                f"{prefix}interval_ms",
                f"must be between {MIN_INTERVAL_MS} and {MAX_INTERVAL_MS} ms, got {timing.interval_ms}",
            )
        )
    zone = _zone(timing.timezone)
    if zone is None:
        found.append(FieldViolation(f"{prefix}timezone", f"not an IANA time zone: {timing.timezone[:80]!r}"))
    problem = _cron_problem(timing.cron) if timing.cron else ""
    if problem:
        found.append(FieldViolation(f"{prefix}cron", problem))
    limit, why = MAX_JITTER_MS, "1 h"
    if timing.interval_ms:
        limit, why = min(limit, timing.interval_ms - 1), "less than the interval, at most 1 h"
    elif timing.cron and timing.jitter_ms and zone is not None and not problem:
        # A jitter as long as a gap between fires would hold the next fire behind the late one (fires
        # are submitted in order): "each fire delayed by its own fixed amount" would no longer hold.
        gap = shortest_gap_ms(timing, after_ms=now_ms(), stop_at_ms=timing.jitter_ms)
        if gap and gap - 1 < limit:
            limit, why = gap - 1, f"less than the shortest gap between the cron's fires, {gap} ms"
    if timing.jitter_ms > limit:
        found.append(FieldViolation(f"{prefix}jitter_ms", f"at most {limit} ms ({why})"))
    return found


def shortest_gap_ms(timing: Timing, *, after_ms: int, stop_at_ms: int = 0) -> int:
    """The shortest time between two consecutive fires of `timing` among its next `GAP_FIRES` fires
    after `after_ms`, within `GAP_HORIZON_MS` (0: fewer than two fires in that time). It stops at
    the first gap of at most `stop_at_ms` (that one is short enough to refuse a jitter)."""
    shortest, previous, seen = 0, 0, 0
    for at in fires_after(timing, anchor_ms=after_ms, after_ms=after_ms):
        if at - after_ms > GAP_HORIZON_MS or seen >= GAP_FIRES:
            break
        if previous and (not shortest or at - previous < shortest):
            shortest = at - previous
            if shortest <= stop_at_ms:
                break
        previous, seen = at, seen + 1
    return shortest


def _cron_problem(expression: str) -> str:
    if len(expression) > MAX_CRON_CHARS:
        return f"at most {MAX_CRON_CHARS} characters"
    fields = expression.split()
    if len(fields) not in (5, 6):
        return f"5 fields (minute hour day month weekday), or 6 with seconds first; got {len(fields)}"
    if any(part[:1] in ("R", "r") for field in fields for part in field.split(",")):
        return "random fields (R) are not allowed: every API replica must compute the same fire times"
    try:
        iterator = croniter(
            expression,
            datetime.now(UTC),
            second_at_beginning=len(fields) == 6,
            max_years_between_matches=_CRON_HORIZON_YEARS,
        )
        iterator.get_next(float)
    except (CroniterError, ValueError, TypeError, KeyError) as exc:
        return f"not a valid cron expression: {exc}"
    # Cron counts in whole seconds, so no cron fires more often than once a second.
    return ""


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo | None:
    if not name or len(name) > 64:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder of tzdata ("America")
        return None


def jitter_of(schedule_id: str, fire_ms: int, jitter_ms: int) -> int:
    """The fixed delay (0..jitter_ms) of one fire: the same on every replica."""
    if jitter_ms <= 0:
        return 0
    digest = hashlib.sha256(f"{schedule_id}:{fire_ms}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % (jitter_ms + 1)


def next_fire(timing: Timing, *, anchor_ms: int, after_ms: int) -> int:
    """The first fire time strictly after `after_ms`."""
    return next(fires_after(timing, anchor_ms=anchor_ms, after_ms=after_ms))


def fires_after(timing: Timing, *, anchor_ms: int, after_ms: int) -> Iterator[int]:
    """The fire times strictly after `after_ms`, in order, without end (the caller bounds it)."""
    if timing.interval_ms:
        step = timing.interval_ms
        k = max(1, (after_ms - anchor_ms) // step + 1)
        while True:
            yield anchor_ms + k * step
            k += 1
    yield from _cron_fires(timing, after_ms)


def _cron_fires(timing: Timing, after_ms: int) -> Iterator[int]:
    zone = _zone(timing.timezone) or UTC
    fields = timing.cron.split()
    seconds_first = len(fields) == 6
    hours = _hours(timing.cron, seconds_first)
    every_hour = "*" in hours or any(c in fields[-4] for c in "*/")
    start = datetime.fromtimestamp(after_ms / 1000, zone)
    iterator = croniter(timing.cron, start, second_at_beginning=seconds_first)
    while True:
        at = round(float(iterator.get_next(float)) * 1000)
        if at <= after_ms:
            continue
        local = datetime.fromtimestamp(at / 1000, zone)
        if local.fold == 1 and not every_hour and (local.hour - 1) % 24 not in hours:
            continue  # the repeated hour of a fall-back: a fixed-time fire already ran at its first pass
        yield at


@lru_cache(maxsize=256)
def _hours(cron: str, seconds_first: bool) -> frozenset[int | str]:
    """The hours a cron fires in ({"*"}: all 24)."""
    return frozenset(croniter.expand(cron, second_at_beginning=seconds_first)[0][1])


def next_fires(timing: Timing, *, anchor_ms: int, after_ms: int, count: int) -> tuple[int, ...]:
    """The next `count` fire times after `after_ms`."""
    found: list[int] = []
    for at in fires_after(timing, anchor_ms=anchor_ms, after_ms=after_ms):
        found.append(at)
        if len(found) >= count:
            break
    return tuple(found)
