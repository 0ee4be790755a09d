"""A real Redis Cluster for the tests: redis-server --cluster-enabled yes nodes on 127.0.0.1, joined by
`redis-cli --cluster create`, in a temp dir; stopped (and killable one by one) by the test."""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

from sentinel_cli.redis_proc import stop_process
from tests.support import wait_for_blocking

#: A node's cluster bus listens on its port + 10000: both must be free and below 65536.
_BUS_OFFSET = 10_000


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_ports(count: int) -> list[int]:
    """`count` ports whose cluster bus ports (+10000) are free too."""
    ports: list[int] = []
    for _ in range(2000):
        port = random.randint(20_000, 45_000)
        if port not in ports and _free(port) and _free(port + _BUS_OFFSET):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise RuntimeError(f"found only {len(ports)} of {count} free port pairs for cluster nodes")


@dataclass
class Node:
    port: int
    directory: Path
    process: subprocess.Popen[bytes]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True, socket_timeout=5)

    def info(self, section: str) -> str:
        with self.client() as c:
            return str(c.execute_command("CLUSTER", section.upper()))

    def role(self) -> str:
        with self.client() as c:
            return str(c.execute_command("ROLE")[0])


@dataclass
class Cluster:
    nodes: list[Node]
    killed: list[Node] = field(default_factory=list)

    @property
    def url(self) -> str:
        """REDIS_URL for Sentinel: any one live node (the cluster client finds the others)."""
        return f"redis://{self.live[0].address}/0"

    @property
    def live(self) -> list[Node]:
        return [n for n in self.nodes if n not in self.killed]

    def masters(self) -> list[Node]:
        return [n for n in self.live if n.role() == "master"]

    def node_of(self, key: str) -> Node:
        """The live master serving `key`'s slot."""
        with self.live[0].client() as c:
            slot = int(c.execute_command("CLUSTER", "KEYSLOT", key))
            for start, end, master, *_ in c.execute_command("CLUSTER", "SLOTS"):
                if int(start) <= slot <= int(end):
                    port = int(master[1])
                    return next(n for n in self.live if n.port == port)
        raise AssertionError(f"no node serves slot {slot}")

    def kill(self, node: Node) -> None:
        """kill -9 the node: no shutdown, no last write to disk."""
        stop_process(node.process, kill=True)
        self.killed.append(node)

    def wait_ok(self, within: float = 60) -> None:
        """Until every live node says cluster_state:ok and knows the same masters for all 16384 slots."""

        def ok() -> bool:
            return all("cluster_state:ok" in n.info("info") for n in self.live)

        wait_for_blocking(ok, within=within, interval=0.1, what="cluster_state:ok on every node", ignoring=(OSError,))

    def flush(self) -> None:
        for node in self.masters():
            with node.client() as c:
                c.flushall()

    def stop(self) -> None:
        for node in self.nodes:
            stop_process(node.process)


def _start_node(directory: Path, port: int) -> Node:
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed (make install)"
    directory.mkdir(parents=True, exist_ok=True)
    args = [
        binary,
        *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory), "--save", ""),
        *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"),
        *("--appendonly", "yes"),
    ]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    return Node(port=port, directory=directory, process=process)


def _start_nodes(cluster: Cluster, directory: Path, count: int) -> None:
    """Start nodes into `cluster.nodes` until `count` of them answer PING. A port found free can be
    taken before its node binds it (the ports are in the range the kernel hands out to outgoing
    connections): such a node exits, and another is started on other ports."""
    for _ in range(5):
        fresh = [_start_node(directory / f"node-{p}", p) for p in cluster_ports(count - len(cluster.nodes))]
        cluster.nodes += fresh

        def settled(fresh: list[Node] = fresh) -> bool:
            for node in fresh:
                if node.process.poll() is None:
                    with node.client() as c:
                        c.ping()
            return True

        wait_for_blocking(settled, within=30, what="every cluster node to answer PING", ignoring=(redis.RedisError,))
        cluster.nodes = [n for n in cluster.nodes if n.process.poll() is None]
        if len(cluster.nodes) == count:
            return
    raise AssertionError(f"only {len(cluster.nodes)} of {count} cluster nodes started: their ports were taken")


@contextlib.contextmanager
def start_cluster(directory: Path, *, masters: int = 3, replicas: int = 0) -> Iterator[Cluster]:
    """A cluster of `masters` masters with `replicas` replicas each, its slots spread evenly."""
    cluster = Cluster(nodes=[])
    try:
        _start_nodes(cluster, directory, masters * (1 + replicas))
        cli = shutil.which("redis-cli")
        assert cli, "redis-cli is not installed (make install)"
        addresses = [n.address for n in cluster.nodes]
        create = subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", str(replicas), "--cluster-yes"],
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert create.returncode == 0, create.stdout.decode(errors="replace") + create.stderr.decode(errors="replace")
        cluster.wait_ok()
        if replicas:
            wait_for_blocking(
                lambda: len(cluster.masters()) == masters,
                within=60,
                what="the replicas to take their roles",
                ignoring=(redis.RedisError,),
            )
        yield cluster
    finally:
        cluster.stop()
