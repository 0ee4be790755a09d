"""`sentinel run` as a user runs it, where no browser is needed: the real console script against a
real API server (port 0) and redis-server with no executor, so the run's tests wait for as long as a
test needs. Bad files are named by their paths, report paths are checked before anything runs, and
Ctrl-C leaves the run going with the reports written and the command that cancels it. (A run through
Chromium to its end is tests/e2e/test_sentinel_run.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from junitparser import JUnitXml, Skipped

from sentinel_cli import run_command
from sentinel_client import AsyncClient, RunState
from shared.errors import ValidationError
from tests.sentinel_cli.test_client import WAITS, interrupted, sentinel, write
from tests.sentinel_cli.test_client import api as api
from tests.support import closed_port

pytestmark = pytest.mark.timeout(60)

RECORDING = Path(__file__).parent / "recordings" / "unsupported.json"


async def test_every_problem_of_every_file_is_named_by_its_file(api: str, tmp_path: Path) -> None:
    good = write(tmp_path / "a-good.json", {"name": "good", "steps": WAITS})
    server_refuses = write(tmp_path / "b-empty.json", {"name": "empty", "steps": [{"waitFor": {"selector": ""}}]})

    code, _, err = await sentinel(api, "run", good, server_refuses)

    assert code == 2
    said = f"sentinel: INVALID_ARGUMENT: {server_refuses}: definition.steps[0].waitFor.selector: must not be empty"
    assert err.splitlines() == [said]

    local = write(tmp_path / "c-local.json", {"name": "local", "viewport": {"width": -1}, "steps": WAITS})
    code, out, err = await sentinel(api, "run", good, local, str(RECORDING))
    assert code == 2 and out == ""  # nothing was submitted
    lines = err.splitlines()
    assert lines[0] == f"sentinel: {local}: definition.viewport.width: Value out of range: -1"
    unsupported = [line for line in lines if line.startswith(f"sentinel: {RECORDING}: steps[")]
    assert len(unsupported) == 17 and "(and" not in err  # every step Sentinel cannot run, as import lists them
    assert lines[-1] == f"sentinel: `sentinel import {RECORDING} --skip-unsupported` leaves these steps out"
    async with AsyncClient(api) as client:
        assert [job async for job in client.jobs()] == []


async def test_a_report_path_that_cannot_be_written_is_refused_before_the_run(tmp_path: Path) -> None:
    test = write(tmp_path / "t.json", {"name": "t", "steps": WAITS})
    (tmp_path / "file").write_text("", encoding="utf-8")
    nowhere = f"127.0.0.1:{closed_port()}"  # were the run submitted, this would say UNAVAILABLE
    with pytest.raises(ValidationError) as refused:
        await run_command.run_suite(
            nowhere, [test], junit=str(tmp_path), json_report=str(tmp_path / "file" / "report.json")
        )
    assert [(v.field, v.description) for v in refused.value.violations] == [
        ("--junit", f"{str(tmp_path)!r} is a directory; name the file to write in it"),
        (
            "--json",
            f"{str(tmp_path / 'file' / 'report.json')!r} cannot be made: {str(tmp_path / 'file')!r} is not a directory",
        ),
    ]
    code, _, err = await sentinel(nowhere, "run", test, "--junit", str(tmp_path))
    assert code == 2 and err.startswith("sentinel: --junit: ") and "UNAVAILABLE" not in err


async def test_ctrl_c_leaves_the_run_going_writes_the_reports_and_names_the_cancel_command(
    api: str, tmp_path: Path
) -> None:
    tests = [write(tmp_path / f"t{i}.json", {"name": f"t{i}", "steps": WAITS}) for i in range(2)]
    junit, report = tmp_path / "out" / "junit.xml", tmp_path / "out" / "report.json"

    code, out, err = await interrupted(
        api, "run", *tests, "--junit", str(junit), "--json", str(report), ready=r"run \S+: 2 test"
    )

    run_id = out.split()[1].rstrip(":")
    assert code == 130
    assert err == f"sentinel: interrupted; run {run_id} goes on (sentinel cancel {run_id} stops it)\n"
    assert f"report: {junit}" in out and f"report: {report}" in out
    [suite] = list(JUnitXml.fromfile(str(junit)))
    assert suite.tests == 2 and all(isinstance(case.result[0], Skipped) for case in suite)  # never ran
    document = json.loads(report.read_text(encoding="utf-8"))
    assert document["runId"] == run_id and [t["outcome"] for t in document["tests"]] == ["skipped", "skipped"]

    code, out, _ = await sentinel(api, "cancel", run_id)
    assert code == 0 and out.startswith(f"run {run_id}  CANCELLED")
    async with AsyncClient(api) as client:
        assert (await client.get_run(run_id)).state is RunState.CANCELLED
