"""The navigation guard: what a test's page may reach on the network.

A guarded browser context sends all of its traffic through an egress proxy of its own
(executor_service/egress.py): every navigation, frame, subresource, fetch/XHR, each hop of a
redirect (Chromium requests it anew) and every WebSocket handshake (a CONNECT tunnel). The proxy
resolves the host once, checks every address against the navigation policy
(executor_service/navigation_policy.py) and connects only to the addresses it checked, so a DNS
answer that changes after the check (rebinding) reaches nothing. A refused request is answered
`403` by the proxy, never sent, and recorded here; a target that cannot be reached fails in the
browser as a network error, and why is recorded here too.

The check is made once, at the proxy, and not also in the browser through Playwright's routes:
a route costs every request a round trip through the driver (about 15% of a short test's
throughput), and the proxy sees everything a route would, and redirect hops and DNS answers a
route cannot. Service workers are blocked: a context's workers would fetch for pages that are gone.

The runner turns a recorded refusal into `NavigationRefused` (category POLICY, never retried).
Responses are not touched, so streaming (server-sent events, downloads) works as without the
guard. Nothing here is module-global: a context's guard travels with it in its `Session`, and
the egress proxies still closing belong to whoever owns the browser (`ClosingProxies`). This
module never logs request bodies.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from playwright.async_api import Browser, BrowserContext

from executor_service.egress import EgressProxy
from executor_service.navigation_policy import NavigationPolicy

__all__ = ["ClosingProxies", "Guard", "NavigationPolicy", "Refusal", "Session", "open_guarded_context"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Refusal:
    url: str
    reason: str

    def describe(self) -> str:
        return f"navigation guard refused {self.url[:300]}: {self.reason}"


@dataclass(eq=False)
class Guard:
    """The guard of one browser context: checks its requests and keeps what it refused."""

    policy: NavigationPolicy
    refusals: list[Refusal] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def take_refusals(self) -> list[Refusal]:
        """The refusals since the last call (the runner asks after each step)."""
        taken, self.refusals = self.refusals, []
        return taken

    def refuse(self, url: str, reason: str) -> None:
        """Record a refused request (the egress proxy reports here)."""
        log.warning("navigation guard refused %s: %s", url[:300], reason)
        self.refusals.append(Refusal(url=url, reason=reason))

    def unreachable(self, url: str, detail: str) -> None:
        """Record why the egress proxy could not reach an allowed target (the browser sees a bare net error)."""
        log.info("egress could not reach %s: %s", url[:300], detail)
        self.failures.append(f"{url[:300]}: {detail}")

    def take_failures(self) -> list[str]:
        """What could not be reached since the last call, for the step's error message."""
        taken, self.failures = self.failures, []
        return taken


@dataclass(frozen=True)
class Session:
    """One test's browser context, with the guard that checks its requests.

    Attributes:
        context: The Playwright context; each session has its own.
        guard: Its guard, or None for an unguarded context (tests only).
    """

    context: BrowserContext
    guard: Guard | None = None

    async def close(self) -> None:
        """Close the context (its egress proxy, if any, then closes in the background)."""
        await self.context.close()


class ClosingProxies:
    """Egress proxies still closing after their contexts closed.

    A context closes its proxy in the background (a context can close without being asked: the
    browser died or was closed), so whoever owns the browser keeps one of these and waits on it
    (`settle`) when it stops the browser: no proxy outlives it.
    """

    def __init__(self) -> None:
        # Held so the tasks are not collected before they finish.
        self._tasks: set[asyncio.Task[None]] = set()

    def close(self, egress: EgressProxy) -> None:
        """Start closing `egress`."""
        task = asyncio.ensure_future(egress.close())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle(self) -> None:
        """Wait until every proxy being closed has closed."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


async def open_guarded_context(
    browser: Browser, policy: NavigationPolicy, *, closing: ClosingProxies, **options: Any
) -> Session:
    """A new context of `browser` (Playwright's `new_context` options) with every request guarded.

    Its traffic goes through an egress proxy of its own, which checks every request, closed
    (through `closing`) when the context closes. Service workers are blocked.
    """
    guard = Guard(policy)
    egress = EgressProxy(policy, refused=guard.refuse, failed=guard.unreachable)
    proxy = await egress.start()
    try:
        context = await browser.new_context(proxy={"server": proxy}, service_workers="block", **options)
    except BaseException:
        await egress.close()
        raise
    context.on("close", lambda _: closing.close(egress))
    return Session(context, guard)
