"""The `Sentinel-Signature` header: how a receiver knows a webhook came from Sentinel, untouched.

`Sentinel-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>` — the scheme
Stripe uses. The time is signed with the body, so a receiver can refuse old deliveries replayed
(compare `t` with its clock; five minutes is usual) and checks `v1` with a constant-time compare.
Each attempt is signed anew, with its own `t`; the body (and its `delivery_id`) stays the same.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["SIGNATURE_HEADER", "sign", "signature_header"]

SIGNATURE_HEADER = "Sentinel-Signature"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `"<timestamp>.<body>"` under `secret`."""
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """The value of `Sentinel-Signature` for `body` sent at `timestamp` (unix seconds)."""
    return f"t={timestamp},v1={sign(secret, timestamp, body)}"
