"""Sentinel's Lua scripts, loaded once per client and called by name.

Each `.lua` file beside this module carries a header with its KEYS, its context members, its reply
and why it must be atomic. A script pulls in the libraries it uses with include lines
(`--- @include common`), resolved here when it is loaded: each library comes once, before the
first file that includes it, after the libraries it includes itself. The libraries are `common.lua`
(the progress entry, the queue event, the lane entry and its ack, which every script writes the
same way), `tally.lua` (the stats figures), `fair.lua` (fair share), `limit.lua` (rate limits),
`run.lua` (a job's end told to its run), `claim_entry.lua` (claiming an entry, for the executor's
claim and reclaim) and `submit_job.lua` (submitting a job, for submit.lua and a schedule's fire).

Every script takes one argument, ARGV[1]: its context, a JSON object of named members (see
`encode_context`) that the script decodes with `cjson.decode`.
redis-py's `Script` objects call EVALSHA and reload on NOSCRIPT, and work inside pipelines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from shared import codec

_DIR = Path(__file__).with_name("scripts")
_INCLUDE = re.compile(r"^--- @include (\w+)[ \t]*$", re.MULTILINE)


def includes(text: str) -> list[str]:
    """The libraries a script's text includes, in order."""
    return _INCLUDE.findall(text)


@cache
def source(name: str) -> str:
    """The text of script `name`, with the libraries it includes (and theirs) before it, each once."""
    parts: list[str] = []
    _resolve(name, parts, done=set(), open_=[])
    return "\n".join(parts)


def _resolve(name: str, parts: list[str], *, done: set[str], open_: list[str]) -> None:
    if name in done:
        return
    if name in open_:
        raise ValueError(f"Lua include cycle: {' -> '.join([*open_, name])}")
    text = (_DIR / f"{name}.lua").read_text(encoding="utf-8")
    open_.append(name)
    for library in includes(text):
        _resolve(library, parts, done=done, open_=open_)
    open_.pop()
    done.add(name)
    parts.append(text)


def encode_context(members: Mapping[str, object]) -> str:
    """ARGV[1] of a script call: `members` as one JSON object.

    Integers travel as strings, like any other ARGV: Lua holds numbers as doubles and would print a
    large one in exponent form. Strings, booleans, lists and objects go as they are.
    """
    return codec.dumps(
        {
            name: str(value) if isinstance(value, int) and not isinstance(value, bool) else value
            for name, value in members.items()
        }
    )


@dataclass(frozen=True)
class Scripts:
    submit: AsyncScript
    claim: AsyncScript
    progress: AsyncScript
    finish: AsyncScript
    promote: AsyncScript
    cancel: AsyncScript
    heartbeat: AsyncScript
    reclaim: AsyncScript
    release: AsyncScript
    requeue: AsyncScript
    pause: AsyncScript
    clean: AsyncScript
    purge: AsyncScript
    adopt: AsyncScript
    schedule_save: AsyncScript
    schedule_fire: AsyncScript

    @classmethod
    def load(cls, client: aioredis.Redis) -> Scripts:
        names = (
            "submit",
            "claim",
            "progress",
            "finish",
            "promote",
            "cancel",
            "heartbeat",
            "reclaim",
            "release",
            "requeue",
            "pause",
            "clean",
            "purge",
            "adopt",
            "schedule_save",
            "schedule_fire",
        )
        return cls(**{n: client.register_script(source(n)) for n in names})
