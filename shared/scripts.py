"""Sentinel's Lua scripts, loaded once per client and called by name.

Each `.lua` file beside this module carries a header with its KEYS, ARGV, reply and why it must
be atomic. `lib.lua` holds functions shared by the executor scripts and is prepended to them.
redis-py's `Script` objects call EVALSHA and reload on NOSCRIPT, and work inside pipelines.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

_DIR = Path(__file__).with_name("scripts")
_WITH_LIB = {"claim", "reclaim"}
#: Scripts that fair.lua (fair share within a lane) is prepended to.
_WITH_FAIR = {"claim", "submit", "promote"}


@cache
def source(name: str) -> str:
    """The text of script `name`, with lib.lua prepended where the script uses it."""
    text = (_DIR / f"{name}.lua").read_text(encoding="utf-8")
    if name in _WITH_LIB:
        text = (_DIR / "lib.lua").read_text(encoding="utf-8") + "\n" + text
    if name in _WITH_FAIR:
        text = (_DIR / "fair.lua").read_text(encoding="utf-8") + "\n" + text
    return text


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
        )
        return cls(**{n: client.register_script(source(n)) for n in names})
