"""Artifacts as protobuf: the listing entry and the chunks of a streamed read (the API's edge, outbound).

Re-exported by `shared.edge.convert`, where callers import it from. Nothing here may import grpc.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

from protos import sentinel_pb2 as pb
from shared.artifacts import Artifact
from shared.edge.convert_jobs import timestamp

_UINT32_MAX = 2**32 - 1


def artifact_to_proto(artifact: Artifact) -> pb.Artifact:
    """One entry of ListArtifacts."""
    return pb.Artifact(
        name=artifact.name,
        content_type=artifact.content_type,
        size_bytes=artifact.size,
        attempt=min(artifact.attempt, _UINT32_MAX),
        step_index=artifact.step_index,
        created_at=timestamp(artifact.created_at_ms),
    )


async def artifact_chunks_to_proto(artifact: Artifact, chunks: AsyncIterable[bytes]) -> AsyncIterator[pb.ArtifactChunk]:
    """GetArtifact's messages: one per chunk, the first with the content type and size as well.

    An empty artifact is still one message, carrying only the metadata.
    """
    first: pb.ArtifactChunk | None = pb.ArtifactChunk(content_type=artifact.content_type, size_bytes=artifact.size)
    async for data in chunks:
        if first is not None:
            first.data = data
            chunk, first = first, None
            yield chunk
        else:
            yield pb.ArtifactChunk(data=data)
    if first is not None:
        yield first
