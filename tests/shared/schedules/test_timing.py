"""Fire-time arithmetic: cron with 5 and 6 fields, time zones across DST changes, interval anchors,
jitter that every replica computes alike, and the timing rules naming their fields."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from shared.schedules.timing import Timing, jitter_of, next_fire, next_fires, shortest_gap_ms, timing_violations

BERLIN = ZoneInfo("Europe/Berlin")


def ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def local(at: int, zone: ZoneInfo = BERLIN) -> str:
    return datetime.fromtimestamp(at / 1000, zone).isoformat()


def test_five_field_cron_fires_on_minutes() -> None:
    start = ms(datetime(2026, 1, 1, 10, 2, 30, tzinfo=UTC))
    fires = next_fires(Timing(cron="*/5 * * * *"), anchor_ms=0, after_ms=start, count=3)
    assert [local(f, ZoneInfo("UTC")) for f in fires] == [
        "2026-01-01T10:05:00+00:00",
        "2026-01-01T10:10:00+00:00",
        "2026-01-01T10:15:00+00:00",
    ]


def test_six_field_cron_has_seconds_first() -> None:
    start = ms(datetime(2026, 1, 1, 10, 0, 0, 500_000, tzinfo=UTC))
    fires = next_fires(Timing(cron="*/15 * * * * *"), anchor_ms=0, after_ms=start, count=3)
    assert [f - ms(datetime(2026, 1, 1, 10, 0, tzinfo=UTC)) for f in fires] == [15_000, 30_000, 45_000]
    # Strictly after: a fire time is never its own successor.
    assert next_fire(Timing(cron="* * * * * *"), anchor_ms=0, after_ms=fires[0]) == fires[0] + 1000


def test_cron_runs_in_its_time_zone() -> None:
    start = ms(datetime(2026, 7, 1, tzinfo=UTC))
    fire = next_fire(Timing(cron="0 9 * * *", timezone="Europe/Berlin"), anchor_ms=0, after_ms=start)
    assert local(fire) == "2026-07-01T09:00:00+02:00"
    assert datetime.fromtimestamp(fire / 1000, UTC).hour == 7


def test_spring_forward_gap_fires_once_after_it() -> None:
    # 2026-03-29: Berlin clocks jump from 02:00 to 03:00; there is no 02:30 that night.
    start = ms(datetime(2026, 3, 28, 12, 0, tzinfo=BERLIN))
    fires = next_fires(Timing(cron="30 2 * * *", timezone="Europe/Berlin"), anchor_ms=0, after_ms=start, count=2)
    assert [local(f) for f in fires] == ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]


def test_fall_back_fires_a_fixed_time_once_and_a_frequent_cron_through_both_hours() -> None:
    # 2026-10-25: Berlin clocks go back from 03:00 to 02:00; 02:30 happens twice.
    start = ms(datetime(2026, 10, 24, 12, 0, tzinfo=BERLIN))
    daily = next_fires(Timing(cron="30 2 * * *", timezone="Europe/Berlin"), anchor_ms=0, after_ms=start, count=2)
    assert [local(f) for f in daily] == ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]
    start = ms(datetime(2026, 10, 25, 1, 45, tzinfo=BERLIN))
    half_hourly = next_fires(
        Timing(cron="*/30 * * * *", timezone="Europe/Berlin"), anchor_ms=0, after_ms=start, count=4
    )
    assert [local(f) for f in half_hourly] == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T02:30:00+01:00",
    ]
    assert all(b - a == 1_800_000 for a, b in itertools.pairwise(half_hourly))


@pytest.mark.parametrize(
    ("cron", "at_two"),
    [
        ("0 * * * *", ["02:00:00+02:00", "02:00:00+01:00"]),
        ("0 0-23 * * *", ["02:00:00+02:00", "02:00:00+01:00"]),  # every hour, written as a range
        ("0 1-3 * * *", ["02:00:00+02:00", "02:00:00+01:00"]),  # hourly through the repeated hour
        ("0 0,1,2,3 * * *", ["02:00:00+02:00", "02:00:00+01:00"]),
        ("0 2,14 * * *", ["02:00:00+02:00"]),  # fixed times: once
        ("0 2-3 * * *", ["02:00:00+02:00"]),  # begins in the repeated hour: its 02:00 is a fixed time
        ("0 0 2 * * *", ["02:00:00+02:00"]),  # six fields, seconds first
        ("0 0 1-3 * * *", ["02:00:00+02:00", "02:00:00+01:00"]),
    ],
)
def test_fall_back_fires_in_real_time_a_cron_whose_hours_run_through_the_repeated_one(
    cron: str, at_two: list[str]
) -> None:
    start = ms(datetime(2026, 10, 25, 1, 30, tzinfo=BERLIN))
    fires = next_fires(Timing(cron=cron, timezone="Europe/Berlin"), anchor_ms=0, after_ms=start, count=3)
    assert [local(f)[11:] for f in fires if local(f).startswith("2026-10-25T02")] == at_two


def test_a_random_cron_is_refused_as_replicas_would_draw_other_fire_times() -> None:
    for cron in ("R * * * *", "r * * * *", "R/5 * * * *", "0 R(0-5) * * *", "0 0 * * R", "1 0 1 MAR FRI"):
        found = timing_violations(Timing(cron=cron), prefix="schedule.")
        refused = [v for v in found if v.field == "schedule.cron" and "random fields (R)" in v.description]
        assert bool(refused) is (cron != "1 0 1 MAR FRI"), (cron, found)  # a month or day name is no R


def test_a_time_zone_that_names_a_folder_of_zones_is_refused_not_an_error() -> None:
    for name in ("America", "Europe", "Etc", "America/Argentina"):
        found = timing_violations(Timing(interval_ms=1000, timezone=name), prefix="schedule.")
        assert [v.field for v in found] == ["schedule.timezone"], (name, found)


def test_interval_fires_count_from_the_anchor() -> None:
    timing = Timing(interval_ms=5000)
    anchor = 1_000_000
    assert next_fires(timing, anchor_ms=anchor, after_ms=anchor, count=3) == (1_005_000, 1_010_000, 1_015_000)
    # From any point, the next fire is on the anchor's grid; a fire time is never its own successor.
    assert next_fire(timing, anchor_ms=anchor, after_ms=1_012_345) == 1_015_000
    assert next_fire(timing, anchor_ms=anchor, after_ms=1_015_000) == 1_020_000
    assert next_fire(timing, anchor_ms=anchor, after_ms=0) == 1_005_000


def test_jitter_is_fixed_per_schedule_and_fire_time_and_within_bounds() -> None:
    offsets = [jitter_of("s-1", 1_000_000 + k * 1000, 500) for k in range(200)]
    assert offsets == [jitter_of("s-1", 1_000_000 + k * 1000, 500) for k in range(200)]  # every replica agrees
    assert all(0 <= o <= 500 for o in offsets)
    assert len(set(offsets)) > 50  # spread, not one constant
    assert offsets != [jitter_of("s-2", 1_000_000 + k * 1000, 500) for k in range(200)]
    assert jitter_of("s-1", 1_000_000, 0) == 0


@pytest.mark.parametrize(
    ("timing", "field", "words"),
    [
        (Timing(), "schedule.cron", "exactly one"),
        (Timing(cron="* * * * *", interval_ms=1000), "schedule.cron", "exactly one"),
        (Timing(interval_ms=999), "schedule.interval_ms", "between 1000"),
        (Timing(cron="* * * *"), "schedule.cron", "5 fields"),
        (Timing(cron="0 0 * * * * 2030"), "schedule.cron", "5 fields"),
        (Timing(cron="61 * * * *"), "schedule.cron", "not a valid cron"),
        (Timing(cron="0 0 30 2 *"), "schedule.cron", "not a valid cron"),
        (Timing(interval_ms=1000, timezone="Mars/Olympus"), "schedule.timezone", "IANA"),
        (Timing(interval_ms=1000, jitter_ms=1000), "schedule.jitter_ms", "at most 999"),
        (Timing(cron="0 0 * * *", jitter_ms=3_600_001), "schedule.jitter_ms", "at most 3600000 ms (1 h)"),
        # A cron's jitter must be less than the shortest gap between its fires, as an interval's is.
        (Timing(cron="0 * * * *", jitter_ms=3_600_000), "schedule.jitter_ms", "at most 3599999"),
        (Timing(cron="*/5 * * * *", jitter_ms=600_000), "schedule.jitter_ms", "shortest gap between the cron's fires"),
        (Timing(cron="* * * * * *", jitter_ms=5000), "schedule.jitter_ms", "at most 999 ms"),
        (Timing(cron="*/5 * * * * *", jitter_ms=3_000_000), "schedule.jitter_ms", "at most 4999 ms"),
        # The shortest gap, not the usual one: 30 min once a day.
        (Timing(cron="0,30 9 * * *", jitter_ms=1_800_000), "schedule.jitter_ms", "1800000 ms"),
    ],
)
def test_timing_rules_name_the_field(timing: Timing, field: str, words: str) -> None:
    found = timing_violations(timing, prefix="schedule.")
    assert any(v.field == field and words in v.description for v in found), found


def test_good_timings_pass() -> None:
    for timing in (
        Timing(cron="*/5 * * * *", timezone="Europe/Berlin"),
        Timing(cron="*/10 * * * * *"),
        Timing(interval_ms=1000, jitter_ms=999),
        Timing(cron="*/5 * * * *", jitter_ms=299_999),
        Timing(cron="0,30 9 * * *", timezone="America/New_York", jitter_ms=1_799_999),
        Timing(cron="0 9 * * 1-5", jitter_ms=3_600_000),
    ):
        assert timing_violations(timing, prefix="schedule.") == []


def test_the_shortest_gap_of_a_cron_is_found_over_its_next_fires() -> None:
    start = ms(datetime(2026, 1, 5, tzinfo=UTC))  # a Monday
    assert shortest_gap_ms(Timing(cron="*/10 9-17 * * 1-5"), after_ms=start) == 600_000
    assert shortest_gap_ms(Timing(cron="0 9 * * 1-5"), after_ms=start) == 86_400_000
    # It stops at the first gap short enough to refuse the jitter it is asked about: 00:00 → 01:00 → 12:00
    # → 00:00 next day; the first gap (1 h) is short enough for a 2 h question, before the 11 h one.
    daily = Timing(cron="0 0,1,12 * * *")
    assert shortest_gap_ms(daily, after_ms=start - 1, stop_at_ms=7_200_000) == 3_600_000
    assert shortest_gap_ms(daily, after_ms=start + 1, stop_at_ms=12 * 3_600_000) == 11 * 3_600_000
    assert shortest_gap_ms(daily, after_ms=start + 1) == 3_600_000  # without a stop, the shortest of all
    # Fewer than two fires within a year: no gap (and no limit but the hour).
    assert shortest_gap_ms(Timing(cron="0 0 29 2 *"), after_ms=ms(datetime(2029, 3, 1, tzinfo=UTC))) == 0
