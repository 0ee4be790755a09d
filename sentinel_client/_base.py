"""What `Client` and `AsyncClient` share besides the RPC descriptions: options, `from_env`, waiting.

Each twin keeps only what must differ: blocking or awaited calls, and the loops around them.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Generic, Self, TypeVar

from sentinel_client._connection import DEFAULT_TIMEOUT, Connection, TLSConfig, check_target, options_from_env
from sentinel_client._retry import RetryPolicy
from sentinel_client.errors import ConfigError, WaitTimeout
from sentinel_client.models import Page, PartialListingWarning, ProgressEvent, Run

C = TypeVar("C")
DEFAULT_RETRIES = RetryPolicy()
Ch = TypeVar("Ch")


class ClientBase(Generic[Ch]):
    """The options of both clients.

    Args:
        target: the API's `host:port` (default `localhost:50051`), `[v6 address]:port`, or a gRPC
            target (`dns:///host:port`, `unix:/path`); a URL (`http://…`) is a ConfigError.
        api_key: sent as `authorization: Bearer <key>` on every call (see `sentinel keys create`).
        tls: True for TLS with the system's roots, or a `TLSConfig` (CA, client certificate for mTLS).
        retries: how calls that are safe to repeat are retried on UNAVAILABLE: a `RetryPolicy`, or
            a number of retries after the first attempt (0: none). Default: 4 attempts over ~3.5 s.
        timeout: seconds each call may take (None: no limit); streams and downloads have none.
        interceptors: extra gRPC client interceptors (tracing, say): `grpc.*ClientInterceptor`s for
            `Client`, `grpc.aio.*ClientInterceptor`s for `AsyncClient`.
        stream_retries: how a stream is reopened from its cursor on UNAVAILABLE (None: as `retries`);
            a long policy here rides out an API restart while following, and still lets a call to an
            API that is not there fail after `retries`.
    """

    def __init__(
        self,
        target: str | None = None,
        *,
        api_key: str | None = None,
        tls: bool | TLSConfig = False,
        retries: RetryPolicy | int = DEFAULT_RETRIES,
        timeout: float | None = DEFAULT_TIMEOUT,
        interceptors: Sequence[Any] = (),
        stream_retries: RetryPolicy | int | None = None,
    ) -> None:
        self._conn = Connection.of(
            target,
            api_key=api_key,
            tls=tls,
            retries=retries,
            timeout=timeout,
            interceptors=interceptors,
            stream_retries=stream_retries,
        )
        self._channel: Ch = self._open_channel()
        self._closed = False

    def _open_channel(self) -> Ch:
        raise NotImplementedError

    def _live_channel(self) -> Ch:
        """The channel, while the client is open (gRPC's own error for a closed one names no client).

        Raises:
            ConfigError: the client has been closed.
        """
        if self._closed:
            raise ConfigError(f"{self!r} is closed: make a new client (or call it inside its `with` block)")
        return self._channel

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **options: Any) -> Self:
        """A client configured as the `sentinel` CLI is: `SENTINEL_API`, `SENTINEL_API_KEY`, `SENTINEL_TLS`,
        `SENTINEL_TLS_CA`, `SENTINEL_TLS_CLIENT_CERT` / `_KEY`, `SENTINEL_TLS_SERVER_NAME`.

        `environ`: where to read them (None: `os.environ`, read when called; never a default value,
        which help() and generated docs would print with every secret in it). `options` (the
        constructor's keywords) win over the environment; a `target` of None is ignored.

        Raises:
            ConfigError: a variable is malformed (named in the message).
        """
        given = {name: value for name, value in options.items() if not (name == "target" and value is None)}
        settings = options_from_env(os.environ if environ is None else environ)
        if "target" not in given:
            check_target(settings["target"], "SENTINEL_API")  # named as the user set it
        return cls(**{**settings, **given})

    @property
    def target(self) -> str:
        """The API's address, as the client dials it (`host:port`, or a gRPC target)."""
        return self._conn.target

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._conn.target!r})"


def warn_partial(page: Page[Any], warned: bool) -> bool:
    """Warn the first time an iterated listing comes back partial (`PartialListingWarning`, at the
    caller's loop); whether the iteration has warned now."""
    if page.partial and not warned:
        warnings.warn(PartialListingWarning(page.partial), stacklevel=3)
        return True
    return warned


class Unseen:
    """Drops what a reopened StreamRun repeats: it replays every test's events from the start."""

    def __init__(self) -> None:
        self._seen: set[tuple[str, str]] = set()

    def __call__(self, item: ProgressEvent | Run) -> bool:
        if isinstance(item, Run):
            return True
        key = (item.job_id, item.cursor)
        if key in self._seen:
            return False
        self._seen.add(key)
        return True


class HandleBase(Generic[C]):
    """A job known by its id, and the client to ask about it."""

    def __init__(self, client: C, job_id: str, *, duplicate: bool = False) -> None:
        self._client = client
        self.id = job_id
        #: An earlier submit with the same idempotency key made this job; this submit enqueued nothing.
        self.duplicate = duplicate

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id!r})"


class Waiting:
    """One `wait(job_id, timeout)` (or `wait_run`: `kind` "run"): its deadline, the last state seen,
    and the error when time runs out."""

    def __init__(self, job_id: str, timeout: float | None, *, kind: str = "job") -> None:
        self.job_id = job_id
        self.kind = kind
        self.timeout = timeout
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.last_state: str | None = None

    def saw(self, event: ProgressEvent | Run) -> None:
        self.last_state = event.state.value

    def expired(self) -> WaitTimeout | None:
        """The error to raise for a DeadlineExceededError met while waiting: with a timeout, the only
        deadline the wait's stream has is the wait's own (gRPC's clock may call it a moment early)."""
        if self.timeout is None:
            return None
        return WaitTimeout(self.job_id, self.timeout, self.last_state, kind=self.kind)
