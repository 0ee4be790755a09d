"""The SDK against a `sentinel api` process with API keys and a per-tenant queue limit: who may call,
and what a refusal looks like. No executor runs, so every submitted job stays waiting."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import grpc
import pytest

from sentinel_client import (
    AsyncClient,
    Client,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
)
from shared.access import KeyEntry, Role, hash_key, new_key
from tests.e2e.conftest import Stack
from tests.sentinel_client.conftest import api_of, running_stack
from tests.sentinel_client.twins import FLAVORS, Calls, connect

pytestmark = pytest.mark.timeout(60)

MAX_QUEUED = 2
STEPS = [{"navigate": {"url": "https://shop.example.test/"}}]
#: Who holds a key: "<tenant>-<role>"; each flavor's limit test has a tenant of its own.
HOLDERS = ("acme-viewer", "acme-submitter", "acme-admin", "acme-operator", *(f"capped{f}-submitter" for f in FLAVORS))


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A new key for each holder, and the keys file (hashes only) at keys["file"]."""
    made = {holder: new_key() for holder in HOLDERS}
    entries = [
        KeyEntry(tenant=holder.rsplit("-", 1)[0], role=Role.parse(holder.rsplit("-", 1)[1]), sha256=hash_key(key))
        for holder, key in made.items()
    ]
    path = tmp_path_factory.mktemp("keys") / "keys.json"
    path.write_text(json.dumps({"keys": [e.to_json() for e in entries]}))
    yield {**made, "file": str(path)}


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest, keys: dict[str, str]
) -> Iterator[Stack]:
    """The API alone (jobs stay waiting), requiring keys, with a small per-tenant queue limit."""
    env = {
        "SENTINEL_AUTH": "keys",
        "SENTINEL_API_KEYS_FILE": keys["file"],
        "SENTINEL_TENANT_MAX_QUEUED": str(MAX_QUEUED),
    }
    with running_stack(tmp_path_factory, request.node, ("api",), **env) as s:
        yield s


async def test_no_key_or_an_unknown_one_is_unauthenticated(flavor: str, stack: Stack) -> None:
    for key in (None, new_key()):
        async with connect(flavor, api_of(stack), api_key=key) as client:
            with pytest.raises(UnauthenticatedError) as refused:
                await client.get("some-job")
            assert refused.value.code is grpc.StatusCode.UNAUTHENTICATED and refused.value.message
            with pytest.raises(UnauthenticatedError):
                [event async for event in client.events("some-job")]


async def test_a_viewer_reads_but_may_not_submit(flavor: str, stack: Stack, keys: dict[str, str]) -> None:
    async with connect(flavor, api_of(stack), api_key=keys["acme-viewer"]) as viewer:
        assert (await viewer.stats()).tenant == "acme"
        with pytest.raises(PermissionDeniedError) as denied:
            await viewer.submit({"name": "nope", "steps": STEPS})
        assert denied.value.code is grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(PermissionDeniedError):
            await viewer.pause()
    async with connect(flavor, api_of(stack), api_key=keys["acme-submitter"]) as submitter:
        job = await submitter.submit({"name": "mine", "steps": STEPS})
        assert (await submitter.get(job.id)).tenant == "acme"
        await job.cancel()


async def test_a_tenant_over_its_queued_limit_is_refused_and_not_retried(
    flavor: str, stack: Stack, keys: dict[str, str]
) -> None:
    calls = Calls(flavor)
    key = keys[f"capped{flavor}-submitter"]
    async with connect(flavor, api_of(stack), api_key=key, interceptors=[calls.interceptor()]) as client:
        for n in range(MAX_QUEUED):
            await client.submit({"name": f"queued {n}", "steps": STEPS})
        with pytest.raises(ResourceExhaustedError) as full:
            await client.submit({"name": "one too many", "steps": STEPS})
        assert full.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "SENTINEL_TENANT_MAX_QUEUED" in full.value.message
        assert calls.made == {"Submit": MAX_QUEUED + 1}  # the refusal was not tried again
        assert len([job async for job in client.jobs()]) == MAX_QUEUED


async def test_from_env_reads_the_address_and_the_key(stack: Stack, keys: dict[str, str]) -> None:
    environ = {"SENTINEL_API": api_of(stack), "SENTINEL_API_KEY": keys["acme-operator"]}
    async with AsyncClient.from_env(environ) as client:
        assert client.target == api_of(stack)
        assert (await client.pause()).paused and not (await client.resume()).paused

    def blocking() -> str:
        with Client.from_env(environ) as blocking_client:
            return blocking_client.stats().tenant

    assert await asyncio.to_thread(blocking) == "acme"
    # A keyword wins over the environment.
    async with AsyncClient.from_env(environ, api_key=None) as keyless:
        with pytest.raises(UnauthenticatedError):
            await keyless.stats()
