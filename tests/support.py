"""Test helpers: a private redis-server, a page server on 127.0.0.1, deadline-bound waits."""

from __future__ import annotations

import asyncio
import datetime
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from executor_service.browser import DEFAULT_ARGS
from sentinel_cli.redis_proc import RedisProcess, free_port, start_redis
from sentinel_cli.static_site import serve_directory

__all__ = ["RedisProcess", "free_port", "serve_directory", "start_redis"]

T = TypeVar("T")

CHROMIUM_ARGS = DEFAULT_ARGS


async def wait_for(
    probe: Callable[[], Awaitable[T | None]], *, within: float = 10.0, interval: float = 0.05, what: str = ""
) -> T:
    """Poll `probe` until it returns a truthy value, or fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what or probe}")
        await asyncio.sleep(interval)


def chromium_path() -> str:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium") or ""):
        if candidate and Path(candidate).exists():
            return candidate
    raise RuntimeError("chromium is not installed (apt-get install chromium)")


def make_cert(tmp: Path, name: str, issuer: tuple[Any, Any] | None, *, ca: bool = False) -> tuple[Any, Any]:
    """A certificate and key for `name` (valid for localhost), written to tmp/<name>.pem and .key;
    self-signed, or signed by `issuer` (a (certificate, key) pair); `ca` makes it a CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    (tmp / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / f"{name}.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert, key
