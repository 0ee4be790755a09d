"""How an HTTP request that got no answer is worded: the same for a request step and a webhook.

Both send with aiohttp (`executor_service.http_client.StandaloneClient`, `shared.alerts.sender`),
so a refused connection reads `no answer (cannot connect to 127.0.0.1:9: …)` whichever of them
met it. The words name the cause in one line and never carry aiohttp's own text beyond the OS's
reason: some of its messages quote the request (its URL, which may hold a token, or its headers,
which may hold secret values).
"""

from __future__ import annotations

import aiohttp

__all__ = ["no_answer"]


def no_answer(exc: aiohttp.ClientError | ValueError) -> str:
    """One line saying why a request got no answer (a timeout is the caller's to word)."""
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "no answer (the connection closed)"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        why = getattr(exc.certificate_error, "verify_message", None) or "no reason given"
        return f"no answer (the certificate of {exc.host}:{exc.port} is not trusted: certificate verify failed: {why})"
    if isinstance(exc, aiohttp.ClientSSLError):
        return f"no answer (the TLS handshake with {exc.host}:{exc.port} failed)"
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or type(exc.os_error).__name__
        return f"no answer (cannot connect to {exc.host}:{exc.port}: {reason})"
    # Named by kind rather than by aiohttp's text: some of its messages quote the request.
    if isinstance(exc, aiohttp.InvalidURL):
        return "not a valid URL"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"a malformed answer ({exc.message.splitlines()[0] if exc.message else type(exc).__name__})"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "the answer's body was cut off"
    if isinstance(exc, aiohttp.ClientOSError):
        return f"connection failed ({exc.strerror or type(exc).__name__})"
    return type(exc).__name__
