"""The navigation guard: what a test's page may reach on the network.

A test runs someone else's script inside the executor's network. A guarded browser context is
checked at two points, both after DNS resolution (the rules: executor_service/navigation_policy.py):

1. **In the browser.** Every request the context routes — navigations, frames, images, scripts,
   fetch/XHR — and every WebSocket handshake is checked before it leaves the browser; a refused
   one is aborted there (never sent) and recorded, an unresolvable one fails as a network error.
2. **On the way out.** All of the context's traffic goes through its own egress proxy
   (executor_service/egress.py), which checks again and connects only to the addresses it
   checked. That catches what the browser does not route (each hop of a redirect) and DNS
   answers that change after the first check (rebinding).

The runner turns a recorded refusal into `NavigationRefused` (category POLICY, never retried).
Responses are not touched, so streaming (server-sent events, downloads) works as without the
guard. Nothing here is module-global: a context's guard travels with it in its `Session`, and
the egress proxies still closing belong to whoever owns the browser (`ClosingProxies`). This
module never raises out of a route handler and never logs request bodies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from playwright.async_api import Browser, BrowserContext, Route, WebSocketRoute
from playwright.async_api import Error as PlaywrightError

from executor_service.egress import EgressProxy
from executor_service.navigation_policy import NavigationPolicy, Verdict

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
        """Record a refused request (the browser's routes and the egress proxy both report here)."""
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

    async def _verdict(self, url: str, *, websocket: bool = False) -> Verdict | None:
        """The policy's verdict, or None when the host cannot be resolved (a network error, not a policy one)."""
        try:
            return await self.policy.vet(url, websocket=websocket)
        except (OSError, TimeoutError, UnicodeError):
            return None

    async def on_route(self, route: Route) -> None:
        url = route.request.url
        try:
            verdict = await self._verdict(url)
            if verdict is None:
                await route.abort("namenotresolved")
            elif verdict.reason is not None:
                self.refuse(url, verdict.reason)
                await route.abort("blockedbyclient")
            else:
                await route.continue_()  # on through the egress proxy, which checks again as it connects
        except PlaywrightError as exc:
            log.debug("guarded request %s failed: %s", url[:300], exc)
            with contextlib.suppress(PlaywrightError):  # the page or context may already be gone
                await route.abort("failed")

    async def on_websocket(self, ws: WebSocketRoute) -> None:
        try:
            verdict = await self._verdict(ws.url, websocket=True)
            if verdict is not None and verdict.reason is not None:
                self.refuse(ws.url, verdict.reason)
                await ws.close(code=1008, reason="refused by the navigation guard")
                return
            ws.connect_to_server()
        except PlaywrightError as exc:
            log.debug("guarded websocket %s failed: %s", ws.url[:300], exc)


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

    Its traffic goes through an egress proxy of its own, closed (through `closing`) when the
    context closes. Service workers are blocked: they could fetch past the context's routes.
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
    try:
        await context.route("**/*", guard.on_route)
        await context.route_web_socket(re.compile(".*"), guard.on_websocket)
    except BaseException:
        await context.close()
        raise
    return Session(context, guard)
