"""The executors the API runs direct jobs on (SENTINEL_EXECUTORS), and the choice among them.

One gRPC channel per executor, with TLS and the API key the executor client settings name
(`SENTINEL_EXECUTOR_TLS_*`, `SENTINEL_EXECUTOR_API_KEY`). A job goes to the executor with the
fewest of this API's runs in flight; one that refuses (full, draining, unreachable) is skipped for
that job's next choice.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import grpc

from protos import sentinel_pb2_grpc as pb_grpc
from shared.edge.tls import open_channel
from shared.settings import ClientSettings


@dataclass(eq=False)
class Endpoint:
    address: str
    stub: pb_grpc.ExecutorStub | None = None
    in_flight: int = 0  # this API's runs on it now


def least_busy(endpoints: Sequence[Endpoint], *, exclude: Collection[str] = ()) -> Endpoint | None:
    """The endpoint with the fewest runs in flight, not in `exclude` (the first such on a tie); None if none."""
    candidates = [e for e in endpoints if e.address not in exclude]
    return min(candidates, key=lambda e: e.in_flight) if candidates else None


class ExecutorPool:
    def __init__(self, addresses: Sequence[str], client: ClientSettings) -> None:
        self._channels: list[grpc.aio.Channel] = []
        self.endpoints: list[Endpoint] = []
        for address in addresses:
            channel = open_channel(client, address)
            self._channels.append(channel)
            self.endpoints.append(Endpoint(address=address, stub=pb_grpc.ExecutorStub(channel)))

    def choose(self, *, exclude: Collection[str] = ()) -> Endpoint | None:
        return least_busy(self.endpoints, exclude=exclude)

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()
