"""The two HTTP clients a request step sends with, behind one small interface.

- `PageClient`: a browser context's own client (`context.request`, Playwright's
  `APIRequestContext`), for a test that also has a page: its requests and the page share cookies
  both ways.
- `StandaloneClient`: an in-process aiohttp client with its own cookie jar, for a test of request
  steps only. It needs neither Chromium nor Playwright's driver: the request goes from this
  process, where the page client's goes through the driver (a Node process), an egress proxy and
  back (bench/notes/core.md, "API checks without the driver").

Both send one request and never follow a redirect (executor_service.http_check follows them hop by
hop, each checked by the guard first); both read the body only of an answer that is not a redirect.
The guard's check resolves the host once and hands the addresses it checked to `send` (`pinned`):
the standalone client connects to one of exactly those (shared.pinned), so a DNS answer that
changes after the check cannot take a request elsewhere. The page client's requests leave through
its context's egress proxy (executor_service/egress.py), which checks them again on its own.

Errors are converted here, at the boundary, into one shape: `TimeoutError` for no final answer in
time, `RequestFailed` for no answer at all (refused, reset, closed unanswered, a bad URL). Their
messages never carry the client library's error text beyond one line naming the cause (Playwright's
call log and some client errors list the request's headers, which may hold secret values); the
standalone client's words are `shared.http_failures`', which webhook deliveries use too.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp
from multidict import CIMultiDictProxy
from playwright._impl._errors import TargetClosedError
from playwright.async_api import APIRequestContext
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from shared.errors import RequestFailed
from shared.http_failures import no_answer
from shared.navigation_policy import IpAddress
from shared.pinned import pinned_connector

__all__ = ["REDIRECT_STATUSES", "USER_AGENT", "HttpClient", "Outgoing", "PageClient", "Reply", "StandaloneClient"]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: What a standalone client calls itself (a step's own User-Agent header wins).
USER_AGENT = "Sentinel-API-check/0.1"
_FETCH_PREFIX = "APIRequestContext.fetch: "
#: A body sent without a Content-Type header is labelled as Playwright labels it, so a request step
#: sends the same bytes and headers with either client.
_DEFAULT_BODY_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class Outgoing:
    """One request to send.

    Attributes:
        method: The HTTP method.
        url: The absolute URL.
        headers: The request's headers (secret values opened).
        body: The body ('' for none), sent as UTF-8.
        timeout_ms: For the whole exchange.
        pinned: The addresses the guard checked for the URL's host, the only ones a client that
            connects itself may connect to (None: unguarded).
    """

    method: str
    url: str
    headers: Mapping[str, str]
    body: str
    timeout_ms: int
    pinned: tuple[IpAddress, ...] | None = None


@dataclass(frozen=True)
class Reply:
    """One HTTP answer.

    Attributes:
        status: The status code.
        headers: The answer's headers, names in lower case.
        body: The (decoded) body; empty for a redirect, whose body is never read.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def location(self) -> str:
        """Where a redirect points ('' when the answer is not a redirect or names no target)."""
        return self.headers.get("location", "") if self.status in REDIRECT_STATUSES else ""


def joined_headers(headers: CIMultiDictProxy[str]) -> dict[str, str]:
    """Each header once, its name in lower case, a repeated one's values joined as a page's client
    (Playwright) joins them: `Set-Cookie` a line each, any other with ", "."""
    return {
        name: ("\n" if name == "set-cookie" else ", ").join(headers.getall(name))
        for name in dict.fromkeys(key.lower() for key in headers)
    }


class HttpClient(Protocol):
    """Sends one request, follows no redirect."""

    async def send(self, request: Outgoing) -> Reply:
        """The answer to one request.

        Raises:
            TimeoutError: no answer within `timeout_ms`.
            RequestFailed: no answer at all; the message is `reason` only (the caller names the request).
            TargetClosedError: (page client) the browser or the context went away.
        """
        ...


class PageClient:
    """A browser context's own client: its requests share the page's cookies."""

    def __init__(self, request: APIRequestContext) -> None:
        self._request = request

    async def send(self, request: Outgoing) -> Reply:
        # `request.pinned` is not needed: the context's egress proxy resolves and checks each request.
        try:
            response = await self._request.fetch(
                request.url,
                method=request.method,
                headers=dict(request.headers),
                data=request.body or None,
                timeout=request.timeout_ms,
                max_redirects=0,
                fail_on_status_code=False,
            )
        except PlaywrightTimeoutError:
            raise TimeoutError() from None
        except TargetClosedError:
            raise  # the browser or the client went away: not the site's doing
        except PlaywrightError as exc:
            # The first line only: the call log after it lists the request's headers.
            reason = (exc.message.strip().splitlines() or [""])[0].removeprefix(_FETCH_PREFIX)
            raise RequestFailed(reason or "no answer") from None
        try:
            return await _reply(response.status, dict(response.headers), response.body)
        finally:
            await response.dispose()


class StandaloneClient:
    """An in-process client whose requests share one cookie jar.

    Each request has a connection of its own, made by a connector for that request alone: to the
    addresses the guard pinned, or (unguarded) wherever the system resolver says.
    """

    def __init__(self, *, tls: ssl.SSLContext | None = None) -> None:
        """`tls`: what checks servers' certificates (None: the system's trust store, where
        `SSL_CERT_FILE` / `SSL_CERT_DIR` point OpenSSL elsewhere; tests give a CA of their own)."""
        # unsafe: keep cookies of hosts named by their IP address too, as a browser does.
        self._cookies = aiohttp.CookieJar(unsafe=True)
        self._tls = tls

    async def send(self, request: Outgoing) -> Reply:
        body = request.body
        sent = {"User-Agent": USER_AGENT, "Accept": "*/*", **request.headers}
        if body and not any(name.lower() == "content-type" for name in sent):
            sent["Content-Type"] = _DEFAULT_BODY_TYPE
        try:
            async with (
                aiohttp.ClientSession(
                    connector=pinned_connector(request.pinned, tls=self._tls),
                    cookie_jar=self._cookies,
                    # Never a proxy or credentials from the environment: the request goes where it was checked.
                    trust_env=False,
                    timeout=aiohttp.ClientTimeout(total=request.timeout_ms / 1000),
                ) as session,
                session.request(
                    request.method,
                    request.url,
                    headers=sent,
                    data=body.encode("utf-8") if body else None,
                    allow_redirects=False,
                ) as response,
            ):
                answer_headers = joined_headers(response.headers)
                return await _reply(response.status, answer_headers, response.read)
        except TimeoutError:
            raise TimeoutError() from None
        except (aiohttp.ClientError, ValueError) as exc:
            raise RequestFailed(no_answer(exc)) from None

    async def close(self) -> None:
        """Forget the cookies (connections are closed after each request)."""
        self._cookies.clear()


async def _reply(status: int, headers: Mapping[str, str], read: Callable[[], Awaitable[bytes]]) -> Reply:
    """The answer, its body read (`read`) unless it is a redirect, whose body is never read."""
    reply = Reply(status, headers, b"")
    return reply if reply.location else Reply(status, headers, await read())
