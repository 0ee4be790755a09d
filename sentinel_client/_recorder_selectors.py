"""Choosing one Playwright selector among the alternatives a Chrome Recorder step carries.

A recorded step lists alternative selectors, each a list of parts: the last part finds the element,
the parts before it find its ancestors (a shadow host's next part is looked up in its shadow root).
A part is CSS, or has a form prefix: `aria/Name[role="button"]`, `xpath///*[@id="x"]`, `text/Sign in`,
`pierce/#x`. This module turns one alternative into a Playwright selector where Playwright can say
the same thing, and picks the most robust one it can run:

    CSS  >  pierce/ (CSS that looks into shadow roots: Playwright's CSS always does)
         >  aria/ with a role  →  role=button[name="Sign in"s]
         >  text/              →  text=Sign in (case-insensitive substring, as Playwright's text= is)
         >  xpath/             →  xpath=//…
         >  aria/ without a role →  internal:label="Name"s (a guess: it finds elements named by a
            <label>, aria-label or aria-labelledby, not those named by their content)

then fewer parts, then the recording's own order. A chain of parts becomes `part >> part` (Playwright's
engines look into open shadow roots), except where an XPath part would have to look inside one.

Pure string work: no browser, no Sentinel model. It never raises on odd input; a part it cannot
express is left out with the reason why, for the caller's error message.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Form", "accessible_name", "alternative", "choose", "form_of", "names_password", "names_select"]


class Form(enum.IntEnum):
    """A part's form, by how much we trust what it becomes (lower is better)."""

    CSS = 0
    PIERCE = 1
    ARIA_ROLE = 2
    TEXT = 3
    XPATH = 4
    ARIA_LABEL = 5


#: The prefixes of @puppeteer/replay's getSelectorType (anything else is CSS).
_PREFIXES = {"aria/": Form.ARIA_ROLE, "xpath/": Form.XPATH, "text/": Form.TEXT, "pierce/": Form.PIERCE}
#: Puppeteer's ARIA selector attributes: `[role="button"]`, `[name='x']`.
_ARIA_ATTRIBUTE = re.compile(r"""\[\s*(\w+)\s*=\s*(["'])(\\.|.*?(?=\2))\2\s*\]""")
#: Chrome's accessibility roles that have no ARIA role Playwright's role= engine knows.
_NO_ARIA_ROLE = frozenset({"generic", "none", "presentation"})
#: What Playwright would read as an engine name (`name=body`), XPath or quoted text rather than CSS.
_NOT_CSS_TO_PLAYWRIGHT = re.compile(r"""^(?:[\w+:*-]+=|\(*//|\.\.|["'])""")
_QUOTED = re.compile(r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'""")
_BRACKETED = re.compile(r"\[[^\]]*\]|\([^)]*\)")


@dataclass(frozen=True)
class _Option:
    form: Form
    parts: int
    position: int
    selector: str


def form_of(part: str) -> str:
    """A part's form as @puppeteer/replay's getSelectorType names it: css, aria, xpath, text or pierce."""
    prefix = next((p for p in _PREFIXES if part.startswith(p)), "")
    return prefix.rstrip("/") or "css"


def choose(alternatives: Sequence[Sequence[str]]) -> tuple[str | None, list[str]]:
    """The best Playwright selector among a step's alternatives (None: none can be expressed), and why
    each alternative that could not be expressed was left out."""
    options: list[_Option] = []
    reasons: list[str] = []
    for position, parts in enumerate(alternatives):
        converted = alternative(parts)
        if isinstance(converted, str):
            reasons.append(converted)
        else:
            form, selector = converted
            options.append(_Option(form, len(parts), position, selector))
    if not options:
        return None, reasons
    best = min(options, key=lambda o: (o.form, o.parts, o.position))
    return best.selector, reasons


def accessible_name(alternatives: Sequence[Sequence[str]]) -> str:
    """The accessible name an `aria/` alternative gives the element ("" when none does): a step's label."""
    for parts in alternatives:
        names = [_aria(part)[0] for part in parts if part.startswith("aria/")]
        if names and names[0]:
            return names[0]
    return ""


def names_select(alternatives: Sequence[Sequence[str]]) -> bool:
    """Whether an alternative shows the element is a `<select>`: CSS or XPath whose last step is `select`."""
    for parts in alternatives:
        last = parts[-1] if parts else ""
        form = form_of(last)
        if form in ("css", "pierce"):
            compound = re.split(r"[\s>+~]+", _BRACKETED.sub("", _QUOTED.sub("", last.removeprefix("pierce/"))))[-1]
            if re.match(r"select(?![\w-])", compound, re.IGNORECASE):
                return True
        elif form == "xpath":
            steps = _BRACKETED.sub("", _QUOTED.sub("", last)).rstrip("/").split("/")
            if steps[-1].lower() == "select":
                return True
    return False


def names_password(alternatives: Sequence[Sequence[str]]) -> bool:
    """Whether any alternative mentions a password (its value is then kept secret)."""
    return any("password" in part.lower() for parts in alternatives for part in parts)


# --- one alternative -------------------------------------------------------------------------


def alternative(parts: Sequence[str]) -> tuple[Form, str] | str:
    """One alternative as (its form, a Playwright selector), or why Playwright cannot say the same thing."""
    if not parts:
        return "an empty selector"
    converted: list[tuple[Form, str]] = []
    for i, part in enumerate(parts):
        one = _part(part, first=i == 0)
        if isinstance(one, str):
            return one
        converted.append(one)
    return max(form for form, _ in converted), " >> ".join(selector for _, selector in converted)


def _part(part: str, *, first: bool) -> tuple[Form, str] | str:
    body = part.split("/", 1)[1] if form_of(part) != "css" else part
    if not body.strip():
        return f"{part!r} selects nothing"
    match form_of(part):
        case "aria":
            return _aria_selector(part)
        case "xpath":
            if not first:
                return f"{part!r}: XPath cannot look inside a shadow root"
            return Form.XPATH, f"xpath={body}"
        case "text":
            return Form.TEXT, _text_selector(body)
        case "pierce":
            return Form.PIERCE, _css(body)
        case _:
            return Form.CSS, _css(body)


def _css(selector: str) -> str:
    # Valid CSS never looks like another engine to Playwright, but say so when it would.
    return f"css={selector}" if _NOT_CSS_TO_PLAYWRIGHT.match(selector.strip()) else selector


def _text_selector(text: str) -> str:
    # Unquoted text= is Playwright's case-insensitive substring match (Puppeteer's is case-sensitive).
    # Quotes, backslashes and `>>` mean something to Playwright's selector parser: then the same match
    # in its JSON-quoted form.
    if text.strip() and not re.search(r"""["'`\\]|>>|^\s*/""", text):
        return f"text={text}"
    return f"internal:text={json.dumps(text, ensure_ascii=False)}i"


def _aria(part: str) -> tuple[str, str]:
    """(name, role) of an `aria/` part, parsed the way Puppeteer's ARIA query handler does."""
    found: dict[str, str] = {}

    def keep(match: re.Match[str]) -> str:
        found[match.group(1)] = match.group(3)
        return ""

    rest = _ARIA_ATTRIBUTE.sub(keep, part.removeprefix("aria/"))
    name = found.get("name") or re.sub(" +", " ", rest).strip()
    return name, found.get("role", "").strip()


def _aria_selector(part: str) -> tuple[Form, str] | str:
    name, role = _aria(part)
    if not role:
        if not name:
            return f"{part!r} selects nothing"
        return Form.ARIA_LABEL, f"internal:label={json.dumps(name, ensure_ascii=False)}s"
    if role in _NO_ARIA_ROLE or not re.fullmatch(r"[a-z]+", role):
        return f"{part!r}: role {role!r} is Chrome's own, not an ARIA role Playwright can match"
    role = "img" if role == "image" else role
    if not name:
        return Form.ARIA_ROLE, f"role={role}"
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    return Form.ARIA_ROLE, f'role={role}[name="{quoted}"s]'
