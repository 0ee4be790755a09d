"""Real processes for the SDK's tests: redis-server, `sentinel api`, `sentinel executor` and the test pages,
through the end-to-end suite's `open_stack`. One stack serves the whole package (each test works with
jobs of its own); a module that needs other settings starts its own with `running_stack`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

import pytest

from sentinel_client import AsyncClient
from tests.e2e.conftest import Stack, open_stack
from tests.sentinel_client.twins import FLAVORS, connect

#: Node ids of the tests that failed: a stack shows its services' logs when one of its tests did.
_FAILED: set[str] = set()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if getattr(report, "failed", False):
        _FAILED.add(item.nodeid)
    return report


@contextlib.contextmanager
def running_stack(
    tmp_path_factory: pytest.TempPathFactory,
    node: pytest.Item | pytest.Collector,
    services: tuple[str, ...],
    **env: str,
) -> Iterator[Stack]:
    """A stack running `services` with the extra variables `env`, for the tests below `node`."""

    def failed() -> bool:
        return any(test.startswith(node.nodeid) for test in _FAILED)

    with open_stack(tmp_path_factory.mktemp("stack"), failed) as s:
        for kind in services:
            s.start(kind, **env)
        yield s


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Stack]:
    """The API and one executor, auth disabled."""
    with running_stack(tmp_path_factory, request.node, ("api", "executor")) as s:
        yield s


def api_of(stack: Stack) -> str:
    """The address of the stack's API (the one running now: a test may have restarted it)."""
    api = [s for s in stack.services if s.name == "api" and s.process.poll() is None][-1]
    return f"127.0.0.1:{api.port}"


@pytest.fixture(params=FLAVORS)
def flavor(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def client(flavor: str, stack: Stack) -> AsyncIterator[AsyncClient]:
    async with connect(flavor, api_of(stack)) as c:
        yield c
