"""Sentinel's Lua scripts, loaded once per client and called by name.

Each `.lua` file beside this module carries a header with its KEYS, ARGV, reply and why it must
be atomic. Three files hold functions other scripts share and are prepended to them, in this
order: `tally.lua` (the stats figures, for every script that moves a job between states),
`fair.lua` (fair share, for those that put a job in a lane or take one out) and `lib.lua` (claiming
an entry, for the executor's claim and reclaim).
redis-py's `Script` objects call EVALSHA and reload on NOSCRIPT, and work inside pipelines.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

_DIR = Path(__file__).with_name("scripts")
#: The shared files, in the order they are prepended, and the scripts that use each.
_LIBRARIES: tuple[tuple[str, frozenset[str]], ...] = (
    (
        "tally",
        frozenset({"submit", "claim", "finish", "promote", "cancel", "reclaim", "release", "requeue"})
        | {"clean", "purge"},
    ),
    ("fair", frozenset({"submit", "claim", "promote", "release", "requeue"})),
    ("lib", frozenset({"claim", "reclaim"})),
)


@cache
def source(name: str) -> str:
    """The text of script `name`, with the shared files it uses prepended."""
    parts = [(_DIR / f"{lib}.lua").read_text(encoding="utf-8") for lib, users in _LIBRARIES if name in users]
    return "\n".join([*parts, (_DIR / f"{name}.lua").read_text(encoding="utf-8")])


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
        )
        return cls(**{n: client.register_script(source(n)) for n in names})
