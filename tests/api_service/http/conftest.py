"""The HTTP API through a real ApiServer (gRPC and HTTP on one loop) on a real redis-server,
called with aiohttp's client. The test plays the executor with `executor_service.store`."""

from __future__ import annotations

import dataclasses
import errno
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from api_service.server import ApiServer
from shared.queue import Queue
from shared.sealed import new_secret_key
from shared.settings import ApiSettings, ArtifactSettings, QueueSettings, RedisSettings, SecuritySettings
from tests.support import RedisProcess, free_port, wait_for, write_keys

PREFIX = "/api/v1"


@dataclass
class Reply:
    status: int
    body: Any
    headers: Any

    @property
    def data(self) -> Any:
        assert self.body["success"] is True, self.body
        return self.body["data"]

    @property
    def code(self) -> str:
        assert self.body["success"] is False, self.body
        return str(self.body["error"]["code"])


@dataclass
class Http:
    server: ApiServer
    session: aiohttp.ClientSession
    base: str  # http://127.0.0.1:<port>
    queue: Queue  # the executor's view of the same queue, on the test's own connection
    redis: aioredis.Redis
    keys: dict[str, str] = field(default_factory=dict)  # "acme-viewer" → key (empty: auth disabled)

    def auth(self, who: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"} if who else {}

    async def call(
        self,
        method: str,
        path: str,
        *,
        who: str | None = None,
        body: Any = None,
        data: bytes | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """`method` `/api/v1<path>` as `who` (a key's name; None: no key), with a JSON `body` or raw `data`."""
        sent = {**self.auth(who), **(headers or {})}
        payload = json.dumps(body).encode() if body is not None else data
        if body is not None:
            sent.setdefault("Content-Type", "application/json")
        async with self.session.request(method, self.base + PREFIX + path, data=payload, headers=sent) as resp:
            text = await resp.text()
            parsed = json.loads(text) if resp.content_type == "application/json" else text
            return Reply(status=resp.status, body=parsed, headers=resp.headers)


def definition(name: str = "checkout", *selectors: str) -> dict[str, Any]:
    """A test definition as `sentinel submit` files hold it (proto3 JSON)."""
    steps: list[dict[str, Any]] = [{"navigate": {"url": "https://shop.example.test/"}}]
    steps += [{"click": {"selector": s}} for s in selectors]
    return {"name": name, "steps": steps}


async def submit(http: Http, *, who: str | None = None, **options: Any) -> str:
    body = {"testDefinition": definition(), "options": options}
    reply = await http.call("POST", "/tests/execute", who=who, body=body)
    assert reply.status == 202, reply.body
    return str(reply.data["testId"])


async def subscribers(http: Http, n: int) -> None:
    """Wait until the API's stream hub has `n` subscribers (an SSE follower is live, or gone)."""

    async def settled() -> bool:
        return http.server.hub.subscriber_count == n

    await wait_for(settled, within=10, what=lambda: f"{n} hub subscribers, not {http.server.hub.subscriber_count}")


#: Ports start_http tries for the HTTP API before it gives up (each a free_port() pick).
PORT_ATTEMPTS = 5


async def start_http(
    redis_server: RedisProcess,
    redis_client: aioredis.Redis,
    *,
    security: SecuritySettings | None = None,
    api: ApiSettings | None = None,
    artifacts: ArtifactSettings | None = None,
    keys: dict[str, str] | None = None,
    queue_settings: QueueSettings | None = None,
) -> AsyncIterator[Http]:
    api = api or ApiSettings(host="127.0.0.1", port=0, http_port=free_port())
    for attempt in range(PORT_ATTEMPTS):
        try:
            server = await ApiServer.start(
                redis=RedisSettings(url=redis_server.url, configured=True),
                queue_settings=queue_settings or QueueSettings(),
                api=api,
                security=security,
                artifacts=artifacts,
            )
            break
        except OSError as exc:
            # The HTTP port is a free_port() pick (API_HTTP_PORT=0 turns HTTP off, so the API cannot
            # be asked for any free port): another process of the run may take it before the API
            # binds it. The API stopped everything it had started; try again on another port.
            code = exc.errno or getattr(exc.__cause__, "errno", None)  # the API's OSError names the variable
            if code != errno.EADDRINUSE or attempt == PORT_ATTEMPTS - 1:
                raise
            api = dataclasses.replace(api, http_port=free_port())
    try:
        assert server.http is not None
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            yield Http(
                server=server,
                session=session,
                base=f"http://127.0.0.1:{server.http.port}",
                queue=Queue.open(redis_client, QueueSettings()),
                redis=redis_client,
                keys=keys or {},
            )
    finally:
        await server.stop(0)


@pytest.fixture
async def http(redis_server: RedisProcess, redis_client: aioredis.Redis) -> AsyncIterator[Http]:
    """The HTTP API with auth disabled (every caller is tenant `default`, operator)."""
    async for harness in start_http(redis_server, redis_client):
        yield harness


@pytest.fixture
async def keyed(redis_server: RedisProcess, redis_client: aioredis.Redis, tmp_path: Path) -> AsyncIterator[Http]:
    """The HTTP API with API keys: a viewer, a submitter and an admin of tenants acme and globex."""
    keys_file = tmp_path / "keys.json"
    made = write_keys(keys_file)
    security = SecuritySettings(auth_disabled=False, keys_file=str(keys_file), secret_key=new_secret_key())
    async for harness in start_http(redis_server, redis_client, security=security, keys=made):
        yield harness
