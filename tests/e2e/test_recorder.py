"""A Chrome Recorder recording through real processes: `sentinel import`, then `sentinel submit --follow`
of the imported definition and of the recording as it is, each run by `sentinel api` + `sentinel
executor` + Redis in Chromium to COMPLETED.

The recording (tests/sentinel_cli/recordings/checkout.json) is what Chrome's Recorder exports for the
checkout page in tests/sentinel_cli/recordings/site/, made on 127.0.0.1:8088; the test serves that
site on a free port and puts its origin in the recording's URLs.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import SENTINEL, Stack
from tests.support import serve_directory

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

RECORDINGS = Path(__file__).resolve().parents[1] / "sentinel_cli" / "recordings"
RECORDED_ORIGIN = "http://127.0.0.1:8088"
#: A row of --follow's per-step table for a step that passed: "    3  fill "Name"   ok    12ms", a
#: page load's with its status after it ("  HTTP 200").
PASSED_ROW = re.compile(r"^\s+\d+\s+.*\s+ok\s+\d+ms(?:  HTTP \d{3})?$", re.MULTILINE)


def sentinel(stack: Stack, *args: str, api_port: int = 0) -> subprocess.CompletedProcess[str]:
    env = stack.env(SENTINEL_API=f"127.0.0.1:{api_port}") if api_port else stack.env()
    return subprocess.run([SENTINEL, *args], env=env, capture_output=True, text=True, timeout=120)


async def test_a_recording_imported_or_submitted_as_it_is_runs_to_completed(stack: Stack, tmp_path: Path) -> None:
    seen: list[str] = []
    with serve_directory(RECORDINGS / "site", seen=seen) as origin:
        recording = tmp_path / "checkout.json"
        recording.write_text(
            (RECORDINGS / "checkout.json").read_text(encoding="utf-8").replace(RECORDED_ORIGIN, origin),
            encoding="utf-8",
        )
        imported = tmp_path / "checkout.sentinel.json"
        done = await asyncio.to_thread(sentinel, stack, "import", str(recording), "-o", str(imported))
        assert done.returncode == 0 and done.stderr == "", done.stderr
        definition = json.loads(imported.read_text(encoding="utf-8"))
        assert definition["name"] == "Checkout as a guest"
        assert definition["viewport"] == {"width": 1280, "height": 720}
        kinds = [next(iter(step.keys() - {"name", "timeoutMs"})) for step in definition["steps"]]
        assert {"navigate", "click", "fill", "select", "hover", "press", "waitFor", "expectUrl", "expectTitle"} == set(
            kinds
        )

        api = stack.start("api")
        stack.start("executor")
        for path in (imported, recording):
            ran = await asyncio.to_thread(sentinel, stack, "submit", str(path), "--follow", api_port=api.port)
            assert ran.returncode == 0, f"{path.name}:\n{ran.stdout}\n{ran.stderr}"
            assert "COMPLETED" in ran.stdout, ran.stdout
            assert len(PASSED_ROW.findall(ran.stdout)) == len(kinds), ran.stdout

    # Each run typed the recorded values into the form and submitted it with the recorded Enter.
    submitted = [path for path in seen if path.startswith("/confirm.html?")]
    assert submitted == ["/confirm.html?name=Ada+Lovelace&email=ada%40example.com&country=fr&terms=on"] * 2
