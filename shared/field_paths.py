"""Field paths as the JSON a user writes spells them.

Violations name fields by their proto names (`definition.steps[2].expect_url.pattern`): what gRPC
clients set. Test files, the HTTP API and the SDK's dicts are proto3 JSON, which spells the same
fields in lowerCamelCase (`expectUrl`); a path shown to their users must be one they can find in
their file.
"""

from __future__ import annotations

import re

_SNAKE = re.compile(r"_([a-z0-9])")
_BRACKETS = re.compile(r"(\[[^\]]*\])")


def json_path(path: str) -> str:
    """`path` with each field name in lowerCamelCase, as proto3 JSON names it
    (`definition.steps[0].wait_for.state` → `definition.steps[0].waitFor.state`); what is inside
    brackets (an index, a header's name) and names without an underscore are kept."""
    if "_" not in path:
        return path
    parts = _BRACKETS.split(path)  # odd items: the bracketed parts
    return "".join(part if i % 2 else _SNAKE.sub(lambda m: m.group(1).upper(), part) for i, part in enumerate(parts))
