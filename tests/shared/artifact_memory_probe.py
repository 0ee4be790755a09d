"""Read or upload one artifact through the store in a fresh process; report its memory cost.

Run by test_artifact_s3 as `python -m tests.shared.artifact_memory_probe stream|hold KEY` or
`... upload KEY PATH`, configured by the environment exactly as a service is
(SENTINEL_ARTIFACTS_URL, AWS_*). A fresh process, because a test process that already held big
buffers may have heap to spare that hides a new one; and the resident size (sampled) as well as
tracemalloc's peak, because the S3 library's buffers live outside Python's allocator, where
tracemalloc cannot see them. `hold` keeps every chunk, as a reader that buffered the whole object
would: it shows the measurement does see an object's worth. Prints one JSON object.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import resource
import sys
import tracemalloc

from shared.artifact_store import open_store
from shared.settings import ArtifactSettings


def rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


async def upload(key: str, path: str) -> dict[str, object]:
    store = open_store(ArtifactSettings.from_env())
    await store.put_bytes(f"{key}.warm", b"x", content_type="text/plain")  # the runtime, a connection
    baseline = peak = rss_bytes()
    task = asyncio.create_task(store.put_file(key, path, content_type="video/webm"))
    while not task.done():
        peak = max(peak, rss_bytes())
        await asyncio.sleep(0.002)  # sampling while the library uploads in its own threads
    await task
    return {"rss_growth": peak - baseline}


async def read(mode: str, key: str) -> dict[str, object]:
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
    mode, key, *path = sys.argv[1:]
    print(json.dumps(asyncio.run(upload(key, path[0]) if mode == "upload" else read(mode, key))), flush=True)
    # Leave without interpreter finalization: the S3 library's worker thread may still be finishing
    # its hand-off of the last result to the (closed) event loop, and a thread re-entering Python
    # while it finalizes aborts the process (SIGABRT, about 1 exit in 15 here).
    os._exit(0)
