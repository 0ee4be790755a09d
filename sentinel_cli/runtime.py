"""Process plumbing for the long-running commands: logging set-up and stop-on-signal.

Log lines about a job carry its job id, tenant, attempt and trace id (`shared.logcontext`): text
lines end with `[job=… tenant=… attempt=… trace=…]`, JSON lines have them as fields.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable

from shared import eventloop, taskdump
from shared.logcontext import FIELDS, JobContextFilter
from shared.settings import EventLoopSettings

_TEXT_NAMES = {"job_id": "job", "tenant": "tenant", "attempt": "attempt", "trace_id": "trace"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, "")
            if value:
                data[name] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        shown = [f"{_TEXT_NAMES[n]}={getattr(record, n)}" for n in FIELDS if getattr(record, n, "")]
        if not shown:
            return line
        first, newline, rest = line.partition("\n")
        return f"{first} [{' '.join(shown)}]{newline}{rest}"


def make_handler(fmt: str = "text", stream: object = None) -> logging.Handler:
    """A handler writing `fmt` ('text' or 'json') lines, with the job context on each record."""
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(JobContextFilter())
    return handler


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    root = logging.getLogger()
    root.handlers[:] = [make_handler(fmt)]
    root.setLevel(level.upper())


def run_until_signal(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run `main(stop)` where `stop` is set on SIGINT or SIGTERM, on the event loop SENTINEL_EVENT_LOOP
    chooses (`shared.eventloop`); SIGUSR1 logs what every task awaits (`shared.taskdump`)."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        taskdump.install(loop)
        await main(stop)

    settings = EventLoopSettings.from_env()  # a bad value refused before the coroutine exists (no "never awaited")
    eventloop.run(runner(), settings)
