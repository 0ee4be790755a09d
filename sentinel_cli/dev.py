"""`sentinel dev`: the whole of Sentinel on one machine, for trying it and for development.

Starts a private redis-server in a temp dir (unless REDIS_URL / REDIS_HOST name one), the API,
one executor and a small demo site on 127.0.0.1 that the bundled `examples/*.json` test. With
`--demo` it also submits those examples and shows their progress. Ctrl-C stops all of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from api_service.server import ApiServer
from executor_service.server import ExecutorServer
from sentinel_cli import client
from sentinel_cli.redis_proc import start_redis
from sentinel_cli.runtime import run_until_signal
from sentinel_cli.static_site import serve_directory
from shared.sealed import new_secret_key
from shared.settings import (
    ApiSettings,
    ExecutorSettings,
    QueueSettings,
    RedisSettings,
    SecuritySettings,
)

DEMO_SITE = Path(__file__).with_name("demo_site")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@contextlib.contextmanager
def demo_site(port: int) -> Iterator[str]:
    """Serve the demo site on 127.0.0.1:`port`; yields its base URL. Only a failure to listen is the
    site's: what fails while it serves (the services started beside it) is reported as itself."""
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(serve_directory(DEMO_SITE, port=port))
        except OSError as exc:
            raise OSError(f"demo site: cannot listen on 127.0.0.1:{port} ({exc}); use --demo-port") from exc
        yield url


def dev_security(site_url: str) -> SecuritySettings:
    """`sentinel dev`'s security: auth off, a fresh key for secret values, the demo site allowed."""
    environ = {**os.environ, "SENTINEL_AUTH": "disabled"}
    security = SecuritySettings.from_env(environ)
    site = urlsplit(site_url).netloc
    return dataclasses.replace(
        security,
        secret_key=security.secret_key or new_secret_key(),
        navigation_allow=(site, *security.navigation_allow),
    )


async def _run_examples(address: str, site_url: str) -> None:
    files = sorted(EXAMPLES.glob("*.json")) if EXAMPLES.is_dir() else []
    if not files:
        print("no examples/*.json found next to the package; nothing to demo")
        return
    for path in files:
        print(f"\n▶ sentinel submit {path.relative_to(EXAMPLES.parent)} --follow")
        # The examples name the demo site's default address; point them at the port it really has.
        code = await client.submit_and_follow(address, path, priority=None, follow_progress=True, base_url=site_url)
        if code and "wrong-password" in path.name:
            print("  (this example fails on purpose: see the failing step and its screenshot)")


async def _main(stop: asyncio.Event, *, redis: RedisSettings, demo: bool, site_url: str) -> None:
    queue = QueueSettings.from_env()
    security = dev_security(site_url)
    api_settings = dataclasses.replace(ApiSettings.from_env(), host="127.0.0.1")
    executor_settings = dataclasses.replace(ExecutorSettings.from_env(), host="127.0.0.1")
    artifacts = executor_settings.artifacts  # one store for both: the API serves what the executor keeps
    api = await ApiServer.start(
        redis=redis, queue_settings=queue, api=api_settings, security=security, artifacts=artifacts
    )
    try:
        executor = await ExecutorServer.start(
            redis=redis, queue_settings=queue, executor=executor_settings, security=security
        )
    except BaseException:
        await api.stop(0)
        raise
    address = f"127.0.0.1:{api.port}"
    http = f"http://127.0.0.1:{api.http.port}" if api.http else ""
    dashboard = f"  dashboard   {http}/  (the HTTP API: {http}/api/v1/openapi.json)\n" if http else ""
    print(
        f"Sentinel is running:\n"
        f"  API         {address}  (grpcurl -plaintext {address} list)\n"
        f"{dashboard}"
        f"  executor    127.0.0.1:{executor.port}  (concurrency {queue.concurrency})\n"
        f"  redis       {redis.url}\n"
        f"  demo site   {site_url}\n"
        f"  artifacts   {api.store.location if api.store else artifacts.url}  (sentinel artifacts <job-id>)\n"
        f"  auth        disabled (SENTINEL_AUTH=disabled): every caller is tenant 'default', role operator\n"
        f"  navigation  public addresses and the demo site ({', '.join(security.navigation_allow)})\n"
        f"Try: SENTINEL_API={address} sentinel submit examples/login.json --follow\n"
        f"Press Ctrl-C to stop.",
        flush=True,
    )
    try:
        if demo:
            demo_task = asyncio.create_task(_run_examples(address, site_url))
            stop_task = asyncio.create_task(stop.wait())
            await asyncio.wait({demo_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
            if not demo_task.done():
                demo_task.cancel()
            stop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await demo_task
            if not stop.is_set():
                print("\nThe demo is done; Sentinel keeps running. Press Ctrl-C to stop.", flush=True)
        await stop.wait()
    finally:
        print("\nstopping…", flush=True)
        await executor.stop()
        await api.stop(2.0)


def run_dev(*, demo: bool, demo_port: int) -> int:
    redis = RedisSettings.from_env()
    with tempfile.TemporaryDirectory(prefix="sentinel-dev-") as tmp, demo_site(demo_port) as site_url:
        process = None
        if not redis.configured:
            process = start_redis(Path(tmp), aof=True)
            redis = RedisSettings(url=process.url, configured=True)
        try:
            run_until_signal(lambda stop: _main(stop, redis=redis, demo=demo, site_url=site_url))
        finally:
            if process is not None:
                process.stop()
    print("stopped.", file=sys.stderr)
    return 0
