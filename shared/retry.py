"""What happens after a failed run: retry after a backoff, or end the job (and dead-letter it).

The per-category defaults are those of Sentinel's original design — network 3 retries after 5 s,
timeout 2 after 10 s, browser 2 after 3 s, system 1 after 60 s, validation none. A failed
assertion is a test result: it is retried only when the job itself asked for attempts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from shared.model import ErrorCategory, JobError, JobOptions
from shared.settings import QueueSettings


@dataclass(frozen=True)
class CategoryPolicy:
    retries: int
    delay_ms: int


DEFAULT_POLICIES: dict[ErrorCategory, CategoryPolicy] = {
    ErrorCategory.NETWORK: CategoryPolicy(3, 5_000),
    ErrorCategory.TIMEOUT: CategoryPolicy(2, 10_000),
    ErrorCategory.BROWSER: CategoryPolicy(2, 3_000),
    ErrorCategory.SYSTEM: CategoryPolicy(1, 60_000),
    ErrorCategory.VALIDATION: CategoryPolicy(0, 0),
    ErrorCategory.POLICY: CategoryPolicy(0, 0),
    ErrorCategory.ASSERTION: CategoryPolicy(0, 0),
}

#: Categories that never retry, whatever the job asks.
NEVER_RETRY = frozenset({ErrorCategory.VALIDATION, ErrorCategory.POLICY})


@dataclass(frozen=True)
class Decision:
    retry: bool
    delay_ms: int = 0


def attempts_allowed(error: JobError, options: JobOptions, settings: QueueSettings) -> int:
    """How many runs in all a job may have for this kind of error."""
    if error.category in NEVER_RETRY:
        return 1
    if options.max_attempts:
        return options.max_attempts
    if error.category is ErrorCategory.ASSERTION:
        return 1
    policy = DEFAULT_POLICIES.get(error.category)
    if policy is None:  # unknown: the queue's default
        return settings.default_attempts
    return min(settings.default_attempts, 1 + policy.retries) if policy.retries else 1


def backoff_ms(
    attempt: int, error: JobError, options: JobOptions, settings: QueueSettings, *, jitter: float = 0.1
) -> int:
    """Delay before run `attempt + 1`: the base doubled for each run so far, ±jitter, capped."""
    policy = DEFAULT_POLICIES.get(error.category)
    base = options.backoff_ms or (policy.delay_ms if policy and policy.delay_ms else settings.backoff_delay_ms)
    delay = min(base * 2 ** max(attempt - 1, 0), settings.backoff_max_ms)
    if jitter:
        delay = int(delay * random.uniform(1 - jitter, 1 + jitter))
    return max(int(delay), 0)


def decide(attempt: int, error: JobError, options: JobOptions, settings: QueueSettings) -> Decision:
    """Retry after a backoff while the job has attempts left for this error, else end it."""
    if attempt < attempts_allowed(error, options, settings):
        return Decision(retry=True, delay_ms=backoff_ms(attempt, error, options, settings))
    return Decision(retry=False)
