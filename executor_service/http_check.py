"""API checks: the `request` step, sent through one of executor_service.http_client's clients.

A test that mixes pages and requests sends its requests with its browser context's own client
(`PageClient`), so they share the page's cookies both ways. A test of request steps only opens no
browser context at all: `open_api_session` gives it an in-process client (`StandaloneClient`) with
its own cookie jar, so a login request's cookie still reaches the next request, and neither
Chromium nor Playwright's driver is involved.

The navigation guard checks every request and every redirect hop: the client follows no redirect
and each `Location` is checked by the navigation policy before it is requested; a refused hop fails
the step as a refused navigation does (POLICY, never retried). The check resolves the host once; a
standalone client connects only to the addresses it checked (a page's client leaves through its
context's egress proxy, which checks again), so a DNS answer that changes after the check cannot
take a request elsewhere. A redirect to another origin does not carry the step's secret headers,
nor `Authorization` or `Cookie`, along.

Secret header values arrive here opened (the runner opens them right before the step). They are
never logged and never put into an error: every message here is made of the step's method, URL,
the response's status and body excerpts, and the client's one-line reason (http_client keeps the
clients' own error text, which may list the request's headers, out). The runner also masks every
secret value in what a step reports, for a server that echoes one back.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from executor_service.guard import Guard, Refusal
from executor_service.http_client import HttpClient, Outgoing, Reply, StandaloneClient
from executor_service.navigation_policy import IpAddress, NavigationPolicy
from executor_service.redact import masked, masked_bytes
from shared.errors import AssertionFailure, NavigationRefused, RequestFailed
from shared.json_checks import compile_path, describe_value, json_equal, parse_literal, values_at
from shared.model import Request

__all__ = ["Answer", "ApiSession", "check", "exchange", "open_api_session"]

#: Headers that belong to the origin they were given for: a redirect elsewhere drops them.
_ORIGIN_BOUND = frozenset({"authorization", "cookie"})
#: The header the egress proxy marks its own answers with (a refusal, an unreachable target).
_GUARD_HEADER = "x-sentinel-guard"
#: How much of a response body a failure message shows.
MAX_EXCERPT_CHARS = 200


@dataclass(frozen=True)
class ApiSession:
    """The HTTP client of a test whose steps are all requests: no browser context at all.

    Attributes:
        request: An in-process client with its own cookie jar.
        guard: Checks every request and redirect hop (None: unguarded, tests only).
    """

    request: StandaloneClient
    guard: Guard | None = None

    async def close(self) -> None:
        """Close the client."""
        await self.request.close()


def open_api_session(policy: NavigationPolicy | None) -> ApiSession:
    """A standalone request client guarded by `policy` (None: unguarded, tests only)."""
    return ApiSession(StandaloneClient(), Guard(policy) if policy is not None else None)


@dataclass(frozen=True)
class Answer:
    """The final response of a request and its redirects; its headers' names in lower case."""

    status: int
    url: str
    body: bytes
    headers: Mapping[str, str]


async def check(
    client: HttpClient,
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
        client: The client to send with.
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
        max_redirects=action.max_redirects if action.follows_redirects else 0,
    )
    statuses.append(answer.status)
    # A server may echo the secret headers it got (as sent, or JSON-, HTML- or URL-escaped): masked
    # before any excerpt is cut or reshaped, since a secret cut in two is no longer found.
    secrets = tuple(value for name, value in headers.items() if value and action.is_secret(name))
    shown = masked_bytes(answer.body, secrets)
    expected = action.expect_status
    if not (200 <= answer.status <= 299 if expected == 0 else answer.status == expected):
        raise AssertionFailure(f"expected status {expected or '2xx'}, got {answer.status}{_said(shown)}")
    for name, wanted in action.expect_headers.items():
        got = answer.headers.get(name.lower())
        if got is None:
            raise AssertionFailure(f"expected header {name!r} to contain {wanted!r}, but the response has none")
        if wanted not in got:
            raise AssertionFailure(
                f"expected header {name!r} to contain {wanted!r}, got {_header_shown(name, got, secrets)}"
            )
    if action.expect_body_contains:
        text = answer.body.decode("utf-8", "replace")
        if action.expect_body_contains not in text:
            raise AssertionFailure(f"body does not contain {action.expect_body_contains!r}{_said(shown)}")
    if action.expect_json:
        # Off the event loop: a big body or a costly filter must not stall the other jobs.
        failure = await asyncio.to_thread(_json_failure, action, answer.body, shown, secrets)
        if failure is not None:
            raise AssertionFailure(failure)


def _header_shown(name: str, value: str, secrets: tuple[str, ...]) -> str:
    """A response header's value as a failure shows it: a cookie's value is a session's credential,
    so `Set-Cookie` shows the cookies' names only; any other value masked and cut."""
    if name.lower() == "set-cookie":
        return "cookies " + ", ".join(repr(line.split("=", 1)[0].strip()) for line in value.splitlines())
    return repr(masked(value, secrets)[:300])


async def exchange(
    client: HttpClient,
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
    """Send a request and follow its redirects (at most `max_redirects`; 0: none, the redirect is
    the answer), checking every hop.

    A 303 (and a 301/302 answering a POST) turns the next hop into a GET without a body, as
    browsers do. Raises as `check` does.
    """
    first = f"{method} {url[:300]}"
    deadline = time.monotonic() + timeout_ms / 1000
    for _ in range(max_redirects + 1):
        pinned = await _vet(guard, url)
        remaining_ms = int((deadline - time.monotonic()) * 1000)
        if remaining_ms <= 0:
            raise TimeoutError(f"{first}: no answer within {timeout_ms} ms")
        outgoing = Outgoing(method, url, headers, body, timeout_ms=remaining_ms, pinned=pinned)
        reply = await _send(client, guard, outgoing, total=timeout_ms)
        location = reply.location
        if not location or not max_redirects:
            return Answer(status=reply.status, url=url, body=reply.body, headers=reply.headers)
        target = urljoin(url, location)
        if (reply.status == 303 and method != "HEAD") or (reply.status in (301, 302) and method == "POST"):
            method, body = "GET", ""
        if _origin(target) != _origin(url):
            headers = {k: v for k, v in headers.items() if k.lower() not in secret | _ORIGIN_BOUND}
        url = target
    raise AssertionFailure(f"{first}: more than {max_redirects} redirects (the last to {url[:300]})")


async def _vet(guard: Guard | None, url: str) -> tuple[IpAddress, ...] | None:
    """Let `url` through the guard or raise: refused (recorded on the guard too), or unresolvable.

    Returns:
        The addresses checked, the only ones a request to `url` may connect to (None: unguarded).
    """
    if guard is None:
        return None
    try:
        verdict = await guard.policy.vet(url)
    except (OSError, TimeoutError, UnicodeError):
        raise RequestFailed(f"cannot resolve the host of {url[:300]}") from None
    if verdict.reason is not None:
        guard.refuse(url, verdict.reason)
        raise NavigationRefused(Refusal(url=url, reason=verdict.reason).describe())
    return verdict.addresses


async def _send(client: HttpClient, guard: Guard | None, request: Outgoing, *, total: int) -> Reply:
    named = f"{request.method} {request.url[:300]}"
    try:
        reply = await client.send(request)
    except TimeoutError:
        raise TimeoutError(f"{named}: no answer within {total} ms") from None
    except RequestFailed as exc:
        raise RequestFailed(f"{named}: {exc}") from None
    if guard is not None and reply.headers.get(_GUARD_HEADER) and (guard.refusals or guard.failures):
        # The egress proxy's own answer, not the site's: the guard has recorded why.
        raise RequestFailed(f"{named}: no answer")
    return reply


def _json_failure(action: Request, body: bytes, shown: bytes, secrets: tuple[str, ...]) -> str | None:
    """Why the body fails the step's first failing JSON expectation (None: all hold); `shown` is the
    body with `secrets` masked, for an excerpt, and a value quoted is masked before it is cut."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return f"body is not JSON{_said(shown)}"
    for expectation in action.expect_json:
        found = values_at(compile_path(expectation.path), document)
        if not found:
            return f"{expectation.path}: no value matches"
        if expectation.equals:
            got = found[0] if len(found) == 1 else found
            want = parse_literal(expectation.equals)
            if not json_equal(got, want):
                got_text = describe_value(got, mask=lambda text: masked(text, secrets))
                return f"{expectation.path}: expected {describe_value(want)}, got {got_text}"
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
