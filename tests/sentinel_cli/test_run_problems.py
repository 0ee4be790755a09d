"""`sentinel run` refusing bad input before anything is submitted: every problem found here, of every
path and file, listed together (a file that is not JSON, or not text, hides no other), with a last
line saying nothing was submitted and, when the API cannot be reached to check the other files, a
line saying so; and two reports given one path. The API address is a closed port."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from pathlib import Path

import pytest

from sentinel_cli import run_command
from sentinel_client._sources import read_document
from shared.errors import ValidationError
from tests.sentinel_cli.test_client import SENTINEL, WAITS, sentinel, write
from tests.sentinel_cli.test_run_command import NOT_SENT
from tests.support import closed_port, wait_for

pytestmark = pytest.mark.timeout(60)


def _nowhere() -> str:
    return f"127.0.0.1:{closed_port()}"


async def test_a_file_that_is_not_json_hides_no_other_files_problems(tmp_path: Path) -> None:
    server_only = write(tmp_path / "bad.json", {"name": "bad", "steps": [{"click": {"selector": ""}}]})
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'\xff{"name": "caf\xe9"}')
    local = write(tmp_path / "local.json", {"name": "local", "viewport": {"width": -1}, "steps": WAITS})
    good = write(tmp_path / "pass.json", {"name": "pass", "steps": WAITS})
    missing = str(tmp_path / "nope.json")

    nowhere = _nowhere()
    code, out, err = await sentinel(nowhere, "run", server_only, str(broken), missing, str(latin), local, good)
    unreachable = err.splitlines()[4].partition("UNAVAILABLE: ")[2]
    assert nowhere in unreachable

    assert code == 2 and out == ""
    assert err.splitlines() == [
        f"sentinel: paths[2]: {missing!r} names no definition file",
        f"sentinel: INVALID_ARGUMENT: {broken}: file: is not valid JSON: Expecting property name enclosed in double"
        " quotes: line 1 column 2 (char 1)",
        f"sentinel: {latin}: file: is not UTF-8 text: invalid start byte at byte 0",
        f"sentinel: INVALID_ARGUMENT: {local}: definition.viewport.width: Value out of range: -1",
        f"sentinel: the API could not check the other 2 file(s): UNAVAILABLE: {unreachable}",
        NOT_SENT,  # bad.json's empty selector is the API's to find: it could not be asked
    ]


def test_a_file_that_cannot_be_read_is_a_problem_of_that_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    locked = write(tmp_path / "locked.json", {"name": "locked", "steps": WAITS})
    broken = tmp_path / "broken.json"
    broken.write_text("[", encoding="utf-8")

    def refused(path: str | os.PathLike[str]) -> object:
        if str(path) == locked:  # as chmod 000 would, for a user who is not root
            raise PermissionError(13, "Permission denied", str(path))
        return read_document(path)

    monkeypatch.setattr("sentinel_cli.run_command.read_document", refused)

    loaded = run_command.load_all([locked, str(broken)])
    assert not loaded.complete and loaded.tests == [] and [str(f) for f in loaded.files] == [locked, str(broken)]
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == f"sentinel: {locked}: file: cannot be read: Permission denied"
    assert lines[1].startswith(f"sentinel: INVALID_ARGUMENT: {broken}: file: is not valid JSON")
    assert lines[2:] == []


async def test_two_reports_given_one_path_are_refused_before_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    test = write(tmp_path / "t.json", {"name": "t", "steps": WAITS})
    monkeypatch.chdir(tmp_path)
    (tmp_path / "link.out").symlink_to(tmp_path / "same.out")
    for junit, json_report in (("same.out", "same.out"), ("same.out", "./same.out"), ("same.out", "link.out")):
        with pytest.raises(ValidationError) as refused:
            await run_command.run_suite(_nowhere(), [test], junit=junit, json_report=json_report)
        assert [(v.field, v.description) for v in refused.value.violations] == [
            ("--json", f"{json_report!r} is the --junit report's file too; give each report a file of its own")
        ]

    code, out, err = await sentinel(_nowhere(), "run", test, "--junit", "x.out", "--json", "./x.out", cwd=tmp_path)
    assert (code, out) == (2, "")
    assert err == "sentinel: --json: './x.out' is the --junit report's file too; give each report a file of its own\n"
    assert not (tmp_path / "x.out").exists()


async def test_sigterm_while_the_api_is_asked_ends_with_143_and_one_line(tmp_path: Path) -> None:
    """SIGTERM during a --dry-run's call to an API that never answers: no traceback, exit 143."""
    test = write(tmp_path / "t.json", {"name": "t", "steps": WAITS})
    held: list[socket.socket] = []  # connections taken and kept open, so the CLI waits on them

    def connected() -> bool:
        try:
            connection, _ = silent.accept()
        except BlockingIOError:
            return False
        held.append(connection)
        return True

    with socket.socket() as silent:  # takes connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        silent.setblocking(False)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTINEL_", "OTEL_"))}
        env["SENTINEL_API"] = f"127.0.0.1:{silent.getsockname()[1]}"
        process = await asyncio.create_subprocess_exec(
            SENTINEL, "run", "--dry-run", test, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        try:
            await wait_for(connected, within=30, what="the CLI to call the API")
            process.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(process.communicate(), timeout=30)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            for connection in held:
                connection.close()
    assert process.returncode == 143
    assert err.decode() == "sentinel: terminated (SIGTERM)\n"
