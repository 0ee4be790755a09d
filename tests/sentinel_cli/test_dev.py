"""`sentinel dev`: everything on one machine, and a clean stop on Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from sentinel_cli import dev
from tests.support import chromium_path, free_port, wait_for_blocking

SENTINEL = str(Path(sys.executable).with_name("sentinel"))
pytestmark = pytest.mark.timeout(120)


def dev_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "QUEUE_", "SENTINEL_", "API_", "EXECUTOR_"))
    }
    env.update(
        API_GRPC_PORT=str(free_port()),
        API_HTTP_PORT=str(free_port()),
        EXECUTOR_GRPC_PORT=str(free_port()),
        SENTINEL_CHROMIUM=chromium_path(),
        SENTINEL_ARTIFACTS_DIR=str(tmp_path / "artifacts"),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def test_dev_runs_the_demo_and_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    log = tmp_path / "dev.log"
    demo_port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [SENTINEL, "dev", "--demo", "--demo-port", str(demo_port)],
            env=dev_env(tmp_path),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
            start_new_session=True,  # a process group of its own, like a shell's foreground job
        )

    def demo_done() -> bool:
        assert proc.poll() is None, log.read_text()
        return "The demo is done" in log.read_text()

    try:
        wait_for_blocking(demo_done, within=90, interval=0.2, what=lambda: f"the demo to finish:\n{log.read_text()}")
        text = log.read_text()
        redis_port = re.search(r"redis +redis://127\.0\.0\.1:(\d+)/0", text)
        assert redis_port, text
        assert re.search(r"Job \S+ — COMPLETED", text), text  # the sign-in example passes
        dashboard = re.search(r"dashboard +(http://127\.0\.0\.1:\d+/) ", text)
        assert dashboard, text
        with urllib.request.urlopen(f"{dashboard.group(1)}api/v1/queue/health", timeout=10) as health:
            assert json.load(health)["data"]["status"] in ("healthy", "degraded")
        assert re.search(r"Job \S+ — FAILED", text), text  # the wrong-password one fails on purpose
        assert len(list((tmp_path / "artifacts").glob("*/1/*.png"))) == 2
        # Ctrl-C at a terminal signals the whole foreground process group, Playwright's driver too.
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    leftovers = subprocess.run(["pgrep", "-f", f"redis-server 127.0.0.1:{redis_port.group(1)}"], capture_output=True)
    assert leftovers.returncode == 1, "the private redis-server outlived sentinel dev"
    text = log.read_text()
    assert "stopped." in text
    stop_output = text[text.index("Press Ctrl-C to stop") :]
    for noise in ("Traceback", "ERROR", "WARNING", "never retrieved", "Connection closed"):
        assert noise not in stop_output, stop_output


def test_dev_without_redis_server_says_how_to_fix_it(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    python_dir = Path(sys.executable).parent
    env = dev_env(tmp_path, PATH=f"{bin_dir}:{python_dir}")
    assert shutil.which("redis-server", path=env["PATH"]) is None
    done = subprocess.run(
        [SENTINEL, "dev", "--demo-port", str(free_port())], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "redis-server is not installed" in done.stderr and "make install" in done.stderr


def test_only_a_failure_to_listen_is_blamed_on_the_demo_site() -> None:
    """What fails while the site serves (a service's port taken) is reported as itself."""
    with pytest.raises(OSError, match=r"^cannot listen on 127\.0\.0\.1:50052") as inside, dev.demo_site(free_port()):
        raise OSError("cannot listen on 127.0.0.1:50052: Address already in use (EXECUTOR_GRPC_PORT)")
    assert "demo site" not in str(inside.value)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused = rf"demo site: cannot listen on 127\.0\.0\.1:{port} .*--demo-port"
        with pytest.raises(OSError, match=refused), dev.demo_site(port):
            pass
