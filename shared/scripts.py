"""Sentinel's Lua scripts, loaded once per client and called by name.

Each `.lua` file beside this module carries a header with its KEYS, its context members, its reply
and why it must be atomic. A script pulls in the libraries it uses with include lines
(`--- @include common`), resolved here when it is loaded: each library comes once, before the
first file that includes it, after the libraries it includes itself. The libraries are `common.lua`
(the progress entry, the queue event, the lane entry and its ack, which every script writes the
same way), `tally.lua` (the stats figures), `fair.lua` (fair share), `limit.lua` (rate limits),
`run.lua` (a job's end told to its run), `claim_entry.lua` (claiming an entry, for the executor's
claim and reclaim), `submit_job.lua` (submitting a job, for submit.lua and a schedule's fire),
`schedule_run.lua` (an entry of a schedule's runs list, for its save and its fire) and
`alert_lane.lua` (the order of an owner's alerts to one receiver, for their claim and record).

Every script takes one argument, ARGV[1]: its context, a JSON object of named members (see
`encode_context`) that the script decodes with `cjson.decode`.
redis-py's `Script` objects call EVALSHA and reload on NOSCRIPT, and work inside pipelines.

Keys, and Redis Cluster. A cluster client sends EVALSHA to the node of its first key's slot, and
Redis refuses a script that touches a key of another slot (CROSSSLOT) or of a slot another node
serves. The convention every script follows:

1. Every key whose name the caller knows is declared in KEYS, all of one queue (or one shard:
   `shared.shards`), so all share one hash tag and slot: the lanes, the job hash and progress
   stream of the job the call is about, and the queue's own keys — events, delayed, dlq,
   completed, failed, paused, the queue's rate-limit start log, a tenant's job and tag indexes,
   an idempotency key. A library needing such a key (`run_note` the delayed zset, `limit_clock`
   the start log) takes it as an argument from its caller's KEYS, never from the context.
2. The only keys built inside a script are those named after what the script reads from Redis:
   the hash and progress stream of a job whose id comes out of a lane entry, the delayed zset or
   a dead-letter or retention set (claim, promote, reclaim, clean, purge); the figures hashes of a
   job's lane and tenant (tally.lua), the fair-share keys of a lane and tenant (fair.lua) and a
   tenant's rate-limit start log (limit.lua), which these libraries find from the job hash or lane
   entry they are handed — most of their callers (claim, promote, reclaim, clean, requeue) cannot
   know the lane or tenant without reading Redis first, and one library keeps one way to find a
   key rather than a second one for the callers that could; the keys of the run a job hash names
   (run.lua); and the tenant indexes of a job being removed (clean.lua). The context carries their
   PREFIXES (`job_prefix`, `progress_prefix`, `stats_prefix`, `fair_prefix`, `limit_prefix`,
   `run_prefix`, the `*_format` strings), all taken from the same `shared.keys.Keys`, so these
   keys carry the same hash tag as the declared ones: same slot, same node. BullMQ builds its job
   keys the same way.
3. Never a static key from a prefix: a script never appends a fixed name to a prefix to reach a
   queue key (`job_prefix .. 'delayed'`), and the context never carries a static key's name.
   tests/cluster/test_scripts.py holds every script to both: it parses the scripts for such
   concatenations, and runs every script through a real cluster, where a key outside the slot
   fails with CROSSSLOT.
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
from shared.script_calls import load_on_cluster

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
    record: AsyncScript
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
    schedule_end: AsyncScript
    forget: AsyncScript

    @classmethod
    def load(cls, client: aioredis.Redis) -> Scripts:
        names = (
            "submit",
            "claim",
            "record",
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
            "schedule_end",
            "forget",
        )
        return cls(**{n: client.register_script(source(n)) for n in names})

    async def preload(self, client: aioredis.Redis, *names: str) -> None:
        """Load these scripts on every primary of a cluster before a pipeline calls them
        (`shared.script_calls.load_on_cluster`)."""
        await load_on_cluster(client, *(getattr(self, name) for name in names))
