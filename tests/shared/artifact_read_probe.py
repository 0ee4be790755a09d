"""Read one artifact through the store in a fresh process and report what it cost in memory.

Run by test_artifact_s3 as `python -m tests.shared.artifact_read_probe KEY [stream|hold]`,
configured by the environment exactly as a service is (SENTINEL_ARTIFACTS_URL, AWS_*). A fresh
process, because a test process that already held big buffers may have heap to spare that hides
a new one; and the resident size as well as tracemalloc's peak, because the S3 library's buffers
live outside Python's allocator, where tracemalloc cannot see them. `hold` keeps every chunk, as
a reader that buffered the whole object would: it shows the measurement can see 20 MiB.
Prints one JSON object.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import resource
import sys
import tracemalloc

from shared.artifact_store import open_store
from shared.settings import ArtifactSettings


def rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


async def main(key: str, mode: str) -> dict[str, object]:
    store = open_store(ArtifactSettings.from_env())
    # Warm up what any read needs once (the library's runtime and a connection) before measuring.
    await store.stat(key)
    async with contextlib.aclosing(store.read(key, chunk_size=1024)) as warm:
        await anext(warm)
    baseline = peak = rss_bytes()
    tracemalloc.start()
    digest = hashlib.sha256()
    sizes: list[int] = []
    held: list[bytes] = []
    async with contextlib.aclosing(store.read(key)) as chunks:
        async for chunk in chunks:
            digest.update(chunk)
            sizes.append(len(chunk))
            if mode == "hold":
                held.append(chunk)
            peak = max(peak, rss_bytes())
    _, python_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "sha256": digest.hexdigest(),
        "chunks": len(sizes),
        "largest_chunk": max(sizes, default=0),
        "total": sum(sizes),
        "rss_growth": peak - baseline,
        "python_peak": python_peak,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "stream"))))
