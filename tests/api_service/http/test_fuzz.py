"""Fuzz the HTTP API from the OpenAPI document it serves (schemathesis), against a real `sentinel api`
process on a real redis-server: with a valid admin key and without one, no answer is a 5xx, and
every answer has a documented status, content type and a body that fits its schema.

The queue's event stream never ends on its own, so it is fuzzed without a key only (401 at once);
with a key, its parameters are covered by tests/api_service/http/test_events.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api_service.http.openapi import document
from tests.support import free_port, start_redis, wait_for_blocking, write_keys

#: A generated case (generic over the operation it was generated for: any here).
Case: TypeAlias = schemathesis.Case[Any]
SENTINEL = str(Path(sys.executable).with_name("sentinel"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
FUZZ = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@dataclass
class Served:
    base: str  # http://127.0.0.1:<port>/api/v1
    admin_key: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A `sentinel api` process with API keys, on a private redis-server."""
    tmp = tmp_path_factory.mktemp("fuzz")
    redis = start_redis(tmp)
    keys = write_keys(tmp / "keys.json")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "QUEUE_", "SENTINEL_", "API_"))}
    env.update(
        REDIS_URL=redis.url,
        API_GRPC_HOST="127.0.0.1",
        API_GRPC_PORT=str(free_port()),
        API_HTTP_PORT=str(port),
        API_METRICS_PORT="0",
        SENTINEL_API_KEYS_FILE=str(tmp / "keys.json"),
        SENTINEL_ARTIFACTS_DIR=str(tmp / "artifacts"),
    )
    log = tmp / "api.log"
    with log.open("w") as out:
        proc = subprocess.Popen([SENTINEL, "api"], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp)
    base = f"http://127.0.0.1:{port}/api/v1"
    try:

        def up() -> bool:
            assert proc.poll() is None, log.read_text()
            return requests.get(f"{base}/openapi.json", timeout=5).status_code == 200

        wait_for_blocking(up, within=30, interval=0.2, ignoring=(requests.ConnectionError,), what="the API to serve")
        yield Served(base=base, admin_key=keys["acme-admin"])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        finally:
            redis.stop()
        assert "Traceback" not in log.read_text(), log.read_text()


@pytest.fixture(scope="module")
def api_schema(served: Served) -> schemathesis.BaseSchema:
    """The document as the API serves it (not as this test process would build it)."""
    return schemathesis.openapi.from_url(f"{served.base}/openapi.json")


#: Every operation of the document, by (method, path).
OPERATIONS = sorted((m.upper(), p) for p, item in document()["paths"].items() for m in item)


def fuzz(schema: schemathesis.BaseSchema, method: str, path: str, call: Callable[[Case], None]) -> None:
    """Run `call` on the generated cases of one operation (hypothesis drives it, bounded by FUZZ)."""
    operation = schema[path][method]

    @FUZZ
    @given(case=operation.as_strategy())
    def run(case: Case) -> None:
        call(case)

    run()


@pytest.mark.parametrize(("method", "path"), [op for op in OPERATIONS if op[1] != "/queue/events"])
def test_with_an_admin_key_nothing_breaks_its_schema(
    api_schema: schemathesis.BaseSchema, served: Served, method: str, path: str
) -> None:
    headers = {"Authorization": f"Bearer {served.admin_key}"}

    def call(case: Case) -> None:
        case.call_and_validate(base_url=served.base, headers=headers, checks=CHECKS, timeout=30)

    fuzz(api_schema, method, path, call)


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_without_a_key_every_answer_is_a_documented_refusal(
    api_schema: schemathesis.BaseSchema, served: Served, method: str, path: str
) -> None:
    def call(case: Case) -> None:
        response = case.call_and_validate(base_url=served.base, checks=CHECKS, timeout=30)
        if document()["paths"][path][method.lower()].get("security") != []:  # not an open route
            assert response.status_code == 401, response.text

    fuzz(api_schema, method, path, call)
