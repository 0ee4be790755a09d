"""`sentinel run` through real processes: a directory of passing and failing tests (and a Chrome
Recorder recording) as one run, its JUnit file read by junitparser and checked against the JUnit
XSD, its JSON report, and its exit codes."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from junitparser import Failure, JUnitXml

from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from tests.e2e.conftest import SENTINEL, Stack
from tests.sentinel_cli.test_reports import SCHEMA, schema_view
from tests.support import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

PASSING: list[dict[str, Any]] = [
    {"navigate": {"url": "/index.html"}},
    {"fill": {"selector": "#name", "value": "Ada"}},
    {"click": {"selector": "#greet"}},
    {"expectText": {"selector": "#out", "text": "Hi, Ada"}},
    {"name": "the page is served", "request": {"url": "/index.html", "expectStatus": 200}},
]
FAILING: list[dict[str, Any]] = [
    {"navigate": {"url": "/index.html"}},
    {"timeoutMs": 1000, "expectText": {"selector": "#out", "text": "Hi, Grace"}},
]


def write(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document), encoding="utf-8")


def suite(stack: Stack, root: Path, *, failing: bool) -> Path:
    """A directory of tests: two passing definitions, a recording, and (if asked) a failing one."""
    write(root / "greet.json", {"name": "greet", "baseUrl": stack.site, "steps": PASSING})
    write(
        root / "nested" / "greet-again.json",
        {"definition": {"name": "greet again", "baseUrl": stack.site, "steps": PASSING}},
    )
    recording = {
        "title": "recorded greeting",
        "steps": [
            {"type": "navigate", "url": f"{stack.site}/index.html"},
            {"type": "click", "selectors": [["#greet"]], "offsetX": 5, "offsetY": 5},
        ],
    }
    write(root / "recorded.json", recording)
    if failing:
        write(root / "wrong-name.json", {"name": "wrong name", "baseUrl": stack.site, "steps": FAILING})
    return root


async def sentinel(stack: Stack, api: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [SENTINEL, *args],
        cwd=cwd,
        env=stack.env(SENTINEL_API=api),
        capture_output=True,
        text=True,
        timeout=180,
    )


async def test_a_directory_runs_as_one_run_with_junit_and_json_reports(
    stack: Stack, api_stub: pb_grpc.TestExecutionStub, tmp_path: Path
) -> None:
    stack.start("executor")
    api = f"127.0.0.1:{stack.services[0].port}"
    tests = suite(stack, tmp_path / "suite", failing=True)
    junit, report = tmp_path / "out" / "junit.xml", tmp_path / "out" / "report.json"

    reports = ("--junit", str(junit), "--json", str(report), "--artifacts", "evidence")
    done = await sentinel(stack, api, "run", str(tests), *reports, "--parallel", "2", "--tag", "ci", cwd=tmp_path)

    assert done.returncode == 1, done.stdout + done.stderr
    assert "4 test(s), 2 at a time" in done.stdout
    assert "FAILED" in done.stdout and "step 2 (expect #out to contain 'Hi, Grace')" in done.stdout
    SCHEMA.validate(schema_view(junit))
    [testsuite] = list(JUnitXml.fromfile(str(junit)))
    assert (testsuite.tests, testsuite.failures, testsuite.errors, testsuite.skipped) == (4, 1, 0, 0)
    cases = {case.name: case for case in testsuite}
    assert set(cases) == {"greet", "greet again", "recorded greeting", "wrong name"}
    [failure] = [r for r in cases["wrong name"].result if isinstance(r, Failure)]
    assert "Hi, Grace" in (failure.message or "") and "1/step-01-failure.png" in (failure.text or "")
    assert all(float(case.time) > 0 for case in testsuite)
    assert "  the page is served  HTTP 200" in (cases["greet"].system_out or "")
    document = json.loads(report.read_text(encoding="utf-8"))
    assert document["schemaVersion"] == 1
    assert sorted(t["outcome"] for t in document["tests"]) == ["failure", "passed", "passed", "passed"]
    assert {t["source"] for t in document["tests"]} == {
        str(tests / "greet.json"),
        str(tests / "nested" / "greet-again.json"),
        str(tests / "recorded.json"),
        str(tests / "wrong-name.json"),
    }
    greet = next(t for t in document["tests"] if t["name"] == "greet")
    assert [s["httpStatus"] for s in greet["steps"]] == [200, 0, 0, 0, 200]  # the page load's, the request's
    job_id = next(t["jobId"] for t in document["tests"] if t["name"] == "wrong name")
    job = await api_stub.Status(pb.StatusRequest(job_id=job_id))
    assert job.run_id and "ci" in job.tags
    # The failing test's evidence, downloaded below the working directory and attached in both reports,
    # the failure screenshot first; the passing tests' none.
    files = [f"evidence/{job_id}/1/step-01-failure.png", f"evidence/{job_id}/1/trace.zip"]
    assert next(t["artifactFiles"] for t in document["tests"] if t["name"] == "wrong name") == files
    assert sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "evidence").rglob("*.*")) == files
    assert (tmp_path / files[0]).read_bytes().startswith(b"\x89PNG")
    assert (cases["wrong name"].system_out or "").splitlines()[-2:] == [f"[[ATTACHMENT|{f}]]" for f in files]
    assert "artifacts: 2 file(s) of 1 failed or flaky test(s) in evidence" in done.stdout


async def test_exit_codes_every_test_passed_bad_usage_and_no_api(
    stack: Stack, api_stub: pb_grpc.TestExecutionStub, tmp_path: Path
) -> None:
    stack.start("executor")
    api = f"127.0.0.1:{stack.services[0].port}"
    tests = suite(stack, tmp_path / "green", failing=False)

    passed = await sentinel(stack, api, "run", str(tests / "*.json"), str(tests / "nested"))
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "PASSED" in passed.stdout and "3 test(s)" in passed.stdout

    missing = await sentinel(stack, api, "run", str(tmp_path / "no-such-dir"))
    assert missing.returncode == 2 and "names no definition file" in missing.stderr

    unreachable = await sentinel(stack, f"127.0.0.1:{free_port()}", "run", str(tests))
    assert unreachable.returncode == 2 and "UNAVAILABLE" in unreachable.stderr


async def test_each_failing_tests_evidence_is_downloaded_as_it_ends_before_retention_removes_it(
    stack: Stack, tmp_path: Path
) -> None:
    """The queue keeps few failed jobs (here 1, cleaned every 0.3 s: what other pipelines' failures
    do to a run's first ones): waiting for the run's end to download would find the first gone."""
    stack.start("executor")
    api = stack.start("api", QUEUE_REMOVE_ON_FAIL="1", QUEUE_CLEAN_INTERVAL_MS="300")
    root = tmp_path / "failing"
    for n in range(3):
        write(root / f"wrong-{n}.json", {"name": f"wrong {n}", "baseUrl": stack.site, "steps": FAILING})
    report = tmp_path / "report.json"
    args = ("run", str(root), "--parallel", "1", "--json", str(report), "--artifacts", "evidence")
    done = await sentinel(stack, f"127.0.0.1:{api.port}", *args, cwd=tmp_path)

    assert done.returncode == 1, done.stdout + done.stderr
    assert "could not all be downloaded" not in done.stderr, done.stderr
    tests = json.loads(report.read_text(encoding="utf-8"))["tests"]
    assert len(tests) == 3
    for test in tests:
        files = test["artifactFiles"]
        assert [Path(f).name for f in files] == ["step-01-failure.png", "trace.zip"], test
        assert all((tmp_path / f).stat().st_size > 0 for f in files)
    asked = [await sentinel(stack, f"127.0.0.1:{api.port}", "status", t["jobId"]) for t in tests]
    gone = [t["name"] for t, said in zip(tests, asked, strict=True) if "NOT_FOUND" in said.stderr]
    assert len(gone) >= 2, gone  # retention removed them from the queue: their evidence is kept here


async def test_an_output_that_is_not_utf8_gets_plain_lines_and_the_run_its_reports(
    stack: Stack, api_stub: pb_grpc.TestExecutionStub, tmp_path: Path
) -> None:
    """A CI agent whose output is ASCII or cp1252 (Windows Jenkins agents): no bar (plain lines when
    not a terminal), what cannot be encoded is escaped, and a passing run exits 0 with its report."""
    stack.start("executor")
    api = f"127.0.0.1:{stack.services[0].port}"
    write(tmp_path / "suite" / "greet.json", {"name": "grüß · 検査", "baseUrl": stack.site, "steps": PASSING})
    junit = tmp_path / "junit.xml"
    done = await asyncio.to_thread(
        subprocess.run,
        [SENTINEL, "run", str(tmp_path / "suite"), "--junit", str(junit)],
        env=stack.env(SENTINEL_API=api, PYTHONIOENCODING="ascii"),
        capture_output=True,
        timeout=180,
    )
    assert done.returncode == 0, (done.stdout + done.stderr).decode("ascii", "replace")
    out = done.stdout.decode("ascii")  # every byte is ASCII
    assert "1/1 tests done" in out and "[" not in out.split("tests done")[0].splitlines()[-1]
    assert "gr\\xfc\\xdf" in out  # the name, escaped
    [testsuite] = list(JUnitXml.fromfile(str(junit)))
    assert [case.name for case in testsuite] == ["grüß · 検査"]
