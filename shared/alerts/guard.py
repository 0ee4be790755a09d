"""Where a webhook may go: the navigation guard's policy, with its own allow list.

Webhook targets follow the rules a test's page does (`shared.navigation_policy`): http(s) only, and
every address the host resolves to must be public unless `SENTINEL_WEBHOOK_ALLOW` lists the host,
`host:port` or a network — an alert receiver inside the network must be allowed explicitly. A URL
is checked when it is stored (its form, and an IP address written in it) and again at each
delivery after resolution; the sender connects only to the addresses checked, and never follows
a redirect.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

from shared.errors import FieldViolation
from shared.navigation_policy import NavigationPolicy
from shared.notifications import Notification, notification_violations
from shared.settings import AlertSettings

__all__ = ["PUBLIC_ONLY", "WEBHOOK_ALLOW", "target_violations", "webhook_policy", "webhook_violations"]

WEBHOOK_ALLOW = "SENTINEL_WEBHOOK_ALLOW"


def webhook_policy(settings: AlertSettings) -> NavigationPolicy:
    return NavigationPolicy.from_rules(settings.allow, variable=WEBHOOK_ALLOW)


#: The policy with nothing allowed beyond public addresses (SENTINEL_WEBHOOK_ALLOW unset).
PUBLIC_ONLY = webhook_policy(AlertSettings())


#: A host that is an IPv4 address to the system's resolver though not in dotted-quad form:
#: `127.1`, `2130706433`, `0x7f000001`, `017700000001` (inet_aton's forms).
_INET_ATON = re.compile(r"(?:0[xX][0-9a-fA-F]+|[0-9]+)(?:\.(?:0[xX][0-9a-fA-F]+|[0-9]+)){0,3}")


def _literal_address(url: str) -> bool:
    """Whether the URL's host names an address without DNS: an IP address in any form the
    system's resolver reads as one, or `localhost` (which it answers from /etc/hosts)."""
    host = (urlsplit(url).hostname or "").strip("[]").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _INET_ATON.fullmatch(host):
            return False
        try:
            socket.inet_aton(host)
        except OSError:
            return False
    return True


async def target_violations(
    notifications: Sequence[Notification], policy: NavigationPolicy, *, prefix: str
) -> list[FieldViolation]:
    """The stored-time check of each target: a URL naming an IP address the policy refuses.

    Host names are not resolved here (their answer may change); every delivery checks them.
    """
    found: list[FieldViolation] = []
    for index, notification in enumerate(notifications):
        if not _literal_address(notification.url):
            continue
        verdict = await policy.vet(notification.url)
        if verdict.reason is not None:
            found.append(FieldViolation(f"{prefix}notifications[{index}].url", f"refused: {verdict.reason}"))
    return found


async def webhook_violations(
    notifications: Sequence[Notification], policy: NavigationPolicy, *, prefix: str
) -> list[FieldViolation]:
    """Every problem of the notifications of a schedule or an alert rule as they are stored: their
    form (`notification_violations`), then, when that is sound, their targets (`target_violations`)."""
    found = notification_violations(notifications, prefix=prefix)
    return found or await target_violations(notifications, policy, prefix=prefix)
