"""What is wrong with a TLS file, found with `ssl` before gRPC reads it.

gRPC only logs a file it cannot use, then fails to connect (a client) or to bind (a server), which
reads as a network or a port problem. These checks name the setting instead. They return the
problem as text (None: the file is fine), so that the SDK and the services each raise their own
`ConfigError`; the services use them too (`shared.edge.tls`).
"""

from __future__ import annotations

import ssl
from typing import NoReturn

__all__ = ["certificates_problem", "pair_problem"]


class _Encrypted(Exception):
    """Raised in place of a password: nobody is there to type one (ssl would prompt a TTY)."""


def _no_password() -> NoReturn:
    raise _Encrypted


def _unreadable(name: str, path: str, exc: OSError) -> str:
    return f"{name} must name a readable file, got {path!r}: {exc.strerror or exc}"


def certificates_problem(path: str, name: str) -> str | None:
    """Why `path` (the setting `name`) is no readable file of PEM certificates; None when it is."""
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
    except ssl.SSLError:
        return f"{name} holds no PEM certificate ({path!r})"
    except OSError as exc:
        return _unreadable(name, path, exc)
    return None


def pair_problem(cert: str, key: str, *, cert_name: str, key_name: str) -> str | None:
    """Why `cert` is not a PEM certificate with `key` its unencrypted PEM private key; None when it is."""
    problem = certificates_problem(cert, cert_name)
    if problem is not None:
        return problem
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # what gRPC accepts (an RSA-1024 key), not OpenSSL's default policy
    try:
        context.load_cert_chain(cert, key, password=_no_password)
    except _Encrypted:
        return f"{key_name} is encrypted; give an unencrypted key ({key!r})"
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            return f"{key_name} does not match {cert_name}: {key!r} is not the key of {cert!r}"
        if exc.reason in ("PEM_LIB", "NO_START_LINE", "BAD_BASE64_DECODE", None):
            return f"{key_name} holds no PEM private key ({key!r})"  # the certificate parsed above: the key did not
        return f"{key_name} cannot be used with {cert_name} ({key!r}): {exc.reason or exc}"
    except OSError as exc:
        return _unreadable(key_name, key, exc)
    return None
