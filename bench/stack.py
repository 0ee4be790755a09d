"""The real Sentinel processes for the submit and latency benchmarks, started as a new user would.

A private redis-server (`sentinel_cli.redis_proc.start_redis`), an API keys file with one submitter
key made the way `sentinel keys create` makes it, and `sentinel api` / `sentinel executor` as child
processes with API keys on, each on a free loopback port. Everything started here is stopped on exit.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import redis as redis_py
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos import sentinel_pb2 as pb
from sentinel_cli.redis_proc import RedisProcess, free_port, start_redis, stop_process
from shared.access import KeyEntry, Role, hash_key, new_key

SENTINEL = str(Path(sys.executable).with_name("sentinel"))
TENANT = "bench"


@dataclass
class Service:
    kind: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class Stack:
    directory: Path
    redis: RedisProcess
    key: str  # a submitter key of tenant TENANT
    keys_file: Path
    services: list[Service] = field(default_factory=list)

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.key}"),)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "QUEUE_", "SENTINEL_", "OTEL_"))}
        env.update(
            REDIS_URL=self.redis.url,
            SENTINEL_API_KEYS_FILE=str(self.keys_file),
            API_HTTP_PORT="0",
            API_METRICS_PORT="0",
            EXECUTOR_METRICS_PORT="0",
            SENTINEL_SPOOL_DIR=str(self.directory / "spool"),
            SENTINEL_ARTIFACTS_URL=f"file://{self.directory / 'artifacts'}",
        )
        env.update(extra)
        return env

    def start(self, kind: str, *, source: Path | None = None, **extra: str) -> Service:
        """Start `sentinel api` or `sentinel executor` on a free port; return once it is SERVING.

        `source`: run Sentinel from that source tree instead (another checkout, e.g. the commit
        before a change, measured beside this one on the same Redis)."""
        port = free_port()
        command = [SENTINEL, kind]
        if source is not None:
            command = [sys.executable, "-m", "sentinel_cli.main", kind]
            extra = {"PYTHONPATH": str(source), **extra}
        names = ("API_GRPC_PORT", "API_GRPC_HOST") if kind == "api" else ("EXECUTOR_GRPC_PORT", "EXECUTOR_GRPC_HOST")
        log = self.directory / f"{kind}-{len(self.services)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                command,
                cwd=self.directory,  # not this checkout: `python -m` would import from the working directory first
                env=self.env(**{names[0]: str(port), names[1]: "127.0.0.1"}, **extra),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        service = Service(kind=kind, port=port, process=process, log=log)
        self.services.append(service)
        _wait_serving(service)
        return service

    def client(self) -> redis_py.Redis:
        return redis_py.Redis(port=self.redis.port, decode_responses=True)


def _wait_serving(service: Service, within: float = 90) -> None:
    deadline = time.monotonic() + within
    with grpc.insecure_channel(service.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            if service.process.poll() is not None:
                raise RuntimeError(f"{service.kind} exited:\n{service.log.read_text(errors='replace')}")
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{service.kind} not SERVING after {within} s")
            time.sleep(0.1)


@contextlib.contextmanager
def open_stack(directory: Path) -> Iterator[Stack]:
    """A private redis-server and a keys file; the services `Stack.start` adds are stopped on exit."""
    key = new_key()
    keys_file = directory / "keys.json"
    entry = KeyEntry(tenant=TENANT, role=Role.parse("submitter"), sha256=hash_key(key))
    keys_file.write_text(json.dumps({"keys": [entry.to_json()]}))
    stack = Stack(directory=directory, redis=start_redis(directory), key=key, keys_file=keys_file)
    try:
        yield stack
    finally:
        for service in reversed(stack.services):
            if service.process.poll() is None:
                service.process.send_signal(signal.SIGTERM)
            stop_process(service.process)
        stack.redis.stop()


def request_definition(url: str) -> pb.TestDefinition:
    """The benchmarks' job: a browserless API check, one `request` step against `url`."""
    return pb.TestDefinition(
        name="bench api check",
        steps=[pb.Step(name="ping", timeout_ms=5000, request=pb.HttpRequest(url=url, expect_status=200))],
    )


def machine(client: redis_py.Redis) -> dict[str, object]:
    import grpc as grpc_module

    info = client.info("server")
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "redis_server": info.get("redis_version"),
        "redis_py": redis_py.__version__,
        "grpcio": grpc_module.__version__,
    }


def cpu_seconds(pid: int, *, tree: bool = False) -> float:
    """User + system CPU seconds process `pid` has used so far (/proc); with `tree`, its live
    descendants' too (an executor's Playwright driver and Chromium), and its reaped children's."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if tree:
        ticks += int(fields[13]) + int(fields[14])
        for child in _children(pid):
            with contextlib.suppress(OSError):
                ticks += round(cpu_seconds(child, tree=True) * os.sysconf("SC_CLK_TCK"))
    return ticks / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found.extend(int(p) for p in (task / "children").read_text().split())
    return found


def commandstats(client: redis_py.Redis) -> dict[str, dict[str, float]]:
    """INFO commandstats as {command: {calls, usec, usec_per_call}}."""
    raw = client.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): {
            k: float(v) for k, v in stats.items() if k in ("calls", "usec", "usec_per_call")
        }
        for name, stats in raw.items()
    }
