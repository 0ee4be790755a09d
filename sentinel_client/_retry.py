"""When a failed call is tried again, and after how long: one policy for both clients.

Only UNAVAILABLE is retried (the API or its Redis could not be reached, or the API is restarting),
unless the API says not to (`grpc-retry-pushback-ms` negative: its artifact store did not answer,
which it has asked again itself; a non-negative value is the pause), and only for calls that are
safe to repeat: reads, cancel, pause/resume, reopening a stream from
its cursor, a download (started over), and submit, which always carries an idempotency key. An
answer such as INVALID_ARGUMENT or NOT_FOUND would only come again, so it is raised at once.
A stream is also reopened after CANCELLED: the SDK never cancels a stream it still reads, so that
came from the server's gRPC (which sheds calls arriving faster than it takes them up) or a proxy
between, and the stream resumes from its cursor.
The clients own the loops (one blocking, one async); the decisions live here, in `Retrying`.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import grpc

from sentinel_client.errors import (
    CallCancelledError,
    ConfigError,
    DeadlineExceededError,
    SentinelError,
    UnavailableError,
    from_rpc_error,
)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter for calls that are safe to repeat.

    The default makes 4 attempts with pauses of about 0.5, 1 and 2 s between them (each ±20%).
    A stream counts its attempts from its last event, so a long stream survives several outages.

    Attributes:
        attempts: tries in all, the first included (1: never retry).
        initial_backoff: seconds before the second attempt.
        max_backoff: the longest pause, in seconds.
        multiplier: how much each pause grows.
        jitter: each pause is scaled by a random factor in [1 - jitter, 1 + jitter].
    """

    attempts: int = 4
    initial_backoff: float = 0.5
    max_backoff: float = 4.0
    multiplier: float = 2.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigError(f"RetryPolicy.attempts must be at least 1, got {self.attempts}")
        if min(self.initial_backoff, self.max_backoff) < 0 or self.multiplier < 1 or not 0 <= self.jitter < 1:
            raise ConfigError(f"RetryPolicy needs backoffs >= 0, multiplier >= 1 and 0 <= jitter < 1: {self}")

    @classmethod
    def of(cls, retries: RetryPolicy | int) -> RetryPolicy:
        """A policy from itself, or from a number of retries after the first attempt (0: none)."""
        if isinstance(retries, RetryPolicy):
            return retries
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ConfigError(f"retries must be a RetryPolicy or a number of retries >= 0, got {retries!r}")
        return cls(attempts=retries + 1)

    def backoff(self, failures: int) -> float:
        """The pause after the `failures`-th failed attempt in a row (1, 2, ...)."""
        base = min(self.max_backoff, self.initial_backoff * self.multiplier ** (failures - 1))
        return base * random.uniform(1 - self.jitter, 1 + self.jitter)


#: A stream's default: it reconnects from its cursor for about a minute (16 attempts, pauses up to
#: 5 s), through an API restart or a rolling deploy; unary calls keep `RetryPolicy()`, so an API that
#: is not there at all is reported within seconds.
STREAM_RETRIES = RetryPolicy(attempts=16, max_backoff=5.0)


def stream_policy(retries: RetryPolicy | int, stream_retries: RetryPolicy | int | None) -> RetryPolicy:
    """A stream's policy: `stream_retries` when given; else `retries` when the client set its own
    (0: no retries, streams included); else `STREAM_RETRIES`."""
    if stream_retries is not None:
        return RetryPolicy.of(stream_retries)
    policy = RetryPolicy.of(retries)
    return STREAM_RETRIES if policy == RetryPolicy() else policy


class Retrying:
    """One call's attempts: whether a failure is tried again, and the pause before it.

    Args:
        policy: the client's policy.
        safe: the call may be repeated; False means every failure is raised at once.
        deadline: a `time.monotonic()` past which nothing is tried again (`wait(timeout)`).
        stream: a stream reopened from its cursor (CANCELLED is tried again as well).
    """

    def __init__(self, policy: RetryPolicy, *, safe: bool, deadline: float | None = None, stream: bool = False) -> None:
        self.policy = policy
        self.safe = safe
        self.deadline = deadline
        self.retried: tuple[type[SentinelError], ...] = (
            (UnavailableError, CallCancelledError) if stream else (UnavailableError,)
        )
        self.failures = 0

    def progressed(self) -> None:
        """A stream delivered an item: the next outage gets all its attempts again."""
        self.failures = 0

    def timeout(self, default: float | None) -> float | None:
        """The next attempt's deadline in seconds: `default`, cut short by the overall deadline.

        Raises:
            DeadlineExceededError: the overall deadline has passed.
        """
        if self.deadline is None:
            return default
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceededError("the deadline passed")
        return left if default is None else min(default, left)

    def failed(self, exc: Exception) -> float:
        """The pause before trying again after `exc`; raises the SDK's error when there is no next try."""
        error = from_rpc_error(exc) if isinstance(exc, grpc.RpcError) else exc
        self.failures += 1
        pushback = error.pushback_ms if isinstance(error, SentinelError) else None
        last = self.failures >= self.policy.attempts or (pushback is not None and pushback < 0)
        if not self.safe or not isinstance(error, self.retried) or last:
            if error is exc:
                raise exc
            raise error from exc
        pause = self.policy.backoff(self.failures) if pushback is None else pushback / 1000
        if self.deadline is not None:
            pause = max(0.0, min(pause, self.deadline - time.monotonic()))
        return pause
