"""A Redis Cluster that does not answer, seen by real `sentinel api` and `sentinel executor` processes:
calls answer UNAVAILABLE (as with one Redis), not INTERNAL, and a service started while the cluster
is away waits unready instead of dying (Kubernetes would restart it in a loop); REDIS_CLUSTER=true
on a Redis that is no cluster node is a configuration error saying so."""

from __future__ import annotations

import subprocess
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from shared.edge.codes import code_name, message_for
from shared.redis_errors import REDIS_UNREACHABLE
from tests.cluster.cluster import Cluster
from tests.e2e.conftest import SENTINEL, Stack
from tests.e2e.helpers import request
from tests.support import RedisProcess, closed_port, ended_once_redis_answers, free_port

pytestmark = pytest.mark.timeout(180)

ENV = {"REDIS_CLUSTER": "true", "SENTINEL_QUEUE_SHARDS": "3"}
UNREACHABLE_TEXT = "the queue store (Redis) is unreachable; try again shortly"


async def submit_refused(port: int) -> grpc.aio.AioRpcError:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.TestExecutionStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Submit(request("http://127.0.0.1:1", [{"navigate": {"url": "/"}}]), timeout=30)
        return refused.value


async def test_a_cluster_that_stops_answering_is_unavailable_and_services_start_without_it(
    tmp_path: pytest.TempPathFactory, cluster: Cluster
) -> None:
    stack = Stack(redis=cluster, directory=tmp_path, site="", seen=[])  # type: ignore[arg-type]
    try:
        api = stack.start("api", **ENV)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel:
            stub = pb_grpc.TestExecutionStub(channel)
            admin = pb_grpc.QueueAdminStub(channel)
            assert (await stub.Submit(request("http://127.0.0.1:1", [{"navigate": {"url": "/"}}]), timeout=30)).job_id

            cluster.stop()  # every node: maintenance, a network cut
            refused = await submit_refused(api.port)
            assert (refused.code(), refused.details()) == (grpc.StatusCode.UNAVAILABLE, UNREACHABLE_TEXT)
            health = await admin.GetHealth(pb.GetHealthRequest(), timeout=30)
            assert health.status == pb.HEALTH_STATUS_UNHEALTHY and "redis unreachable" in health.reasons[0]

        # Started while the cluster does not answer: both wait, unready, instead of exiting.
        away = {**ENV, "REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0"}
        late_api = stack.start("api", health="liveness", **away)
        executor = stack.start("executor", health="direct", **away)  # ready for a hybrid API's direct runs
        async with grpc.aio.insecure_channel(f"127.0.0.1:{executor.port}") as channel:
            overall = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert overall.status == health_pb2.HealthCheckResponse.NOT_SERVING  # it claims nothing meanwhile
        refused = await submit_refused(late_api.port)
        assert (refused.code(), refused.details()) == (grpc.StatusCode.UNAVAILABLE, UNREACHABLE_TEXT)
    finally:
        codes = stack.stop_services(failed=False)
    assert codes == [0, 0, 0], stack.logs()


def test_every_cluster_outage_error_means_unreachable_to_every_part() -> None:
    from redis.exceptions import ClusterDownError, RedisClusterUnreachableError, SlotNotCoveredError, TryAgainError

    for exc in (
        RedisClusterUnreachableError("Redis Cluster cannot be connected."),
        SlotNotCoveredError("Slot 1 is not covered by the cluster."),
        ClusterDownError("The cluster is down"),
        TryAgainError("TRYAGAIN"),
    ):
        assert (code_name(exc), message_for(exc)) == ("UNAVAILABLE", UNREACHABLE_TEXT), exc
        assert isinstance(exc, REDIS_UNREACHABLE), exc  # hybrid's fallback, the start, health: one set


def test_a_service_pointed_at_a_redis_that_is_no_cluster_node_says_so(
    tmp_path: Path, redis_server: RedisProcess
) -> None:
    stack = Stack(redis=redis_server, directory=tmp_path, site="", seen=[])
    env = stack.env(API_GRPC_PORT=str(free_port()), API_GRPC_HOST="127.0.0.1", **ENV)
    done = subprocess.run([SENTINEL, "api"], env=env, capture_output=True, text=True, timeout=90)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "sentinel: configuration error: REDIS_CLUSTER=true, but the Redis at REDIS_URL is no cluster node"
        " (cluster mode is not enabled on it): unset REDIS_CLUSTER, or name a node of the cluster"
    )


def test_a_service_whose_redis_first_answers_as_no_cluster_node_stops_saying_so(
    tmp_path: Path, redis_server: RedisProcess
) -> None:
    """Started while nothing answers at REDIS_URL, it waits unready; the Redis that then answers is
    no cluster node: the same configuration error as at start, and the service ends."""
    port = free_port()
    stack = Stack(redis=redis_server, directory=tmp_path, site="", seen=[])
    env = stack.env(
        API_GRPC_PORT=str(free_port()), API_GRPC_HOST="127.0.0.1", REDIS_URL=f"redis://127.0.0.1:{port}/0", **ENV
    )
    code, said = ended_once_redis_answers([SENTINEL, "api"], env, tmp_path, redis_port=port)
    assert code == 2, said
    assert said.strip().splitlines()[-1] == (
        "sentinel: configuration error: REDIS_CLUSTER=true, but the Redis at REDIS_URL is no cluster node"
        " (cluster mode is not enabled on it): unset REDIS_CLUSTER, or name a node of the cluster"
    )
