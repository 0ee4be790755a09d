"""A webhook URL is a secret too: sealed at rest when there is a key, never handed back whole.

Many receivers' URLs are bearer tokens (Slack, Teams and Discord carry theirs in the path; others
take `user:password@` or `?token=`), so a URL goes in like a notification's signing secret and
comes out only masked — in rules, in deliveries, in logs:

    scheme://host[:port]/<first path segment>/…<last 4 characters>

`https://hooks.slack.com/services/T0/B0/XXXXXXXXXXXXXXXXXXXXq3z` → `https://hooks.slack.com/services/…Xq3z`.
The user name, the password and the fragment are dropped. The first path segment is
shown when more follows it and it is at most `MAX_SHOWN_SEGMENT` characters long; everything after
it (the rest of the path and the query) is `…`, followed by its last 4 characters only when at least
`MIN_HIDDEN` characters are hidden, so that a short token is never shown in part. Two rules to the
same receiver are told apart by those last characters.

With SENTINEL_SECRET_KEY set, a rule's URLs are sealed (`shared.sealed`) before they are stored, and
so are the copies its deliveries keep; the dispatcher opens one right before an attempt, and a
listing opens it only to mask it. A URL stored before (or without a key) is plain and works as is.

Never log or return the value `open_url` gives: only `mask_url` of it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from shared.errors import SentinelError
from shared.sealed import SEALED_PREFIX, Sealer

__all__ = ["MASK", "MAX_SHOWN_SEGMENT", "MIN_HIDDEN", "UNREADABLE", "mask_url", "open_url", "seal_url", "shown_url"]

#: The longest first path segment shown (a longer one may be a token: Telegram's `/bot<token>/…`).
MAX_SHOWN_SEGMENT = 24
#: The fewest hidden characters for the last 4 of them to be shown.
MIN_HIDDEN = 16
#: What stands for the hidden part of a masked URL.
MASK = "…"
#: What a sealed URL this server cannot open is shown as.
UNREADABLE = "(sealed: this server's SENTINEL_SECRET_KEY cannot open it)"


def mask_url(url: str) -> str:
    """`url` as it may be shown: see the module's docstring."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    tail = parts.path + (f"?{parts.query}" if parts.query else "")
    first = ""
    if parts.path.startswith("/"):
        segment, more, _ = parts.path[1:].partition("/")
        if (more or parts.query) and len(segment) <= MAX_SHOWN_SEGMENT:
            first = f"/{segment}"
    rest = tail[len(first) :]
    if len(rest) <= 1:  # nothing, "/" or "?"
        return origin + tail
    hidden = rest[1:]
    return f"{origin}{first}{rest[0]}{MASK}{hidden[-4:] if len(hidden) >= MIN_HIDDEN else ''}"


def seal_url(url: str, sealer: Sealer | None) -> str:
    """`url` as it is stored: sealed when there is a key, plain when not."""
    return sealer.seal(url) if sealer is not None else url


def open_url(stored: str, sealer: Sealer | None) -> str:
    """The URL to send to, from what `seal_url` stored.

    Raises:
        SentinelError: it is sealed and this server has no key, or another one.
    """
    if not stored.startswith(SEALED_PREFIX):
        return stored
    if sealer is None:
        raise SentinelError("cannot send: this server has no SENTINEL_SECRET_KEY to open the webhook URL")
    return sealer.open(stored, field="url")


def shown_url(stored: str, sealer: Sealer | None) -> str:
    """What a caller sees of a stored URL: masked, or `UNREADABLE`."""
    try:
        return mask_url(open_url(stored, sealer))
    except SentinelError:
        return UNREADABLE
