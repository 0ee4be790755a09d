"""A real three-master Redis Cluster for the module's tests, and Sentinel's cluster client on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from shared.queue import connect
from shared.settings import RedisSettings
from tests.cluster.cluster import Cluster, start_cluster
from tests.e2e.conftest import pytest_runtest_makereport  # noqa: F401  (marks failed tests: their logs are shown)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three masters, no replicas: started once per module (a few seconds), emptied before each test."""
    with start_cluster(tmp_path_factory.mktemp("cluster")) as started:
        yield started


@pytest.fixture
async def cluster_client(cluster: Cluster) -> AsyncIterator[aioredis.Redis]:
    cluster.flush()
    client = connect(RedisSettings(url=cluster.url, configured=True, cluster=True))
    try:
        yield client
    finally:
        await client.aclose()
