"""Every field name a Lua script reads or writes is one `shared.schema` defines.

The scripts spell field names as literals; Python spells them through `shared.schema`. A small Lua
tokenizer finds, in every `.lua` file beside `shared/scripts.py`, the field arguments of
`redis.call` (HSET, HGET, HMGET, HINCRBY, HDEL ... on hashes; the field names of XADD), the field
of tally.lua's `tally_incr` and `tally_set`, and the keys of the field tables passed to common.lua's
`emit_progress`, `progress_entry`, `emit_event` and `event_entry`. A literal must be a
defined name; a literal that starts a concatenation (`'n:' .. state`) must be a defined prefix.
Fields named by a variable are not known statically and are left to the behaviour tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared import scripts
from shared.schema import (
    ENTRY_FIELDS,
    HASH_FIELDS,
    EntryField,
    EventField,
    FigurePrefix,
    ProgressField,
)

SCRIPTS = Path(scripts.__file__).with_name("scripts")
PREFIXES = frozenset(FigurePrefix)
#: Library functions that take fields by name in a table, and the names each may be given.
FIELD_TABLES = {
    "emit_progress": frozenset({*ProgressField, *EntryField}),
    "progress_entry": frozenset({*ProgressField, *EntryField}),
    "emit_event": frozenset(EventField),
    "event_entry": frozenset(EventField),
}
#: tally.lua's writers of one figures field (batch, key, field, ...): the field is the third argument.
FIELD_WRITERS = ("tally_incr", "tally_set")
#: Hash commands and where their field arguments are (after the key): every other from the
#: first (pairs), the first only, or all of them.
PAIRS, FIRST, ALL = "pairs", "first", "all"
HASH_COMMANDS = {
    "HSET": PAIRS,
    "HMSET": PAIRS,
    "HSETNX": FIRST,
    "HGET": FIRST,
    "HEXISTS": FIRST,
    "HINCRBY": FIRST,
    "HINCRBYFLOAT": FIRST,
    "HMGET": ALL,
    "HDEL": ALL,
}

_TOKEN = re.compile(
    r"""(?P<comment>--\[(?P<ceq>=*)\[.*?\](?P=ceq)\]|--[^\n]*)
      | (?P<string>'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*")
      | (?P<long>\[(?P<leq>=*)\[.*?\](?P=leq)\])
      | (?P<name>[A-Za-z_]\w*)
      | (?P<number>\d+(?:\.\d+)?)
      | (?P<op>\.\.\.|\.\.|==|~=|<=|>=|[-+*/%^#<>=(){}\[\];:,.])
      | (?P<space>\s+)""",
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class Token:
    kind: str  # string, name, number, op
    text: str  # a string's value, without its quotes


def tokenize(source: str) -> list[Token]:
    tokens, at = [], 0
    while at < len(source):
        match = _TOKEN.match(source, at)
        assert match, f"cannot read Lua at {source[at : at + 40]!r}"
        kind = match.lastgroup
        if kind in ("string", "long"):
            text = match.group()
            tokens.append(Token("string", text[1:-1] if kind == "string" else text))
        elif kind in ("name", "number", "op"):
            tokens.append(Token(str(kind), match.group()))
        at = match.end()
    return tokens


def call_args(tokens: list[Token], open_at: int) -> list[list[Token]]:
    """The arguments of the call whose '(' is at `open_at`, each as its tokens."""
    args: list[list[Token]] = [[]]
    depth = 0
    for token in tokens[open_at + 1 :]:
        if token.kind == "op" and token.text in "({[":
            depth += 1
        elif token.kind == "op" and token.text in ")}]":
            if depth == 0:
                return args if args != [[]] else []
            depth -= 1
        elif token.kind == "op" and token.text == "," and depth == 0:
            args.append([])
            continue
        args[-1].append(token)
    raise AssertionError("unbalanced call")


def _literal(arg: list[Token]) -> str | None:
    return arg[0].text if len(arg) == 1 and arg[0].kind == "string" else None


def _is_unpack(arg: list[Token]) -> bool:
    return bool(arg) and arg[0] == Token("name", "unpack")


def _xadd_fields(rest: list[list[Token]]) -> list[list[Token]]:
    """XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT n]] id field value ...: the fields."""
    at = 0
    if _literal(rest[at]) == "NOMKSTREAM":
        at += 1
    if _literal(rest[at]) in ("MAXLEN", "MINID"):
        at += 1
        if _literal(rest[at]) in ("=", "~"):
            at += 1
        at += 1
        if _literal(rest[at]) == "LIMIT":
            at += 2
    return _pairs(rest[at + 1 :])


def _pairs(args: list[list[Token]]) -> list[list[Token]]:
    """The fields of field/value pairs, up to an `unpack(...)` (the positions after it are unknown)."""
    fields = []
    for i in range(0, len(args), 2):
        if _is_unpack(args[i]):
            break
        fields.append(args[i])
        if i + 1 < len(args) and _is_unpack(args[i + 1]):
            break
    return fields


@dataclass(frozen=True)
class Use:
    """A field a script names: where, the literal, and whether it is a prefix (`'n:' .. x`)."""

    line: str
    name: str
    prefix: bool
    allowed: frozenset[str]

    @property
    def defined(self) -> bool:
        return self.name in (PREFIXES if self.prefix else self.allowed)


def field_uses(source: str) -> list[Use]:
    """Every field a Lua source names by a literal."""
    tokens = tokenize(source)
    uses: list[Use] = []

    def add(arg: list[Token], allowed: frozenset[str], where: str) -> None:
        if arg and arg[0].kind == "string":
            prefix = len(arg) > 1 and arg[1] == Token("op", "..")
            if len(arg) == 1 or prefix:
                uses.append(Use(where, arg[0].text, prefix, allowed))

    for i, token in enumerate(tokens):
        if token.kind != "name" or i + 1 >= len(tokens) or tokens[i + 1] != Token("op", "("):
            continue
        if i >= 2 and tokens[i - 1] == Token("op", ".") and tokens[i - 2] == Token("name", "redis"):
            args = call_args(tokens, i + 1)
            command = (_literal(args[0]) or "").upper() if args else ""
            rest = args[2:]
            if command in HASH_COMMANDS and rest:
                where = HASH_COMMANDS[command]
                fields = _pairs(rest) if where == PAIRS else rest[:1] if where == FIRST else rest
                for arg in fields:
                    add(arg, HASH_FIELDS, command)
            elif command == "XADD" and rest:
                for arg in _xadd_fields(rest):
                    add(arg, ENTRY_FIELDS, command)
        elif token.text in FIELD_WRITERS and (i == 0 or tokens[i - 1] != Token("name", "function")):
            args = call_args(tokens, i + 1)
            if len(args) > 2:
                add(args[2], HASH_FIELDS, token.text)
        elif token.text in FIELD_TABLES and (i == 0 or tokens[i - 1] != Token("name", "function")):
            flat = [t for arg in call_args(tokens, i + 1) for t in arg]
            for name in _table_keys(flat):
                uses.append(Use(token.text, name, False, FIELD_TABLES[token.text]))
    return uses


def _table_keys(tokens: list[Token]) -> list[str]:
    """The keys of the table constructors among `tokens` (`{name = value, ...}`)."""
    return [
        key.text
        for before, key, after in zip(tokens, tokens[1:], tokens[2:], strict=False)
        if key.kind == "name" and after == Token("op", "=") and before.text in ("{", ",") and before.kind == "op"
    ]


def undefined(source: str) -> list[str]:
    return [f"{use.line} {use.name!r}" for use in field_uses(source) if not use.defined]


LUA_FILES = sorted(SCRIPTS.glob("*.lua"))


@pytest.mark.parametrize("path", LUA_FILES, ids=[p.stem for p in LUA_FILES])
def test_every_field_a_script_names_is_in_the_schema(path: Path) -> None:
    bad = undefined(path.read_text(encoding="utf-8"))
    assert not bad, f"{path.name} names fields shared.schema lacks: {', '.join(bad)}"


def test_the_scan_sees_the_fields_of_every_kind() -> None:
    seen = {use.name for path in LUA_FILES for use in field_uses(path.read_text(encoding="utf-8"))}
    # job hash, progress entry, event, lane entry, figures, figure prefix, field tables
    assert {"fence", "tags", "terminal", "kind", "fair", "processed", "n:", "rm:", "pct"} <= seen


@pytest.mark.parametrize(
    ("lua", "bad"),
    [
        ("redis.call('HSET', KEYS[1], 'state', s, 'colour', 'red')", ["HSET 'colour'"]),
        ("redis.call('HMGET', jk, 'id', 'owner')", ["HMGET 'owner'"]),
        ("redis.call('HINCRBY', key, 'zz:' .. slot, 1)", ["HINCRBY 'zz:'"]),
        ("redis.call('XADD', k, 'MAXLEN', '~', n, '*', 'kind', kind, 'mood', m)", ["XADD 'mood'"]),
        ("redis.call('XADD', k, '*', 'job', id, 'lane', l, unpack(more))", ["XADD 'lane'"]),
        ("emit_event(ctx, k, 'progress', jk, {pct = p, mood = m})", ["emit_event 'mood'"]),
        ("emit_progress(ctx, k, jk, {terminal = s ~= 'x' and '1' or '0', percent = '0'})", ["emit_progress 'percent'"]),
        ("redis.call('HSET', jk, 'state', 'running', 'msg', 'Claimed by ' .. w, unpack(f))", []),
        ("redis.call('HINCRBY', ctx.prefix .. 'queued:' .. lane, tenant, 1)", []),
    ],
)
def test_the_scan_finds_a_name_the_schema_lacks(lua: str, bad: list[str]) -> None:
    assert undefined(lua) == bad


def test_every_include_is_a_library_beside_the_scripts() -> None:
    for path in LUA_FILES:
        for library in scripts.includes(path.read_text(encoding="utf-8")):
            assert (SCRIPTS / f"{library}.lua").is_file(), f"{path.name} includes a missing {library}.lua"
