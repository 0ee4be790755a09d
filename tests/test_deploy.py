"""Checks on docker-compose.yml, deploy/*.Dockerfile and the container health probe.

Docker cannot build or run here, so these tests parse the deploy files, check they agree with
each other and with pyproject.toml, and run what the containers would run where that is possible
without Docker: the compose Redis command on a local redis-server, and the health probe
(``python -m sentinel_cli.healthcheck``) against a real ``grpc.aio`` server.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml  # type: ignore[import-untyped]
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from tests.support import free_port, wait_for_blocking

ROOT = Path(__file__).resolve().parent.parent
BASE_IMAGE = "python:3.11-slim-bookworm"
PROBE_MODULE = "sentinel_cli.healthcheck"

# compose service -> (Dockerfile, gRPC port, command)
SERVICES = {
    "api": ("deploy/api.Dockerfile", 50051, ["sentinel", "api"]),
    "executor": ("deploy/executor.Dockerfile", 50052, ["sentinel", "executor"]),
}
#: Services run as several containers (`docker compose up --scale executor=3`).
SCALED = {"executor"}


# --- parsing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str

    def exec_form(self) -> list[str]:
        """The instruction's arguments; exec (JSON) form as is, shell form wrapped in /bin/sh -c."""
        value = self.value
        if self.keyword == "HEALTHCHECK":
            value = re.sub(r"^(--\S+\s+)*CMD\s+", "", value)
        if value.startswith("["):
            parsed = json.loads(value)
            assert isinstance(parsed, list) and all(isinstance(a, str) for a in parsed), value
            return parsed
        return ["/bin/sh", "-c", value]


def parse_dockerfile(path: Path) -> list[list[Instruction]]:
    """Split a Dockerfile into build stages, each a list of instructions (continuations joined)."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # comments inside a continued instruction are dropped by Docker too
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, f"{path}: dangling line continuation"
    stages: list[list[Instruction]] = []
    for line in logical:
        keyword, _, value = line.partition(" ")
        instruction = Instruction(keyword.upper(), " ".join(value.split()))
        if instruction.keyword == "FROM":
            stages.append([])
        assert stages, f"{path}: {keyword} before the first FROM"
        stages[-1].append(instruction)
    return stages


def last(stage: list[Instruction], keyword: str) -> Instruction | None:
    found = [i for i in stage if i.keyword == keyword]
    return found[-1] if found else None


def final_stage(dockerfile: str) -> list[Instruction]:
    path = ROOT / dockerfile
    assert path.is_file(), f"{dockerfile} is missing"
    return parse_dockerfile(path)[-1]


def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def service(name: str) -> dict[str, Any]:
    services = compose()["services"]
    assert name in services, f"docker-compose.yml has no service {name!r}"
    config = services[name]
    assert isinstance(config, dict)
    return config


def as_argv(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(a) for a in command]


def environment(config: dict[str, Any]) -> dict[str, str]:
    env = config.get("environment", {})
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def project_scripts() -> dict[str, str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    scripts = pyproject["project"]["scripts"]
    assert isinstance(scripts, dict)
    return scripts


# --- docker-compose.yml --------------------------------------------------------------------


def test_redis_uses_aof_a_volume_and_a_ping_healthcheck() -> None:
    redis = service("redis")
    assert str(redis["image"]).startswith("redis:7")
    argv = as_argv(redis["command"])
    assert argv[0] == "redis-server"
    assert argv[argv.index("--appendonly") + 1] == "yes"
    assert argv[argv.index("--appendfsync") + 1] == "everysec"
    assert argv[argv.index("--maxmemory-policy") + 1] == "noeviction"
    volumes = [str(v) for v in redis.get("volumes", [])]
    assert any(v.split(":")[1:2] == ["/data"] for v in volumes), volumes
    named = [v.split(":")[0] for v in volumes if not v.startswith((".", "/"))]
    assert all(n in (compose().get("volumes") or {}) for n in named), "named volumes must be declared"
    test = as_argv(redis["healthcheck"]["test"])
    assert test[0] in ("CMD", "CMD-SHELL") and "redis-cli" in " ".join(test) and "ping" in test[-1]


def test_compose_redis_command_runs_with_aof_on(tmp_path: Path) -> None:
    """Start a local redis-server with the compose arguments and read its configuration back."""
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.fail("redis-server and redis-cli are required (make install)")
    argv = as_argv(service("redis")["command"])
    port = free_port()
    local = [*argv, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path), "--save", ""]
    proc = subprocess.Popen(local, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        cli = ["redis-cli", "-p", str(port)]

        # The compose healthcheck's command, polled until the server is up.
        def pong() -> bool:
            assert proc.poll() is None, "redis-server exited with the compose arguments"
            reply = subprocess.run([*cli, "ping"], capture_output=True, text=True, timeout=5, check=False)
            return reply.stdout.strip() == "PONG"

        wait_for_blocking(pong, within=10, what="redis-server to answer PING")
        for name, expected in (("appendonly", "yes"), ("appendfsync", "everysec"), ("maxmemory-policy", "noeviction")):
            got = subprocess.run([*cli, "config", "get", name], capture_output=True, text=True, check=True)
            assert got.stdout.split() == [name, expected]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_builds_from_its_dockerfile_and_runs_its_cmd(name: str) -> None:
    dockerfile, _, command = SERVICES[name]
    config = service(name)
    build = config["build"]
    assert isinstance(build, dict), "build needs context and dockerfile"
    assert Path(build.get("context", ".")) == Path("."), "the build context is the repository root"
    assert build["dockerfile"] == dockerfile
    stage = final_stage(dockerfile)
    cmd = last(stage, "CMD")
    assert cmd is not None, f"{dockerfile} has no CMD"
    entrypoint = last(stage, "ENTRYPOINT")
    image_argv = (entrypoint.exec_form() if entrypoint else []) + cmd.exec_form()
    assert image_argv == command
    compose_argv = (as_argv(config["entrypoint"]) if "entrypoint" in config else []) + as_argv(config["command"])
    assert compose_argv == image_argv


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_env_ports_healthcheck_and_dependencies(name: str) -> None:
    dockerfile, port, _ = SERVICES[name]
    config = service(name)
    assert environment(config)["REDIS_URL"] == "redis://redis:6379/0"
    if name in SCALED:
        assert str(port) in [str(p) for p in config["expose"]], "on the compose network"
    else:
        assert f"{port}:{port}" in [str(p) for p in config["ports"]]
    assert str(port) in (last(final_stage(dockerfile), "EXPOSE") or Instruction("EXPOSE", "")).value.split()
    test = as_argv(config["healthcheck"]["test"])
    assert test[0] == "CMD", "exec form: no shell needed in the image"
    assert test[1:] == ["python", "-m", PROBE_MODULE, f"localhost:{port}"]
    depends = config["depends_on"]
    assert depends["redis"]["condition"] == "service_healthy"
    if name == "executor":
        assert "api" in depends
        assert environment(config)["SENTINEL_CHROMIUM"] == "/usr/bin/chromium"


def published_host_ports(config: dict[str, Any]) -> list[str]:
    """The host side of each published port (short `[IP:]HOST:CONTAINER[/proto]` or long syntax)."""
    found = []
    for entry in config.get("ports", []):
        if isinstance(entry, dict):
            if entry.get("published"):
                found.append(str(entry["published"]))
            continue
        parts = str(entry).split("/")[0].split(":")
        if len(parts) >= 2 and parts[-2]:
            found.append(parts[-2])
    return found


@pytest.mark.parametrize("name", sorted(SCALED))
def test_a_scaled_service_publishes_no_fixed_host_port_and_has_no_fixed_name(name: str) -> None:
    """`docker compose up --scale executor=3`: each container would claim the same host port or name."""
    config = service(name)
    assert published_host_ports(config) == [], f"{name} publishes fixed host ports"
    assert "container_name" not in config
    dockerfile = SERVICES[name][0]
    exposed = (last(final_stage(dockerfile), "EXPOSE") or Instruction("EXPOSE", "")).value.split()
    assert sorted(str(p) for p in config["expose"]) == sorted(exposed), "the image's ports, on the compose network"
    # Each container gets its own name in the Redis group: the worker id defaults to host-pid-random.
    assert "SENTINEL_WORKER_ID" not in environment(config)


def test_published_host_ports_reads_every_form() -> None:
    config = {"ports": ["8080:8080", "127.0.0.1:9000:9000/tcp", "9100", {"target": 1, "published": 2}, {"target": 3}]}
    assert published_host_ports(config) == ["8080", "9000", "2"]


def test_the_api_publishes_its_http_port() -> None:
    """The HTTP/JSON API and the dashboard: set, published and exposed (the healthcheck stays gRPC)."""
    config = service("api")
    assert environment(config)["API_HTTP_PORT"] == "8080"
    assert "8080:8080" in [str(p) for p in config["ports"]]
    assert "8080" in (last(final_stage("deploy/api.Dockerfile"), "EXPOSE") or Instruction("EXPOSE", "")).value.split()


# --- Dockerfiles ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_dockerfile_installs_the_project_and_runs_as_non_root(name: str) -> None:
    dockerfile, port, _ = SERVICES[name]
    stages = parse_dockerfile(ROOT / dockerfile)
    for stage in stages:
        assert stage[0].value.split()[0] == BASE_IMAGE
    runs = " && ".join(i.value for stage in stages for i in stage if i.keyword == "RUN")
    assert re.search(r"pip install (\S+ )*\.(\s|$)", runs), "the image must `pip install .`"
    stage = stages[-1]
    user = last(stage, "USER")
    assert user is not None and user.value.split(":")[0] not in ("root", "0"), "run as non-root"
    healthcheck = last(stage, "HEALTHCHECK")
    assert healthcheck is not None
    assert healthcheck.exec_form() == ["python", "-m", PROBE_MODULE, f"localhost:{port}"]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_dockerfile_command_is_a_console_script(name: str) -> None:
    dockerfile, _, _ = SERVICES[name]
    stage = final_stage(dockerfile)
    program = ((last(stage, "ENTRYPOINT") or last(stage, "CMD")) or Instruction("CMD", "[]")).exec_form()
    assert program, f"{dockerfile} runs nothing"
    assert program[0] in project_scripts(), f"{program[0]!r} is not in [project.scripts]"


def test_executor_image_has_chromium() -> None:
    stage = final_stage("deploy/executor.Dockerfile")
    runs = " ".join(i.value for i in stage if i.keyword == "RUN")
    assert re.search(r"apt-get install -y --no-install-recommends (\S+ )*chromium(\s|$)", runs)
    env = " ".join(i.value for i in stage if i.keyword == "ENV")
    assert re.search(r"(^|\s)SENTINEL_CHROMIUM=/usr/bin/chromium(\s|$)", env)


def test_dockerignore_keeps_what_pip_install_needs() -> None:
    patterns = [
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ".venv" in patterns and ".git" in patterns
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    included = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = sorted({pattern.split(".")[0] for pattern in included})
    assert len(packages) == 6, packages
    needed = ["pyproject.toml", *packages]
    for path in needed:
        ignored = [p for p in patterns if not p.startswith("!") and fnmatch.fnmatch(path, p)]
        assert not ignored, f".dockerignore drops {path} (pattern {ignored}); `pip install .` needs it"


# --- the commands the containers run -------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the `sentinel` console script's entry point the way its generated wrapper does."""
    launcher = (
        "import sys\n"
        "from importlib.metadata import entry_points\n"
        "(ep,) = entry_points(group='console_scripts', name='sentinel')\n"
        "sys.argv[0] = 'sentinel'\n"
        "sys.exit(ep.load()())\n"
    )
    return subprocess.run(
        [sys.executable, "-c", launcher, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )


@pytest.mark.parametrize("command", [["api"], ["executor"], ["dev"]])
def test_cli_has_the_commands_containers_and_make_run(command: list[str]) -> None:
    result = run_cli(*command, "--help")
    assert result.returncode == 0, result.stderr
    if command == ["dev"]:
        assert "--demo" in result.stdout, "`make dev` runs `sentinel dev --demo`"


@dataclass
class HealthServer:
    port: int
    servicer: Any


@pytest.fixture
async def health_server() -> AsyncIterator[HealthServer]:
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield HealthServer(port=port, servicer=servicer)
    finally:
        await server.stop(None)


async def probe(*args: str) -> tuple[int, str]:
    """Run the probe as the container does; the event loop keeps serving while it runs."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        PROBE_MODULE,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=ROOT,
    )
    output, _ = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode is not None
    return proc.returncode, output.decode()


async def test_probe_exits_0_when_serving(health_server: HealthServer) -> None:
    code, output = await probe(f"localhost:{health_server.port}")
    assert (code, "SERVING" in output) == (0, True), output


async def test_probe_exits_1_when_not_serving(health_server: HealthServer) -> None:
    await health_server.servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    code, output = await probe(f"127.0.0.1:{health_server.port}")
    assert (code, "NOT_SERVING" in output) == (1, True), output


async def test_probe_asks_about_a_named_service(health_server: HealthServer) -> None:
    await health_server.servicer.set("sentinel.v1.TestExecution", health_pb2.HealthCheckResponse.SERVING)
    await health_server.servicer.set("sentinel.v1.QueueAdmin", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert (await probe(f"127.0.0.1:{health_server.port}", "sentinel.v1.TestExecution"))[0] == 0
    assert (await probe(f"127.0.0.1:{health_server.port}", "sentinel.v1.QueueAdmin"))[0] == 1
    code, output = await probe(f"127.0.0.1:{health_server.port}", "no.such.Service")
    assert (code, "NOT_FOUND" in output) == (1, True), output


async def test_probe_exits_1_when_nothing_listens() -> None:
    code, output = await probe(f"127.0.0.1:{free_port()}")
    assert (code, "UNAVAILABLE" in output) == (1, True), output


async def test_probe_exits_1_on_bad_usage() -> None:
    code, output = await probe()
    assert (code, "usage:" in output) == (1, True), output


def test_the_api_and_the_executor_share_one_artifact_store() -> None:
    api, executor = service("api"), service("executor")
    url = environment(api)["SENTINEL_ARTIFACTS_URL"]
    assert url == environment(executor)["SENTINEL_ARTIFACTS_URL"]
    directory = url.split(":-", 1)[1].rstrip("}").removeprefix("file://")  # the default of ${VAR:-default}
    for config in (api, executor):
        mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in config.get("volumes", [])}
        assert mounts.get(directory) == "artifacts", f"{directory} is the shared volume: {mounts}"
    assert "artifacts" in (compose().get("volumes") or {})
    for dockerfile in ("api.Dockerfile", "executor.Dockerfile"):
        text = (ROOT / "deploy" / dockerfile).read_text()
        # A fresh named volume takes the owner of the image's directory: the service's own user.
        assert f"install -d -o 10001 -g 10001 {directory}" in text, dockerfile
