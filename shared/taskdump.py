"""What every asyncio task of a running service awaits, logged on SIGUSR1 (`kill -USR1 <pid>`).

A service that stops making progress without an error (a loop waiting on a reply that never comes)
shows nothing in its log; thread dumps (py-spy, faulthandler) show an idle event loop, not the
coroutines parked on it. This walks each task's chain of awaits — coroutine, async generator,
`yield from` — down to the future at its bottom, and logs one block: the task's name, each frame
(file, line, function), then what the innermost one waits on. The end-to-end tests send it to the
services of a failed test before stopping them, so their logs say where each one was.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
import signal
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

#: Frames shown per task at most (a chain deeper than this is cut, and says so).
MAX_DEPTH = 64
#: The last line of a dump: whoever waits for a dump to be written waits for this.
END_MARK = "end of the task dump"


def _frame(awaitable: Any) -> FrameType | None:
    for attribute in ("cr_frame", "ag_frame", "gi_frame"):
        frame = getattr(awaitable, attribute, None)
        if frame is not None:
            return frame  # type: ignore[no-any-return]
    return None


def _awaited(awaitable: Any) -> Any:
    for attribute in ("cr_await", "ag_await", "gi_yieldfrom"):
        inner = getattr(awaitable, attribute, None)
        if inner is not None:
            return _unwrapped(inner)
    return None


def _unwrapped(awaitable: Any) -> Any:
    """What a C helper object stands for: the async generator behind an `async for` step, the
    future behind a future's iterator. Python names neither; the garbage collector's referents do."""
    kind = type(awaitable).__name__
    if kind in ("async_generator_asend", "async_generator_athrow"):
        wanted: Any = inspect.isasyncgen
    elif kind == "FutureIter":
        wanted = asyncio.isfuture
    else:
        return awaitable
    return next((r for r in gc.get_referents(awaitable) if wanted(r)), awaitable)


def describe(task: asyncio.Task[Any]) -> list[str]:
    """The task's name and state, then its await chain from the outermost coroutine inwards."""
    lines = [f"task {task.get_name()!r}" + (" (done)" if task.done() else "")]
    awaitable: Any = task.get_coro()
    for _ in range(MAX_DEPTH):
        if awaitable is None:
            return lines
        frame = _frame(awaitable)
        if frame is None:  # a future, a C or Cython awaitable: the bottom of what can be walked
            lines.append(f"    waits on {awaitable!r:.300}")
            return lines
        code = frame.f_code
        lines.append(f"    {code.co_filename}:{frame.f_lineno} in {code.co_qualname}")
        awaitable = _awaited(awaitable)
    lines.append(f"    … (deeper than {MAX_DEPTH} frames)")
    return lines


def dump() -> str:
    """Every task of the running loop, the current one's included, as `describe` shows it."""
    tasks = sorted(asyncio.all_tasks(), key=lambda t: t.get_name())
    lines = [f"asyncio tasks ({len(tasks)}):"]
    for task in tasks:
        lines += describe(task)
    lines.append(END_MARK)
    return "\n".join(lines)


def install(loop: asyncio.AbstractEventLoop) -> None:
    """Log `dump()` (WARNING) each time the process gets SIGUSR1."""
    loop.add_signal_handler(signal.SIGUSR1, lambda: log.warning("%s", dump()))
