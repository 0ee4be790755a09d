"""Which job a log line is about: job id, tenant, attempt and trace id on every line logged while
the job runs, without passing a logger around.

The executor binds a job for the task that runs it (a `ContextVar`, so concurrent jobs never mix);
`JobContextFilter`, installed on the log handler, copies the fields onto each record, and the
formatters of `sentinel_cli.runtime` show them. Only identifiers go here, never job content.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar, Token

FIELDS = ("job_id", "tenant", "attempt", "trace_id")

_current: ContextVar[dict[str, str] | None] = ContextVar("sentinel_job_log_context", default=None)


def bind(fields: dict[str, str]) -> Token[dict[str, str] | None]:
    """Tag every log line of this task (and the tasks it starts) with `fields` (names from FIELDS);
    `unbind` with the token."""
    return _current.set({name: fields.get(name, "") for name in FIELDS})


def unbind(token: Token[dict[str, str] | None]) -> None:
    _current.reset(token)


def current() -> dict[str, str]:
    return dict(_current.get() or {})


class JobContextFilter(logging.Filter):
    """Adds `job_id`, `tenant`, `attempt` and `trace_id` to a record ('' outside a job)."""

    def filter(self, record: logging.LogRecord) -> bool:
        bound = _current.get() or {}
        for name in FIELDS:
            if not getattr(record, name, ""):
                setattr(record, name, bound.get(name, ""))
        return True
