"""A loop's failures are logged once, then at most once a minute while they go on, then once as ended."""

from __future__ import annotations

import logging

import pytest

from shared.failures import Failures


def test_a_failing_loop_logs_its_first_failure_a_reminder_a_minute_and_its_recovery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    failures = Failures(logging.getLogger("loop"), "scheduler", clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="loop")
    failures.worked()  # nothing failed: nothing to say
    for _ in range(130):  # 65 s of failures, one every half second
        failures.failed(ConnectionError("refused"), again_in_s=0.5)
        now[0] += 0.5
    assert failures.failing
    failures.worked()
    failures.worked()
    assert not failures.failing
    assert [r.getMessage() for r in caplog.records] == [
        "scheduler failed, trying again in 0.5 s: refused",
        "scheduler still failing: 121 tries in 60 s, trying again in 0.5 s: refused",
        "scheduler works again after 130 failed tries in 65 s",
    ]
