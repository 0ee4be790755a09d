"""The API's side of the executors' internal Run call (SENTINEL_EXECUTION=direct or hybrid).

One channel per executor in SENTINEL_EXECUTORS, with the TLS and API key the executor client
settings name (`SENTINEL_EXECUTOR_TLS_*`, `SENTINEL_EXECUTOR_API_KEY`). `RemoteExecutor.run` turns
the call into domain values and its failures into `ExecutorRefused` (the executor answered
RESOURCE_EXHAUSTED or UNAVAILABLE before sending anything: nothing ran) or `ExecutorLost`. Leaving
the iteration early (the job was cancelled) cancels the call, and the executor stops the run.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence

import grpc

from protos import sentinel_pb2_grpc as pb_grpc
from shared.edge.convert_direct import progress_from_proto, run_end_from_proto, run_request_to_proto
from shared.edge.tls import open_channel
from shared.errors import ExecutorLost, ExecutorRefused
from shared.model import Progress, RunEnd
from shared.settings import ClientSettings

#: Codes with which an executor refuses a run it has not started.
REFUSED = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})


class RemoteExecutor:
    def __init__(self, address: str, channel: grpc.aio.Channel) -> None:
        self.address = address
        self.in_flight = 0
        self._stub = pb_grpc.ExecutorStub(channel)

    async def run(self, record: Mapping[str, str], trace: str) -> AsyncGenerator[Progress | RunEnd, None]:
        call = self._stub.Run(run_request_to_proto(record, trace))
        started = False
        try:
            async for update in call:
                started = True
                if update.HasField("end"):
                    yield run_end_from_proto(update.end)
                    return
                yield progress_from_proto(update.progress)
        except grpc.aio.AioRpcError as exc:
            detail = f"{exc.code().name}: {exc.details()}"
            if not started and exc.code() in REFUSED:
                raise ExecutorRefused(detail) from None
            raise ExecutorLost(f"executor {self.address} lost the run ({detail})") from None
        finally:
            call.cancel()
        raise ExecutorLost(f"executor {self.address} lost the run (the call ended without the run's end)")


class ExecutorPool:
    def __init__(self, addresses: Sequence[str], client: ClientSettings) -> None:
        self._channels = [open_channel(client, address) for address in addresses]
        self.executors = [RemoteExecutor(a, c) for a, c in zip(addresses, self._channels, strict=True)]

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()
