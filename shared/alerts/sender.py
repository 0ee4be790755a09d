"""One webhook attempt: check the target, POST the signed body, read the answer.

The target is vetted by the webhook policy (`shared.alerts.guard`) right before each attempt,
after resolution, and the connection goes only to the addresses vetted (shared.pinned), so a
DNS answer that changes after the check reaches nothing the policy refuses. Redirects are never
followed: a 3xx is an answer like any other non-2xx. At most 1 KiB of the answer is read.
A refused target is final (`Answer.final`); every other failure may be tried again. A failure is
worded as a request step words it (`shared.http_failures`: `no answer (cannot connect to …)`),
never with the client library's text, which may quote the URL.
"""

from __future__ import annotations

import time

import aiohttp

from shared.alerts.deliveries import MAX_RESPONSE_BYTES, Answer
from shared.alerts.signing import SIGNATURE_HEADER, signature_header
from shared.http_failures import no_answer
from shared.navigation_policy import NavigationPolicy
from shared.pinned import pinned_connector

__all__ = ["DELIVERY_HEADER", "USER_AGENT", "send"]

DELIVERY_HEADER = "Sentinel-Delivery"
USER_AGENT = "Sentinel-Webhooks/1"


async def send(
    url: str,
    body: str,
    *,
    delivery_id: str,
    secret: str,
    policy: NavigationPolicy,
    timeout_ms: int,
) -> Answer:
    """POST `body` to `url` once, signed with `secret` ("" = unsigned), and say how it went."""
    try:
        verdict = await policy.vet(url)
    except (OSError, TimeoutError) as exc:
        return Answer(error=f"cannot resolve the target: {exc or type(exc).__name__}")
    if verdict.reason is not None:
        return Answer(error=f"refused by the webhook guard: {verdict.reason}", final=True)
    raw = body.encode("utf-8")
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, DELIVERY_HEADER: delivery_id}
    if secret:
        headers[SIGNATURE_HEADER] = signature_header(secret, int(time.time()), raw)
    connector = pinned_connector(verdict.addresses)
    timeout = aiohttp.ClientTimeout(total=timeout_ms / 1000)
    try:
        async with (
            aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
            session.post(url, data=raw, headers=headers, allow_redirects=False) as response,
        ):
            answer = (await response.content.read(MAX_RESPONSE_BYTES)).decode("utf-8", "replace")
            error = "" if 200 <= response.status < 300 else f"the receiver answered HTTP {response.status}"
            return Answer(status=response.status, body=answer, error=error)
    except TimeoutError:
        return Answer(error=f"no answer within {timeout_ms} ms")
    except (aiohttp.ClientError, ValueError) as exc:
        return Answer(error=no_answer(exc))
