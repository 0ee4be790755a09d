"""What every HTTP handler reaches through its request: the API's queue and stores, and the caller.

`Backend` holds the same objects the gRPC servicers are built with (one queue, one stream hub,
one sealer, one artifact store), so both front doors act on the same state through the same
domain functions. The caller is set by the auth middleware (`api_service.http.auth`) before any
handler runs; a handler that finds none fails closed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from aiohttp import web

from shared import access
from shared.access import Keys, Principal
from shared.alerts.guard import PUBLIC_ONLY
from shared.artifact_store import ArtifactStore
from shared.direct.backend import JobsBackend, QueueBackend
from shared.errors import UnauthenticatedError
from shared.navigation_policy import NavigationPolicy
from shared.queue import Queue
from shared.sealed import Sealer
from shared.streams import StreamHub
from shared.submit_checks import SubmitChecks

#: Seconds between SSE keep-alive comments.
KEEPALIVE_S = 15.0
#: The dashboard's static files (package data; built in api_service/dashboard/).
DASHBOARD_DIR = Path(__file__).resolve().parent.parent / "dashboard"


@dataclass(frozen=True)
class Backend:
    queue: Queue
    hub: StreamHub
    keys: Keys | None  # None: auth is disabled
    sealer: Sealer | None = None
    store: ArtifactStore | None = None
    cors_origins: frozenset[str] = frozenset()
    keepalive_s: float = KEEPALIVE_S
    dashboard: Path = DASHBOARD_DIR
    #: Where submits, status, progress, cancels and lists go (None: the queue; see shared.direct.backend).
    jobs_backend: JobsBackend | None = None
    #: What a schedule's notification may target (SENTINEL_WEBHOOK_ALLOW), as the gRPC servicers check it.
    webhook_policy: NavigationPolicy = PUBLIC_ONLY

    @property
    def jobs(self) -> JobsBackend:
        return self.jobs_backend or QueueBackend(self.queue, self.hub)

    @cached_property
    def checks(self) -> SubmitChecks:
        """Submits checked and sealed, the same body once (`shared.submit_checks`)."""
        return SubmitChecks(self.sealer)


BACKEND = web.AppKey("sentinel_backend", Backend)
CALLER = web.RequestKey("sentinel_caller", Principal)
#: Admits the request's caller again (its key as the keys file holds it now); raises when it no longer may.
ADMIT: web.RequestKey[Callable[[], Principal]] = web.RequestKey("sentinel_admit")


def backend(request: web.Request) -> Backend:
    return request.app[BACKEND]


def caller(request: web.Request) -> Principal:
    """The caller the auth middleware admitted (UnauthenticatedError if none did: fail closed)."""
    if CALLER not in request:
        raise UnauthenticatedError("this request was not authenticated")
    return request[CALLER]


def tenant(request: web.Request) -> str:
    return caller(request).tenant


def figures_scope(request: web.Request) -> str | None:
    return access.figures_scope(caller(request))
