"""The private redis-server `sentinel dev` and the tests start: a port taken before it binds it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentinel_cli import redis_proc


def test_a_free_port_taken_before_redis_binds_it_is_replaced_by_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        ports: Iterator[int] = iter([taken, redis_proc.free_port()])
        monkeypatch.setattr(redis_proc, "free_port", lambda: next(ports))
        server = redis_proc.start_redis(tmp_path)
        try:
            assert server.port != taken
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
                s.sendall(b"PING\r\n")
                assert s.recv(16).startswith(b"+PONG")
        finally:
            server.stop()


def test_a_port_asked_for_and_taken_is_an_error(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        with pytest.raises(RuntimeError, match="taken"):
            redis_proc.start_redis(tmp_path, port=held.getsockname()[1])
