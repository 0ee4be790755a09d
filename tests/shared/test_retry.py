from __future__ import annotations

import pytest

from shared.errors import ConfigError
from shared.model import ErrorCategory, JobError, JobOptions
from shared.retry import attempts_allowed, backoff_ms, decide
from shared.settings import QueueSettings

SETTINGS = QueueSettings()


def error(category: ErrorCategory) -> JobError:
    return JobError(category, "boom")


@pytest.mark.parametrize(
    ("category", "runs"),
    [
        (ErrorCategory.NETWORK, 4),
        (ErrorCategory.TIMEOUT, 3),
        (ErrorCategory.BROWSER, 3),
        (ErrorCategory.SYSTEM, 2),
        (ErrorCategory.VALIDATION, 1),
        (ErrorCategory.POLICY, 1),
        (ErrorCategory.ASSERTION, 1),
        (ErrorCategory.UNKNOWN, 3),  # QUEUE_DEFAULT_ATTEMPTS
    ],
)
def test_default_runs_per_category(category: ErrorCategory, runs: int) -> None:
    assert attempts_allowed(error(category), JobOptions(), SETTINGS) == runs
    if runs > 1:  # attempts count from 1: after run `runs - 1` there is one more
        assert decide(runs - 1, error(category), JobOptions(), SETTINGS).retry
    assert not decide(runs, error(category), JobOptions(), SETTINGS).retry


def test_the_jobs_max_attempts_wins_but_never_for_validation_or_policy() -> None:
    options = JobOptions(max_attempts=5)
    assert attempts_allowed(error(ErrorCategory.ASSERTION), options, SETTINGS) == 5
    assert attempts_allowed(error(ErrorCategory.NETWORK), options, SETTINGS) == 5
    assert attempts_allowed(error(ErrorCategory.VALIDATION), options, SETTINGS) == 1
    assert attempts_allowed(error(ErrorCategory.POLICY), options, SETTINGS) == 1


def test_backoff_doubles_from_the_category_delay_within_jitter_and_is_capped() -> None:
    network = error(ErrorCategory.NETWORK)
    assert [backoff_ms(n, network, JobOptions(), SETTINGS, jitter=0) for n in (1, 2, 3)] == [5000, 10000, 20000]
    for _ in range(200):
        assert 4500 <= backoff_ms(1, network, JobOptions(), SETTINGS) <= 5500
    assert backoff_ms(30, network, JobOptions(), SETTINGS, jitter=0) == SETTINGS.backoff_max_ms
    unknown = error(ErrorCategory.UNKNOWN)
    assert backoff_ms(2, unknown, JobOptions(), SETTINGS, jitter=0) == 2 * SETTINGS.backoff_delay_ms
    assert backoff_ms(3, network, JobOptions(backoff_ms=100), SETTINGS, jitter=0) == 400


def test_category_policies_are_configurable() -> None:
    settings = QueueSettings.from_env({"QUEUE_RETRY_NETWORK": "1:250", "QUEUE_RETRY_SYSTEM": "4"})
    assert attempts_allowed(error(ErrorCategory.NETWORK), JobOptions(), settings) == 2
    assert backoff_ms(1, error(ErrorCategory.NETWORK), JobOptions(), settings, jitter=0) == 250
    assert attempts_allowed(error(ErrorCategory.SYSTEM), JobOptions(), settings) == 5
    assert backoff_ms(1, error(ErrorCategory.SYSTEM), JobOptions(), settings, jitter=0) == 60_000
    with pytest.raises(ConfigError, match="QUEUE_RETRY_NETWORK must be <retries>:<delay ms>"):
        QueueSettings.from_env({"QUEUE_RETRY_NETWORK": "lots"})


def test_an_error_without_a_category_a_cancel_is_never_run_again() -> None:
    cancelled = JobError(None, "cancelled by request")
    assert attempts_allowed(cancelled, JobOptions(max_attempts=5), SETTINGS) == 1
    assert backoff_ms(1, cancelled, JobOptions(), SETTINGS, jitter=0) == SETTINGS.backoff_delay_ms
