"""What a user sees of the SDK without calling anything: help() and signatures (no environment in
them), a docstring on every public method, the types a type checker gets (`Job.created_at` is a
`datetime`), and that a type checker outside the repository finds the installed package at all."""

from __future__ import annotations

import inspect
import os
import pydoc
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import get_type_hints

import pytest

import sentinel_client
from protos import sentinel_pb2 as pb
from sentinel_client import AsyncClient, Client, Job
from sentinel_client._convert import job

pytestmark = pytest.mark.timeout(120)


def _public_classes() -> list[type]:
    return [
        obj
        for name in sentinel_client.__all__
        if inspect.isclass(obj := getattr(sentinel_client, name)) and obj.__module__.startswith("sentinel_client")
    ]


def test_help_and_signatures_never_show_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = f"snt_planted_{uuid.uuid4().hex}"
    monkeypatch.setenv("SENTINEL_API_KEY", secret)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    plain = getattr(pydoc, "plaintext")  # noqa: B009 (help()'s renderer, not in typeshed)
    for shown in (Client, AsyncClient, sentinel_client, Client.from_env, AsyncClient.from_env):
        assert secret not in pydoc.render_doc(shown, renderer=plain), shown
    assert secret not in str(inspect.signature(Client.from_env))
    assert inspect.signature(Client.from_env).parameters["environ"].default is None


def test_from_env_reads_the_process_environment_when_given_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTINEL_API", "127.0.0.1:1")
    with Client.from_env() as client:
        assert client.target == "127.0.0.1:1"
    with Client.from_env({"SENTINEL_API": "127.0.0.1:2"}) as client:
        assert client.target == "127.0.0.1:2"
    assert AsyncClient.from_env().target == "127.0.0.1:1"  # no channel until its first call: nothing to close


def test_every_public_method_of_the_public_classes_has_a_docstring() -> None:
    missing = []
    for cls in _public_classes():
        for owner in cls.__mro__:
            if not owner.__module__.startswith("sentinel_client"):
                continue  # Exception's, StrEnum's, tuple's own
            for name, value in vars(owner).items():
                if name.startswith("_"):
                    continue
                if isinstance(value, property):
                    documented = value.__doc__
                elif isinstance(value, classmethod | staticmethod) or inspect.isfunction(value):
                    documented = inspect.getdoc(value)
                else:
                    continue  # fields, enum members
                if not documented:
                    missing.append(f"{cls.__name__}.{name}")
    assert not missing, f"no docstring: {sorted(set(missing))}"


def test_a_jobs_created_at_is_a_datetime_always_set() -> None:
    assert get_type_hints(Job)["created_at"] is datetime
    made = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    stamp = pb.Job(job_id="j")
    stamp.created_at.FromDatetime(made)
    assert job(stamp).created_at == made
    assert job(pb.Job(job_id="j")).created_at == datetime(1970, 1, 1, tzinfo=UTC)  # an API that sent none
    assert Job().created_at.tzinfo is UTC  # built by hand, as tests do


def test_a_type_checker_outside_the_repository_finds_the_installed_package(tmp_path: Path) -> None:
    """`make install`'s editable install must give type checkers a path to follow: mypy cannot
    follow setuptools' import-hook finder and says `import-not-found`."""
    script = tmp_path / "user.py"
    script.write_text(
        "from sentinel_client import Client, Job\n\n\n"
        "def created(client: Client, job_id: str) -> str:\n"
        "    done: Job = client.get(job_id)\n"
        "    return done.created_at.isoformat()\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k not in ("MYPYPATH", "PYTHONPATH")}
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--follow-imports=silent", "user.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
