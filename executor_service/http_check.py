"""API checks: the `request` step, sent through Playwright's `APIRequestContext`.

A test that mixes pages and requests sends its requests with its browser context's own client
(`context.request`), so they share the page's cookies both ways. A test of request steps only opens
no browser context at all: `open_api_session` gives it a standalone client (`playwright.request`)
with its own cookie jar, so a login request's cookie still reaches the next request.

The navigation guard checks every request and every redirect hop: Playwright is told to follow no
redirect (`max_redirects=0`) and each `Location` is checked by the navigation policy before it is
requested; a refused hop fails the step as a refused navigation does (POLICY, never retried). A
standalone session also sends everything through an egress proxy of its own
(executor_service/egress.py), like a browser context does, so a DNS answer that changes after the
check cannot take a request elsewhere. A redirect to another origin does not carry the step's
secret headers, nor `Authorization` or `Cookie`, along.

Secret header values arrive here opened (the runner opens them right before the step). They are
never logged and never put into an error: every message here is made of the step's method, URL,
the response's status and body excerpts, never of Playwright's error text beyond its first line
(its call log lists the request's headers). The runner also masks every secret value in what a
step reports, for a server that echoes one back.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from playwright._impl._errors import TargetClosedError
from playwright.async_api import APIRequestContext, APIResponse, Playwright
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from executor_service.egress import EgressProxy
from executor_service.guard import Guard, Refusal
from executor_service.navigation_policy import NavigationPolicy
from shared.errors import AssertionFailure, NavigationRefused, RequestFailed
from shared.json_checks import compile_path, describe_value, json_equal, parse_literal, values_at
from shared.model import Request

__all__ = ["REDIRECT_STATUSES", "Answer", "ApiSession", "check", "exchange", "open_api_session"]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: Headers that belong to the origin they were given for: a redirect elsewhere drops them.
_ORIGIN_BOUND = frozenset({"authorization", "cookie"})
#: The header the egress proxy marks its own answers with (a refusal, an unreachable target).
_GUARD_HEADER = "x-sentinel-guard"
#: How much of a response body a failure message shows.
MAX_EXCERPT_CHARS = 200
_FETCH_PREFIX = "APIRequestContext.fetch: "


@dataclass(frozen=True)
class ApiSession:
    """The HTTP client of a test whose steps are all requests: no browser context at all.

    Attributes:
        request: A standalone `APIRequestContext` with its own cookie jar.
        guard: Checks every request and redirect hop (None: unguarded, tests only).
        egress: The egress proxy every request goes through (None when unguarded).
    """

    request: APIRequestContext
    guard: Guard | None = None
    egress: EgressProxy | None = None

    async def close(self) -> None:
        """Dispose of the client, then close its egress proxy."""
        try:
            await self.request.dispose()
        finally:
            if self.egress is not None:
                await self.egress.close()


async def open_api_session(playwright: Playwright, policy: NavigationPolicy | None) -> ApiSession:
    """A standalone request client guarded by `policy` (None: unguarded, tests only)."""
    if policy is None:
        return ApiSession(await playwright.request.new_context())
    guard = Guard(policy)
    egress = EgressProxy(policy, refused=guard.refuse, failed=guard.unreachable)
    proxy = await egress.start()
    try:
        client = await playwright.request.new_context(proxy={"server": proxy})
    except BaseException:
        await egress.close()
        raise
    return ApiSession(client, guard, egress)


@dataclass(frozen=True)
class Answer:
    """The final response of a request and its redirects."""

    status: int
    url: str
    body: bytes


async def check(
    client: APIRequestContext,
    guard: Guard | None,
    action: Request,
    *,
    url: str,
    headers: Mapping[str, str],
    timeout_ms: int,
    statuses: list[int],
) -> None:
    """Send the step's request and check its final response against the step's expectations.

    Args:
        client: The APIRequestContext to send with.
        guard: Checks the URL and every redirect hop (None: unguarded).
        action: The validated step.
        url: The step's URL resolved against the definition's base URL.
        headers: The step's headers, secret values opened.
        timeout_ms: For the whole exchange, redirects included.
        statuses: The final status is appended here as soon as it is known, failing or not.

    Raises:
        AssertionFailure: an expectation does not hold (or too many redirects).
        NavigationRefused: the guard refused the URL or a redirect hop.
        RequestFailed: no answer (refused connection, reset, unresolvable host).
        TimeoutError: no final answer within `timeout_ms`.
    """
    answer = await exchange(
        client,
        guard,
        method=action.method,
        url=url,
        headers=headers,
        body=action.body,
        secret=frozenset(name.lower() for name in action.secret_headers),
        timeout_ms=timeout_ms,
        max_redirects=action.max_redirects,
    )
    statuses.append(answer.status)
    expected = action.expect_status
    if not (200 <= answer.status <= 299 if expected == 0 else answer.status == expected):
        raise AssertionFailure(f"expected status {expected or '2xx'}, got {answer.status}{_said(answer.body)}")
    if action.expect_body_contains:
        text = answer.body.decode("utf-8", "replace")
        if action.expect_body_contains not in text:
            raise AssertionFailure(f"body does not contain {action.expect_body_contains!r}{_said(answer.body)}")
    if action.expect_json:
        # Off the event loop: a big body or a costly filter must not stall the other jobs.
        failure = await asyncio.to_thread(_json_failure, action, answer.body)
        if failure is not None:
            raise AssertionFailure(failure)


async def exchange(
    client: APIRequestContext,
    guard: Guard | None,
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: str,
    secret: frozenset[str],
    timeout_ms: int,
    max_redirects: int,
) -> Answer:
    """Send a request and follow its redirects (at most `max_redirects`), checking every hop.

    A 303 (and a 301/302 answering a POST) turns the next hop into a GET without a body, as
    browsers do. Raises as `check` does.
    """
    first = f"{method} {url[:300]}"
    deadline = time.monotonic() + timeout_ms / 1000
    for _ in range(max_redirects + 1):
        await _vet(guard, url)
        remaining_ms = int((deadline - time.monotonic()) * 1000)
        if remaining_ms <= 0:
            raise TimeoutError(f"{first}: no answer within {timeout_ms} ms")
        response = await _fetch(
            client, guard, method=method, url=url, headers=headers, body=body, timeout_ms=remaining_ms, total=timeout_ms
        )
        try:
            location = response.headers.get("location", "")
            if response.status not in REDIRECT_STATUSES or not location:
                return Answer(status=response.status, url=url, body=await response.body())
        finally:
            await response.dispose()
        target = urljoin(url, location)
        if (response.status == 303 and method != "HEAD") or (response.status in (301, 302) and method == "POST"):
            method, body = "GET", ""
        if _origin(target) != _origin(url):
            headers = {k: v for k, v in headers.items() if k.lower() not in secret | _ORIGIN_BOUND}
        url = target
    raise AssertionFailure(f"{first}: more than {max_redirects} redirects (the last to {url[:300]})")


async def _vet(guard: Guard | None, url: str) -> None:
    """Let `url` through the guard or raise: refused (recorded on the guard too), or unresolvable."""
    if guard is None:
        return
    try:
        verdict = await guard.policy.vet(url)
    except (OSError, TimeoutError, UnicodeError):
        raise RequestFailed(f"cannot resolve the host of {url[:300]}") from None
    if verdict.reason is not None:
        guard.refuse(url, verdict.reason)
        raise NavigationRefused(Refusal(url=url, reason=verdict.reason).describe())


async def _fetch(
    client: APIRequestContext,
    guard: Guard | None,
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: str,
    timeout_ms: int,
    total: int,
) -> APIResponse:
    try:
        response = await client.fetch(
            url,
            method=method,
            headers=dict(headers),
            data=body or None,
            timeout=timeout_ms,
            max_redirects=0,
            fail_on_status_code=False,
        )
    except PlaywrightTimeoutError:
        raise TimeoutError(f"{method} {url[:300]}: no answer within {total} ms") from None
    except TargetClosedError:
        raise  # the browser or the client went away: not the site's doing
    except PlaywrightError as exc:
        # The first line only: the call log after it lists the request's headers.
        reason = (exc.message.strip().splitlines() or [""])[0].removeprefix(_FETCH_PREFIX)
        raise RequestFailed(f"{method} {url[:300]}: {reason or 'no answer'}") from None
    if guard is not None and response.headers.get(_GUARD_HEADER) and (guard.refusals or guard.failures):
        # The egress proxy's own answer, not the site's: the guard has recorded why.
        await response.dispose()
        raise RequestFailed(f"{method} {url[:300]}: no answer")
    return response


def _json_failure(action: Request, body: bytes) -> str | None:
    """Why the body fails the step's first failing JSON expectation (None: all hold)."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return f"body is not JSON{_said(body)}"
    for expectation in action.expect_json:
        found = values_at(compile_path(expectation.path), document)
        if not found:
            return f"{expectation.path}: no value matches"
        if expectation.equals:
            got = found[0] if len(found) == 1 else found
            want = parse_literal(expectation.equals)
            if not json_equal(got, want):
                return f"{expectation.path}: expected {describe_value(want)}, got {describe_value(got)}"
    return None


def _said(body: bytes) -> str:
    """A short excerpt of a response body for a failure message ("" for an empty body)."""
    text = " ".join(body[: MAX_EXCERPT_CHARS * 4].decode("utf-8", "replace").split())
    if not text:
        return ""
    return f" (body: {text[:MAX_EXCERPT_CHARS]!r}{'…' if len(text) > MAX_EXCERPT_CHARS else ''})"


def _origin(url: str) -> tuple[str, str, Any]:
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port
