"""The full stack as separate processes: redis-server, `sentinel api`, `sentinel executor`."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
import redis.asyncio as aioredis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos import sentinel_pb2_grpc as pb_grpc
from shared.sealed import new_secret_key
from shared.taskdump import END_MARK
from tests.support import RedisProcess, chromium_path, free_port, serve_directory, start_redis, wait_for_blocking

PAGES = Path(__file__).with_name("pages")
SENTINEL = str(Path(sys.executable).with_name("sentinel"))
#: Seals secret fill values between the stack's API and executors.
STACK_SECRET_KEY = new_secret_key()


#: Ports tried for one service before its start fails (`Stack.start`).
PORT_ATTEMPTS = 3


class PortTaken(AssertionError):
    """A service exited because the port picked for it was taken before it could bind it."""


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return int(self.process.returncode)


@dataclass
class Stack:
    redis: RedisProcess
    directory: Path
    site: str
    seen: list[str]
    services: list[Service] = field(default_factory=list)

    @property
    def artifacts(self) -> Path:
        """The file artifact store's directory: a job's artifact `name` is at `<job id>/<name>`."""
        return self.directory / "artifacts"

    @property
    def spool(self) -> Path:
        """Where executors make artifacts before uploading them; empty once each is uploaded."""
        return self.directory / "spool"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "QUEUE_", "SENTINEL_", "OTEL_"))}
        env.update(
            API_METRICS_PORT="0",
            API_HTTP_PORT="0",  # tests/api_service/http serves HTTP; here it would take 8080 from each other
            EXECUTOR_METRICS_PORT="0",
            REDIS_URL=self.redis.url,
            SENTINEL_CHROMIUM=chromium_path(),
            SENTINEL_ARTIFACTS_DIR=str(self.artifacts),
            SENTINEL_SPOOL_DIR=str(self.spool),
            # The stack's own test pages are on 127.0.0.1, which the navigation guard refuses unless allowed.
            SENTINEL_AUTH="disabled",
            SENTINEL_NAVIGATION_ALLOW="127.0.0.1",
            SENTINEL_SECRET_KEY=STACK_SECRET_KEY,
            # Tests count the jobs they ran: keep them all, and stop fast.
            QUEUE_REMOVE_ON_COMPLETE="100000",
            QUEUE_REMOVE_ON_FAIL="100000",
            EXECUTOR_SHUTDOWN_GRACE_MS="5000",
            PYTHONUNBUFFERED="1",
        )
        env.update(extra)
        return env

    def start(self, kind: str, *, health: str = "", **env: str) -> Service:
        """Start `sentinel api` or `sentinel executor` on a free port and wait until it serves
        (`health`: until that grpc.health.v1 service says SERVING: `liveness` while Redis is away).

        A port is free when picked and bound by the service a moment later; meanwhile another
        process's outgoing connection can get it as its local port (both come from the ephemeral
        range). A service that could not bind is started again on another port."""
        for _ in range(PORT_ATTEMPTS - 1):
            try:
                return self._launch(kind, free_port(), env, health=health)
            except PortTaken:
                self.services.pop()  # it exited: nothing to stop at the end
        return self._launch(kind, free_port(), env, health=health)

    def restart(self, service: Service, **env: str) -> Service:
        """Stop `service` cleanly and start its kind again on the same port, so clients find it where it was."""
        assert service.stop() == 0, f"{service.name} did not exit cleanly on SIGTERM"
        return self._launch(service.name, service.port, env)

    def _launch(self, kind: str, port: int, env: dict[str, str], *, health: str = "") -> Service:
        port_var = "API_GRPC_PORT" if kind == "api" else "EXECUTOR_GRPC_PORT"
        host_var = "API_GRPC_HOST" if kind == "api" else "EXECUTOR_GRPC_HOST"
        log = self.directory / f"{kind}-{len(self.services)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [SENTINEL, kind],
                env=self.env(**{port_var: str(port), host_var: "127.0.0.1"}, **env),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        service = Service(name=kind, process=process, port=port, log=log)
        self.services.append(service)
        wait_serving(service, health=health)
        return service

    def logs(self) -> str:
        return "\n".join(f"--- {s.name} ({s.log.name})\n{s.log.read_text(errors='replace')}" for s in self.services)

    def stop_services(self, *, failed: bool, timeout: float = 20) -> list[int]:
        """Stop every service (SIGTERM), last started first; their exit codes.

        After a failed test each one still running first logs what its tasks await (SIGUSR1,
        `shared.taskdump`), so a test that timed out waiting on a service shows where it stood.
        """
        if failed:
            dumping = [s for s in self.services if s.process.poll() is None]
            for service in dumping:
                service.process.send_signal(signal.SIGUSR1)
            with contextlib.suppress(AssertionError):  # a service too stuck to answer: stop it anyway
                wait_for_blocking(
                    lambda: all(END_MARK in s.log.read_text(errors="replace") for s in dumping),
                    within=5,
                    interval=0.1,
                    what="the services' task dumps",
                )
        return [svc.stop(timeout=timeout) for svc in reversed(self.services)]


def wait_serving(service: Service, within: float = 90, *, health: str = "") -> None:
    """Block until the service's grpc.health.v1 (its `health` service; "": overall) says SERVING
    (or fail with its log).

    A service usually answers within a second or two; on a machine whose cores are busy, importing
    its modules and launching Chromium has been seen to take 30 s, hence the wide bound."""
    with grpc.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)

        def serving() -> bool:
            if service.process.poll() is not None:
                text = service.log.read_text(errors="replace")
                taken = PortTaken if f":{service.port}" in text and "Address already in use" in text else AssertionError
                raise taken(f"{service.name} exited early:\n{text}")
            reply = stub.Check(health_pb2.HealthCheckRequest(service=health), timeout=1)
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

        wait_for_blocking(
            serving,
            within=within,
            interval=0.1,
            what=lambda: f"{service.name} to be SERVING:\n{service.log.read_text()}",
            ignoring=(grpc.RpcError,),
        )


@contextlib.contextmanager
def open_stack(directory: Path, failed: Callable[[], bool]) -> Iterator[Stack]:
    """A redis-server and the test pages, for services a test starts; all stopped on exit.

    The services' logs are shown when `failed()` says a test failed, or when one exits uncleanly.
    """
    seen: list[str] = []
    with serve_directory(PAGES, seen=seen) as site:
        s = Stack(redis=start_redis(directory), directory=directory, site=site, seen=seen)
        try:
            yield s
        finally:
            codes = s.stop_services(failed=failed())
            s.redis.stop()  # the one running now: a test may have restarted it
            if failed() or any(c not in (0, -signal.SIGTERM) for c in codes):
                sys.stderr.write(s.logs())
            assert all(c == 0 for c in codes), f"a service did not exit cleanly on SIGTERM: {codes}"


@pytest.fixture
def stack(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Stack]:
    with open_stack(tmp_path, lambda: request.node.stash.get(FAILED, False)) as s:
        yield s


FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if getattr(report, "failed", False):
        item.stash[FAILED] = True
    return report


@pytest.fixture
async def api_stub(stack: Stack) -> AsyncIterator[pb_grpc.TestExecutionStub]:
    api = next((s for s in stack.services if s.name == "api"), None) or stack.start("api")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel:
        yield pb_grpc.TestExecutionStub(channel)


@pytest.fixture
async def redis_of(stack: Stack) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(stack.redis.url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()
