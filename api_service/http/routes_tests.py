"""HTTP routes of tests (jobs), runs and artifacts: parse, call the domain function, render.

Each handler is the twin of a `TestExecutionServicer` method and calls the same function with the
same arguments (`shared.jobs`, `shared.progress`, `shared.artifacts`, `shared.dead_letters`,
`shared.runs`, with `shared.submit_checks` for a submit). No rule lives here.
"""

from __future__ import annotations

import contextlib
from functools import partial
from pathlib import PurePosixPath

from aiohttp import hdrs, web

from api_service.http import sse
from api_service.http.context import backend, caller, tenant
from api_service.http.envelope import ok
from api_service.http.parsing import query_page, query_word, read_json, submit_from_json
from api_service.http.views import artifact_view, job_view, progress_event_view, run_view, whoami_view
from shared import artifacts, dead_letters, runs
from shared.direct.backend import DirectSubmitted
from shared.jobs import Submitted
from shared.model import JobState, ProgressEvent
from shared.progress import check_cursor
from shared.telemetry import producer_traceparent


async def auth_mode(request: web.Request) -> web.Response:
    """Whether this API needs a key (no key needed to ask): how a signed-out page knows, without a 401."""
    return ok({"authDisabled": backend(request).keys is None})


async def whoami(request: web.Request) -> web.Response:
    return ok(whoami_view(caller(request), auth_disabled=backend(request).keys is None))


async def submit(request: web.Request) -> web.Response:
    body = await read_json(request)
    raw = await request.read()  # the body read_json parsed, kept by aiohttp
    command = backend(request).checks.command(raw, partial(submit_from_json, body))
    submitted = await backend(request).jobs.submit(command, tenant=tenant(request), trace=producer_traceparent())
    return ok({"testId": submitted.job_id, "duplicate": submitted.duplicate}, message=_submitted(submitted), status=202)


def _submitted(submitted: Submitted) -> str:
    """What became of a submit: queued, or (hybrid mode) run directly and why."""
    if submitted.duplicate:
        return "already submitted with this idempotency key"
    if isinstance(submitted, DirectSubmitted):
        return f"test running directly: {submitted.reason}" if submitted.reason else "test running directly"
    return "test queued"


async def status(request: web.Request) -> web.Response:
    job = await backend(request).jobs.get_job(request.match_info["id"], tenant=tenant(request))
    return ok(job_view(job))


async def list_tests(request: web.Request) -> web.Response:
    size, token = query_page(request)
    page = await backend(request).jobs.list_jobs(
        tenant=tenant(request),
        state=query_word(request, "status", JobState),
        tag=request.query.get("tag", ""),
        schedule_id=request.query.get("scheduleId", ""),
        page_size=size,
        page_token=token,
    )
    listed = {"jobs": [job_view(j) for j in page.items], "nextPageToken": page.next_token or None}
    return ok(listed | ({"partial": page.partial} if page.partial else {}))


def _progress_frame(event: ProgressEvent) -> bytes:
    return sse.frame(cursor=event.cursor, event="progress", data=progress_event_view(event))


async def events(request: web.Request) -> web.StreamResponse:
    """The job's progress as SSE, from after `Last-Event-ID`, ending after the terminal event."""
    app, job_id, who = backend(request), request.match_info["id"], tenant(request)
    cursor = request.headers.get("Last-Event-ID", "").strip()
    # Checked before the 200 goes out, so an unknown job is a 404 and a bad cursor a 400.
    check_cursor(cursor)
    await app.jobs.get_job(job_id, tenant=who)
    followed = app.jobs.follow(job_id, tenant=who, cursor=cursor)
    return await sse.stream(request, followed, _progress_frame, keepalive_s=app.keepalive_s)


async def cancel(request: web.Request) -> web.Response:
    job = await backend(request).jobs.cancel(request.match_info["id"], tenant=tenant(request))
    return ok(job_view(job), message="cancelled" if job.state is JobState.CANCELLED else "cancel requested")


async def retry(request: web.Request) -> web.Response:
    job = await dead_letters.retry_job(backend(request).queue, request.match_info["id"], tenant=tenant(request))
    return ok(job_view(job), message="retry queued")


async def list_artifacts(request: web.Request) -> web.Response:
    app = backend(request)
    found = await artifacts.list_artifacts(app.jobs, app.store, request.match_info["id"], tenant=tenant(request))
    return ok({"artifacts": [artifact_view(a) for a in found]})


def _disposition(name: str, content_type: str) -> str:
    file = PurePosixPath(name).name.replace('"', "")
    kind = "inline" if content_type.startswith("image/") else "attachment"
    return f'{kind}; filename="{file}"'


async def artifact(request: web.Request) -> web.StreamResponse:
    """One artifact's bytes, streamed from the store as they are read (never held whole)."""
    app = backend(request)
    name = f"{request.match_info['attempt']}/{request.match_info['file']}"
    opened = await artifacts.open_artifact(app.jobs, app.store, request.match_info["id"], name, tenant=tenant(request))
    async with contextlib.aclosing(opened.chunks) as chunks:
        # The first read happens before the 200 goes out, so a store failure still answers 503.
        first = await anext(chunks, b"")
        found = opened.artifact
        response = web.StreamResponse(
            headers={
                "Content-Type": found.content_type,
                "Content-Disposition": _disposition(found.name, found.content_type),
                "Cache-Control": "private, no-store",
            }
        )
        response.content_length = found.size
        await response.prepare(request)
        if request.method != hdrs.METH_HEAD:  # HEAD: the headers (size, type) without the bytes
            await response.write(first)
            async for chunk in chunks:
                await response.write(chunk)
    await response.write_eof()
    return response


async def get_run(request: web.Request) -> web.Response:
    run = await runs.get_run(backend(request).queue, request.match_info["id"], tenant=tenant(request))
    return ok(run_view(run))
