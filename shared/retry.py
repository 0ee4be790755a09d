"""What happens after a failed run: retry after a backoff, or end the job (and dead-letter it).

The per-category defaults (in `shared.settings.DEFAULT_RETRY_POLICIES`) are those of Sentinel's
original design — network 3 retries after 5 s, timeout 2 after 10 s, browser 2 after 3 s, system 1
after 60 s, validation none — each overridable by QUEUE_RETRY_<CATEGORY>. A failed assertion is a
test result: it is retried only when the job itself asked for attempts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from shared.model import ErrorCategory, JobError, JobOptions
from shared.settings import QueueSettings

#: Categories that never retry, whatever the job or the configuration asks.
NEVER_RETRY = frozenset({ErrorCategory.VALIDATION, ErrorCategory.POLICY})


@dataclass(frozen=True)
class Decision:
    retry: bool
    delay_ms: int = 0


def attempts_allowed(error: JobError, options: JobOptions, settings: QueueSettings) -> int:
    """How many runs in all a job may have for this kind of error.

    The job's own `max_attempts` wins for every retryable category (and is the only way a failed
    assertion is retried); otherwise the category's retries (QUEUE_RETRY_<CATEGORY>) plus the first
    run; an error of unknown kind gets QUEUE_DEFAULT_ATTEMPTS.
    """
    if error.category is None or error.category in NEVER_RETRY:  # None: a cancel, never run again
        return 1
    if options.max_attempts:
        return options.max_attempts
    if error.category is ErrorCategory.ASSERTION:
        return 1
    policy = settings.retry_policies.get(error.category.value)
    if policy is None:
        return settings.default_attempts
    return 1 + policy[0]


def backoff_ms(
    attempt: int, error: JobError, options: JobOptions, settings: QueueSettings, *, jitter: float = 0.1
) -> int:
    """Delay before run `attempt + 1`: the base doubled for each run so far, ±jitter, capped."""
    policy = settings.retry_policies.get(error.category.value) if error.category else None
    base = options.backoff_ms or (policy[1] if policy and policy[1] else settings.backoff_delay_ms)
    delay = min(base * 2 ** max(attempt - 1, 0), settings.backoff_max_ms)
    if jitter:
        delay = int(delay * random.uniform(1 - jitter, 1 + jitter))
    return max(int(delay), 0)


def decide(attempt: int, error: JobError, options: JobOptions, settings: QueueSettings) -> Decision:
    """Retry after a backoff while the job has attempts left for this error, else end it."""
    if attempt < attempts_allowed(error, options, settings):
        return Decision(retry=True, delay_ms=backoff_ms(attempt, error, options, settings))
    return Decision(retry=False)
