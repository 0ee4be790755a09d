"""Recorded keyDown/keyUp events as Playwright key presses.

Chrome's Recorder writes each key as a `keyDown` and a `keyUp` step (Puppeteer key names, which are
Playwright's too for every key Playwright knows). `Keys` replays them as presses: a key's keyDown is
one press, with the modifiers held at that moment (`Control+a`, `Shift+Tab`); a modifier pressed and
released on its own is a press of that modifier; keyUps are otherwise only bookkeeping.

It never guesses a key Playwright does not know: such a key is refused by name.
"""

from __future__ import annotations

import string

__all__ = ["Keys", "playwright_knows"]

#: The modifiers, by every name a recording may use for them, as Playwright names them in a combo.
MODIFIERS = {
    **{name: name for name in ("Shift", "Control", "Alt", "Meta")},
    **{f"{name}{side}": name for name in ("Shift", "Control", "Alt", "Meta") for side in ("Left", "Right")},
}
#: Names Playwright writes more plainly; it knows both.
_PLAINER = {"\r": "Enter", "\n": "Enter", " ": "Space"}
#: Playwright's US keyboard layout: these names, one printable ASCII character, F1-F12, Digit0-9,
#: KeyA-Z and Numpad0-9 (tests/sentinel_cli/test_recorder_format.py checks it against Playwright).
_NAMED = frozenset(
    """Backspace Tab Enter NumpadEnter Pause CapsLock Escape Space PageUp PageDown End Home ArrowLeft ArrowUp
    ArrowRight ArrowDown PrintScreen Insert Delete NumpadDecimal ContextMenu NumpadMultiply NumpadAdd
    NumpadSubtract NumpadDivide NumLock ScrollLock AudioVolumeMute AudioVolumeDown AudioVolumeUp MediaTrackNext
    MediaTrackPrevious MediaPlayPause Semicolon Equal Comma Minus Period Slash Backquote BracketLeft Backslash
    BracketRight Quote AltGraph""".split()  # noqa: SIM905 (a list literal would take 45 lines)
)
_FAMILIES = frozenset(
    [f"F{n}" for n in range(1, 13)]
    + [f"Digit{n}" for n in range(10)]
    + [f"Numpad{n}" for n in range(10)]
    + [f"Key{c}" for c in string.ascii_uppercase]
)


def playwright_knows(key: str) -> bool:
    """Whether Playwright's keyboard can press `key` (a Puppeteer/Playwright key name or character)."""
    printable = len(key) == 1 and " " <= key <= "~"
    return printable or key in _PLAINER or key in _NAMED or key in _FAMILIES or key in MODIFIERS


class Keys:
    """The keyboard's state along a recording: which modifiers are held, and whether they were combined."""

    def __init__(self) -> None:
        self._held: list[str] = []  # modifiers in the order they went down
        self._combined = False  # a held modifier has been part of a press

    @property
    def held(self) -> tuple[str, ...]:
        return tuple(self._held)

    def down(self, key: str) -> str | None:
        """The press a keyDown makes (None: a modifier, pressed when released or combined).

        Raises:
            ValueError: Playwright has no such key.
        """
        if not playwright_knows(key):
            raise ValueError(f"Playwright has no key {key!r}")
        if key in MODIFIERS:
            if MODIFIERS[key] not in self._held:
                self._held.append(MODIFIERS[key])
            return None
        self._combined = self._combined or bool(self._held)
        return "+".join([*self._held, _PLAINER.get(key, key)])

    def up(self, key: str) -> str | None:
        """The press a keyUp makes: a modifier released without being combined is pressed on its own."""
        modifier = MODIFIERS.get(key)
        if modifier is not None:
            if modifier not in self._held:
                return None
            self._held.remove(modifier)
            alone = not self._combined
            if not self._held:
                self._combined = False
            return modifier if alone else None
        return None  # the key was pressed at its keyDown

    def combine(self) -> None:
        """A pointer step happened while modifiers were held: they were not pressed on their own."""
        self._combined = self._combined or bool(self._held)
