"""Test helpers: a private redis-server, a page server on 127.0.0.1, deadline-bound waits (`wait_for`)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import inspect
import ipaddress
import json
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar, overload

import redis.asyncio as aioredis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from executor_service.browser import DEFAULT_ARGS
from sentinel_cli.redis_proc import RedisProcess, free_port, start_redis
from sentinel_cli.static_site import serve_directory
from shared.access import KeyEntry, Role, hash_key, new_key
from shared.navigation_policy import IpAddress, resolve

__all__ = ["ROLES", "RedisProcess", "free_port", "serve_directory", "start_redis", "write_keys"]

T = TypeVar("T")

CHROMIUM_ARGS = DEFAULT_ARGS


#: What a wait is for, named in its failure; a callable is asked only then, so it can tell what it saw last.
What = str | Callable[[], str]


class _Deadline:
    """The end of one wait, and the failure that reports it."""

    def __init__(self, within: float, what: What, probe: object) -> None:
        self.within = within
        self.at = time.monotonic() + within
        self.what = what
        self.probe = probe
        self.error: Exception | None = None  # the last exception `ignoring` let through

    def remaining(self) -> float:
        return max(self.at - time.monotonic(), 0.0)

    def fail(self) -> NoReturn:
        what = self.what() if callable(self.what) else self.what
        message = f"timed out after {self.within} s waiting for {what or self.probe}"
        if self.error is not None:
            message += f" (last error: {self.error!r})"
        raise AssertionError(message) from self.error


@overload
async def wait_for(
    probe: Callable[[], Awaitable[T | None]],
    *,
    within: float = ...,
    interval: float = ...,
    what: What = ...,
    ignoring: tuple[type[Exception], ...] = ...,
) -> T: ...


@overload
async def wait_for(
    probe: Callable[[], T | None],
    *,
    within: float = ...,
    interval: float = ...,
    what: What = ...,
    ignoring: tuple[type[Exception], ...] = ...,
) -> T: ...


async def wait_for(
    probe: Callable[[], Any],
    *,
    within: float = 10.0,
    interval: float = 0.05,
    what: What = "",
    ignoring: tuple[type[Exception], ...] = (),
) -> Any:
    """Poll `probe` until it returns a truthy value, and return that; fail after `within` seconds.

    The one way a test waits for something: never a bare sleep.

    Args:
        probe: a plain function, or one returning an awaitable (an async function, a lambda calling
            one). An awaited probe is cut off at the deadline, so a hung probe fails on time too.
        within: seconds until the wait fails with an AssertionError.
        interval: seconds between probes.
        what: the awaited condition, for the failure message.
        ignoring: exceptions that mean "not yet" (a server still starting); the last one is
            chained to the failure.
    """
    deadline = _Deadline(within, what, probe)
    while True:
        try:
            value = probe()
            if inspect.isawaitable(value):
                cutoff = asyncio.timeout(deadline.remaining())
                try:
                    async with cutoff:
                        value = await value
                except TimeoutError:
                    if cutoff.expired():
                        deadline.fail()
                    raise
        except ignoring as exc:
            deadline.error, value = exc, None
        if value:
            return value
        if not deadline.remaining():
            deadline.fail()
        await asyncio.sleep(min(interval, deadline.remaining()))


def wait_for_blocking(
    probe: Callable[[], T | None],
    *,
    within: float = 10.0,
    interval: float = 0.05,
    what: What = "",
    ignoring: tuple[type[Exception], ...] = (),
) -> T:
    """`wait_for` for code that cannot await: a sync test driving subprocesses, or a sync fixture.

    The same deadline and failure; the probe is plain and the thread sleeps between probes.
    """
    deadline = _Deadline(within, what, probe)
    while True:
        try:
            value = probe()
        except ignoring as exc:
            deadline.error, value = exc, None
        if value:
            return value
        if not deadline.remaining():
            deadline.fail()
        time.sleep(min(interval, deadline.remaining()))


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


ROLES = ("viewer", "submitter", "admin", "operator")


def write_keys(path: Path) -> dict[str, str]:
    """A keys file with one key per role for tenants acme and globex; returns {"acme-viewer": key, …}."""
    made: dict[str, str] = {}
    entries = []
    for tenant in ("acme", "globex"):
        for role in ROLES:
            key = new_key()
            made[f"{tenant}-{role}"] = key
            entries.append(KeyEntry(tenant=tenant, role=Role.parse(role), sha256=hash_key(key)).to_json())
    path.write_text(json.dumps({"keys": entries}))
    return made


def revoke(keys_file: Path, key: str) -> None:
    """Take `key` out of the keys file, as an operator edits it (written whole, then moved in place)."""
    entries = json.loads(keys_file.read_text())["keys"]
    kept = [e for e in entries if e["sha256"] != hash_key(key)]
    assert len(kept) == len(entries) - 1
    staged = keys_file.with_suffix(".new")
    staged.write_text(json.dumps({"keys": kept}))
    staged.replace(keys_file)


class Rebinding:
    """A resolver for a NavigationPolicy whose `name` answers `first`, then `then` ever after (a DNS
    rebinding attack); every other name resolves as usual. `answers` counts the lookups of `name`."""

    def __init__(self, name: str, first: str, then: str) -> None:
        self.name, self.first, self.then = name, first, then
        self.answers = 0

    async def __call__(self, host: str, port: int) -> list[IpAddress]:
        if host != self.name:
            return await resolve(host, port)
        self.answers += 1
        return [ipaddress.ip_address(self.first if self.answers == 1 else self.then)]


#: Sockets `closed_port` holds for the life of the test process.
_HELD_PORTS: list[socket.socket] = []


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[str]:
    """`http://127.0.0.1:<port>` of a server that takes connections and never answers (a site or an
    artifact store that hangs); its connections close with the block."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        for writer in held:
            writer.close()
        await server.wait_closed()


def closed_port(host: str = "127.0.0.1") -> int:
    """A port on `host` that nothing listens on for as long as the test process lives: bound here
    and never listened on, so a connection to it is refused and no other process can take it (a
    port merely found free a moment ago can be, by another test's server or egress proxy)."""
    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    held.bind((host, 0))
    _HELD_PORTS.append(held)
    return int(held.getsockname()[1])


async def stored_text(redis: aioredis.Redis) -> str:
    """Every key and value in Redis, as one text."""
    found = []
    async for key in redis.scan_iter():
        kind = str(await redis.type(key))
        value: object
        if kind == "hash":
            value = await redis.hgetall(key)
        elif kind == "zset":
            value = await redis.zrange(key, 0, -1)
        elif kind == "set":
            value = await redis.smembers(key)
        elif kind == "stream":
            value = await redis.xrange(key)
        elif kind == "list":
            value = await redis.lrange(key, 0, -1)
        else:
            value = await redis.get(key)
        found.append(repr((key, value)))
    return "\n".join(found)


def ended_once_redis_answers(
    args: list[str], env: dict[str, str], directory: Path, *, redis_port: int, options: tuple[str, ...] = ()
) -> tuple[int, str]:
    """Start a service (`args`) while nothing answers on `redis_port`, wait until it says it started
    without Redis, then start a redis-server there (`options`); the service's exit code once it ends
    (within 90 s), and everything it logged."""
    log_path = directory / "service.log"
    with log_path.open("wb") as out:
        service = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_blocking(
            lambda: "checked when it does" in log_path.read_text(),
            within=90,
            what=lambda: f"the service to start without Redis:\n{log_path.read_text()}",
        )
        (directory / "late-redis").mkdir()
        late = start_redis(directory / "late-redis", port=redis_port, options=options)
        try:
            code = service.wait(timeout=90)
        finally:
            late.stop()
    finally:
        if service.poll() is None:
            service.kill()
            service.wait(timeout=30)
    return code, log_path.read_text()
