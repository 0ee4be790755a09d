"""`shared.events.EVENT_KINDS` (what WatchEvents, the SSE route and the CLI accept as kinds) names
exactly the kinds the Lua scripts write."""

from __future__ import annotations

import re
from pathlib import Path

from shared.events import EVENT_KINDS
from shared.model import JobState

SCRIPTS = Path(__file__).resolve().parents[2] / "shared" / "scripts"
CALL = re.compile(r"\b(?:emit_event|event_entry)\(ctx, [^,]+, ([^,)]+)")


def written_kinds() -> tuple[set[str], set[str]]:
    """The literal kinds the scripts' event calls name, and the expressions they pass instead."""
    literals: set[str] = set()
    others: set[str] = set()
    for script in sorted(SCRIPTS.glob("*.lua")):
        for line in script.read_text(encoding="utf-8").splitlines():
            if line.lstrip().startswith(("--", "local function")):
                continue
            for argument in CALL.findall(line):
                chosen = re.sub(r"[=~]= '[a-z_]+'", "", argument)  # `state == 'pending' and 'waiting' or ...`
                quoted = re.findall(r"'([a-z_]+)'", chosen)
                literals.update(quoted)
                if not quoted:
                    others.add(f"{script.name}: {argument.strip()}")
            literals.update(re.findall(r"\bkind = '([a-z_]+)'", line))
    return literals, others


def test_every_kind_a_script_writes_is_a_known_kind_and_every_known_kind_is_written() -> None:
    literals, others = written_kinds()
    # The two calls that pass a variable: a finished job's own state (adopt.lua, record.lua's `kind`).
    assert others == {"adopt.lua: ctx.job.state", "common.lua: kind", "record.lua: kind"}
    ends = {state.value for state in JobState if state.terminal}
    assert literals | ends == set(EVENT_KINDS)
    assert len(EVENT_KINDS) == len(set(EVENT_KINDS))
