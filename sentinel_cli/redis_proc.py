"""Starting a private redis-server (for `sentinel dev`, and for the tests' fixtures)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from shared.errors import ConfigError


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RedisProcess:
    port: int
    directory: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self, *, kill: bool = False) -> None:
        stop_process(self.process, kill=kill)


def stop_process(process: subprocess.Popen[bytes], *, kill: bool = False) -> None:
    """End `process` (SIGTERM, or SIGKILL with `kill`), and SIGKILL it if it lingers past 10 s."""
    if process.poll() is not None:
        return
    if kill:
        process.kill()
    else:
        process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def start_redis(
    directory: Path,
    *,
    port: int | None = None,
    aof: bool = False,
    timeout_s: float = 10,
    options: Sequence[str] = (),
) -> RedisProcess:
    """Start redis-server on 127.0.0.1 (a free port unless given) and wait until it answers PING.

    It never evicts keys (`maxmemory-policy noeviction`, which Sentinel requires); `options` are
    further redis-server arguments, given last so that they win.

    Raises:
        ConfigError: redis-server is not installed.
        RuntimeError: it did not start.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise ConfigError(
            "redis-server is not installed: run `make install` (or `apt-get install redis-server`), "
            "or point REDIS_URL at a running Redis"
        )
    # A free port can be taken between finding it and the server binding it (it is one the kernel
    # also hands to outgoing connections): when the port was not asked for, another is tried.
    for _ in range(0 if port else 2):
        try:
            return _start(binary, directory, port=free_port(), aof=aof, timeout_s=timeout_s, options=options)
        except _Exited:
            continue
    return _start(binary, directory, port=port or free_port(), aof=aof, timeout_s=timeout_s, options=options)


class _Exited(RuntimeError):
    """redis-server exited before it answered (its port taken, most often)."""


def _start(
    binary: str, directory: Path, *, port: int, aof: bool, timeout_s: float, options: Sequence[str]
) -> RedisProcess:
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory), "--save", ""]
    args += ["--appendonly", "yes", "--appendfsync", "always"] if aof else ["--appendonly", "no"]
    args += ["--maxmemory-policy", "noeviction", *options]
    # A session of its own: a Ctrl-C at the terminal must reach the services, which stop in order
    # and then stop this server, not kill the server under them.
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    server = RedisProcess(port=port, directory=directory, process=proc)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise _Exited(f"redis-server exited with code {proc.returncode} (port {port} taken?)")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            if s.recv(16).startswith(b"+PONG"):
                return server
        time.sleep(0.05)
    server.stop(kill=True)
    raise RuntimeError(f"redis-server did not answer within {timeout_s} s")
