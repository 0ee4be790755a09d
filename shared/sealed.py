"""Sealing secret values: encrypted at submit, opened only by the executor right before use.

A `fill` step marked `secret` carries a password or token, and so does a `request` step's header
named in its `secret_headers` (an Authorization header, say). The API seals each such value (Fernet:
AES-128-CBC + HMAC-SHA256, from `cryptography`) with SENTINEL_SECRET_KEY, a key the API and the
executors share, before anything is stored; Redis, results, progress, events, logs and traces only
ever see `sealed:v1:<token>`, and what people see is `***`. The runner opens the value in memory
just before it types or sends it. Which values are secret is the actions' business
(`shared.actions.secrets` / `with_secrets`).

It must never log a value, sealed or open, and never return an open value from a failed check.
"""

from __future__ import annotations

import dataclasses

from cryptography.fernet import Fernet, InvalidToken

from shared.actions import secrets, with_secrets
from shared.errors import ConfigError, FieldViolation, ValidationError
from shared.model import RunCommand, SubmitCommand

SEALED_PREFIX = "sealed:v1:"


def new_secret_key() -> str:
    """A fresh key for SENTINEL_SECRET_KEY."""
    return Fernet.generate_key().decode("ascii")


class Sealer:
    """Seals and opens secret values with one key."""

    def __init__(self, key: str) -> None:
        try:
            self._fernet = Fernet(key.encode("ascii"))
        except (ValueError, UnicodeError):
            raise ConfigError(
                "SENTINEL_SECRET_KEY must be a Fernet key (32 url-safe base64 bytes; `sentinel keys secret` makes one)"
            ) from None

    def seal(self, value: str) -> str:
        return SEALED_PREFIX + self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def open(self, sealed: str, *, field: str) -> str:
        """The value inside `sealed`; ValidationError (never the value) when it cannot be opened."""
        if not sealed.startswith(SEALED_PREFIX):
            raise ValidationError([FieldViolation(field, "is marked secret but was not sealed by the API")])
        try:
            return self._fernet.decrypt(sealed.removeprefix(SEALED_PREFIX).encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise ValidationError(
                [FieldViolation(field, "cannot be decrypted: SENTINEL_SECRET_KEY differs between API and executor")]
            ) from None


def sealer_for(key: str) -> Sealer | None:
    """A sealer for SENTINEL_SECRET_KEY, or None when it is not set."""
    return Sealer(key) if key else None


def seal_run(command: RunCommand, sealer: Sealer | None) -> RunCommand:
    """`command` with every secret fill value of every test sealed (validated input only)."""
    tests = tuple(
        dataclasses.replace(
            test,
            definition=seal_command(
                SubmitCommand(definition=test.definition, options=command.options), sealer, prefix=f"tests[{i}]."
            ).definition,
        )
        for i, test in enumerate(command.tests)
    )
    return dataclasses.replace(command, tests=tests)


def seal_command(command: SubmitCommand, sealer: Sealer | None, *, prefix: str = "") -> SubmitCommand:
    """`command` with every secret value sealed (validated input only).

    Raises:
        ValidationError: a step has a secret value but this server has no SENTINEL_SECRET_KEY to seal it.
    """
    steps = list(command.definition.steps)
    changed = False
    for i, step in enumerate(steps):
        action = step.action
        if action is None or not secrets(action):
            continue
        if sealer is None:
            field = f"{prefix}definition.steps[{i}].{action.kind}.{_SECRET_SWITCH.get(action.kind, 'secret')}"
            raise ValidationError([FieldViolation(field, "this server has no SENTINEL_SECRET_KEY to seal it")])
        steps[i] = dataclasses.replace(step, action=with_secrets(action, lambda _, value: sealer.seal(value)))
        changed = True
    if not changed:
        return command
    definition = dataclasses.replace(command.definition, steps=tuple(steps))
    return dataclasses.replace(command, definition=definition)


#: The field that makes an action's values secret, for the error when they cannot be sealed.
_SECRET_SWITCH = {"fill": "secret", "request": "secret_headers"}
