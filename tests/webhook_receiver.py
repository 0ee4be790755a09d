"""A webhook receiver the tests run on 127.0.0.1: records every POST, answers as told, checks
signatures with its own HMAC-SHA256 (the standard library's hashlib, not Sentinel's code)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from shared.clock import now_ms


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    at_ms: int  # wall clock, when it arrived

    @property
    def json(self) -> dict[str, Any]:
        return dict(json.loads(self.body))

    @property
    def event(self) -> str:
        return str(self.json["event"])


def hmac_sha256(key: bytes, message: bytes) -> str:
    """HMAC-SHA256 built from its definition (RFC 2104) on hashlib, independent of the `hmac` module."""
    block = 64
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    inner = hashlib.sha256(bytes(k ^ 0x36 for k in key) + message).digest()
    return hashlib.sha256(bytes(k ^ 0x5C for k in key) + inner).hexdigest()


def signature_holds(received: Received, secret: str) -> bool:
    """Whether `Sentinel-Signature: t=<t>,v1=<hex>` is the HMAC of "<t>.<raw body>" under `secret`."""
    parts = dict(part.split("=", 1) for part in received.headers["Sentinel-Signature"].split(","))
    expected = hmac_sha256(secret.encode(), parts["t"].encode() + b"." + received.body)
    return parts["v1"] == expected and parts["t"].isdigit()


@dataclass
class Receiver:
    url: str
    received: list[Received] = field(default_factory=list)
    #: Statuses to answer, in order; 200 once they are used up.
    answers: list[int] = field(default_factory=list)
    #: While not set, requests wait before being answered (a test holds an attempt back).
    gate: asyncio.Event = field(default_factory=asyncio.Event)

    def events(self) -> list[str]:
        return [r.event for r in self.received]


@asynccontextmanager
async def run_receiver(path: str = "/hook") -> AsyncIterator[Receiver]:
    """A receiver at http://127.0.0.1:<free port><path>, stopped on exit."""
    receiver = Receiver(url="")
    receiver.gate.set()

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        receiver.received.append(Received(headers=dict(request.headers), body=body, at_ms=now_ms()))
        await receiver.gate.wait()
        status = receiver.answers.pop(0) if receiver.answers else 200
        return web.Response(status=status, text=f"answer {status} to request {len(receiver.received)}")

    app = web.Application()
    app.router.add_post(path, handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    receiver.url = f"http://127.0.0.1:{port}{path}"
    try:
        yield receiver
    finally:
        receiver.gate.set()
        await runner.cleanup()
