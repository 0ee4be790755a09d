"""The README's Python SDK examples run as written, each in a process of its own, against a real
`sentinel api` and `sentinel executor` and the demo site `sentinel dev` serves.

They are run from a folder holding `examples/`, the repository's example files pointed at the demo
site's port here (the README's reader has it at 127.0.0.1:8088, where `sentinel dev` puts it).
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path

import pytest

from sentinel_cli.dev import DEMO_SITE, EXAMPLES
from tests.e2e.conftest import Stack
from tests.sentinel_client.conftest import api_of
from tests.support import serve_directory

pytestmark = pytest.mark.timeout(120)

README = Path(__file__).resolve().parents[2] / "README.md"


def sdk_examples() -> list[str]:
    """The python code blocks of the README's "Python SDK" section, in order."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Python SDK") :]
    section = section[: section.index("\n### ", 1)]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_the_readme_has_the_examples() -> None:
    blocks = sdk_examples()
    assert len(blocks) == 2 and "Client.from_env()" in blocks[0] and "AsyncClient.from_env()" in blocks[1]


async def test_the_readme_examples_run(stack: Stack, tmp_path: Path) -> None:
    with serve_directory(DEMO_SITE) as site:
        (tmp_path / "examples").mkdir()
        for example in EXAMPLES.glob("*.json"):
            document = json.loads(example.read_text())
            document["definition"]["baseUrl"] = site
            (tmp_path / "examples" / example.name).write_text(json.dumps(document))
        env = stack.env(SENTINEL_API=api_of(stack))
        said = [await run_example(code, tmp_path, env) for code in sdk_examples()]

    blocking, asynchronous = said
    assert "completed" in blocking and "failed" in blocking
    assert "Welcome, grace" in blocking  # the failing step's error
    assert "definition.steps[0].click.selector" in blocking
    assert sorted(p.name for p in (tmp_path / "evidence" / "1").iterdir()) == ["step-04-failure.png", "trace.zip"]
    assert asynchronous.count("completed") >= 3


async def run_example(code: str, cwd: Path, env: dict[str, str]) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=100)
    assert process.returncode == 0, f"{code}\n--- stdout\n{out.decode()}\n--- stderr\n{err.decode()}"
    return out.decode()
