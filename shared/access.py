"""API keys, roles and principals: who may do what, with no transport attached.

Every job belongs to a tenant, and the tenant comes from the caller's API key only, never from
the request body. Keys live in a JSON file (SENTINEL_API_KEYS_FILE) as SHA-256 hashes only:

    {"keys": [{"tenant": "acme", "role": "submitter", "sha256": "<hex sha256 of the key>"}]}

Roles are ordered: a `viewer` reads its tenant's jobs and figures; a `submitter` also submits,
cancels and retries them; an `admin` also manages its tenant's part of the queue (dead letters,
clean); an `operator` also pauses and resumes the whole queue, which stops every tenant's work, so
no tenant's admin may. An operator key still belongs to a tenant, whose jobs it sees.
The gRPC edge (`shared.edge.auth`) and the HTTP front door (`api_service.http.auth`) both admit
callers with `authorize` here, so the two answer the same key, role and tenant alike.
Nothing here may log or store a key in clear.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from shared.errors import ConfigError, PermissionDeniedError, UnauthenticatedError

DEFAULT_TENANT = "default"
#: Tenants name Redis keys: keep them to a plain, bounded alphabet.
TENANT_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_KEY_PREFIX = "snt_"

log = logging.getLogger(__name__)


class Role(enum.IntEnum):
    VIEWER = 1
    SUBMITTER = 2
    ADMIN = 3
    OPERATOR = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"role must be viewer, submitter, admin or operator, got {text!r}") from None


@dataclass(frozen=True)
class Principal:
    tenant: str
    role: Role


#: The caller when auth is disabled: the one team running Sentinel, which may do everything.
ANONYMOUS = Principal(tenant=DEFAULT_TENANT, role=Role.OPERATOR)


def hash_key(key: str) -> str:
    """The hex SHA-256 of an API key: the only form a key is ever stored in."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A fresh random API key (256 bits)."""
    return _KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class KeyEntry:
    tenant: str
    role: Role
    sha256: str

    def to_json(self) -> dict[str, str]:
        return {"tenant": self.tenant, "role": self.role.label, "sha256": self.sha256}


@dataclass(frozen=True)
class KeyRing:
    entries: tuple[KeyEntry, ...]

    @classmethod
    def from_file(cls, path: str) -> KeyRing:
        """Load a keys file. Raises ConfigError naming the file and what is wrong in it."""
        try:
            with open(path, encoding="utf-8") as f:
                return cls.from_json(f.read())
        except OSError as exc:
            raise ConfigError(f"SENTINEL_API_KEYS_FILE {path!r} cannot be read: {exc.strerror}") from exc
        except ConfigError as exc:
            raise ConfigError(f"SENTINEL_API_KEYS_FILE {path!r}: {exc}") from exc

    @classmethod
    def from_json(cls, text: str) -> KeyRing:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"not valid JSON ({exc})") from exc
        rows = data.get("keys") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise ConfigError('must hold {"keys": [{"tenant": ..., "role": ..., "sha256": ...}, ...]}')
        entries = []
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise ConfigError(f"keys[{i}] must be an object")
            tenant, role, digest = (str(row.get(k, "")) for k in ("tenant", "role", "sha256"))
            if not TENANT_RE.fullmatch(tenant):
                raise ConfigError(f"keys[{i}].tenant must be 1-64 letters, digits, '.', '_' or '-', got {tenant!r}")
            try:
                parsed = Role.parse(role)
            except ValueError as exc:
                raise ConfigError(f"keys[{i}].{exc}") from None
            if not _HEX64.fullmatch(digest.lower()):
                raise ConfigError(f"keys[{i}].sha256 must be 64 hex digits (the SHA-256 of the key)")
            entries.append(KeyEntry(tenant=tenant, role=parsed, sha256=digest.lower()))
        return cls(entries=tuple(entries))

    def identify(self, key: str) -> Principal | None:
        """The owner of `key`, or None. Compares with every entry in constant time."""
        digest = hash_key(key).encode("ascii")
        found: Principal | None = None
        for entry in self.entries:
            # No early exit: the time taken does not depend on which entry (if any) matched.
            if hmac.compare_digest(digest, entry.sha256.encode("ascii")) and found is None:
                found = Principal(tenant=entry.tenant, role=entry.role)
        return found


class Keys(Protocol):
    """Where callers' keys are looked up: a fixed `KeyRing`, or a `KeyFile` that follows its file."""

    def identify(self, key: str) -> Principal | None: ...


class KeyFile:
    """The keys file, read again when it changes: a key removed from it is refused from then on, a key
    added is admitted, without a restart (each process looks at the file at most once a second).

    A file that cannot be read or parsed once it has changed leaves the keys last read in force, and
    says so in the log, once per change: a half-written file must not lock everyone out, nor let
    everyone in.
    """

    #: How often (seconds) the file's identity (inode, size, modification time) is looked at.
    CHECK_S = 1.0

    def __init__(self, path: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        """Raises ConfigError naming the file and what is wrong in it (at start, nothing is in force)."""
        self.path = path
        self._clock = clock
        self._seen = self._identity()
        self._refused: tuple[int, int, int, int] | None = None  # the identity last refused, said once
        self._ring = KeyRing.from_file(path)
        self._checked = clock()

    def _identity(self) -> tuple[int, int, int, int] | None:
        try:
            found = os.stat(self.path)
        except OSError:
            return None
        return (found.st_ino, found.st_size, found.st_mtime_ns, found.st_ctime_ns)

    @property
    def ring(self) -> KeyRing:
        """The keys in force, read again first when the file changed since it was last looked at."""
        now = self._clock()
        if now - self._checked >= self.CHECK_S:
            self._checked = now
            seen = self._identity()
            if seen != self._seen:
                try:
                    self._ring = KeyRing.from_file(self.path)
                except ConfigError as exc:
                    # Tried again at each look until it is read (a permission fixed by chmod changes
                    # no identity); said once per change.
                    if seen != self._refused:
                        self._refused = seen
                        log.error("%s; the keys read before stay in force", exc)
                else:
                    self._seen = self._refused = seen
                    log.info("keys file %s read again: %d keys", self.path, len(self._ring.entries))
        return self._ring

    def identify(self, key: str) -> Principal | None:
        return self.ring.identify(key)


def bearer_key(header: str) -> str:
    """The API key of an `Authorization: Bearer <key>` value ("" for anything else)."""
    scheme, _, key = header.strip().partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


def authorize(keys: Keys | None, key: str, *, needed: Role, action: str, how: str) -> Principal:
    """The caller holding `key`, if its role is at least `needed`.

    Args:
        keys: the key ring; None means auth is disabled (everyone is tenant `default`, operator).
        action: what is asked (a method or route name), for the denial's message.
        how: how a key is sent on this front door, for the message when none was.

    Raises:
        UnauthenticatedError: no key, or an unknown one.
        PermissionDeniedError: the key's role is below `needed`.
    """
    if keys is None:
        return ANONYMOUS
    if not key:
        raise UnauthenticatedError(f"missing API key: send {how}")
    principal = keys.identify(key)
    if principal is None:
        raise UnauthenticatedError("unknown API key")
    if principal.role < needed:
        raise PermissionDeniedError(f"{action} needs the {needed.label} role; this key is a {principal.role.label}")
    return principal


def still_admitted(first: Principal, now: Principal) -> None:
    """An open stream's caller, admitted again (`now`), is still the one it opened for (`first`).

    Raises:
        UnauthenticatedError: the key now belongs to another tenant (or has another role): the
            stream serves what its opening was allowed to see, and must be opened again.
    """
    if now != first:
        raise UnauthenticatedError("this API key changed tenant or role since the stream opened: open it again")


def figures_scope(principal: Principal) -> str | None:
    """Whose figures stats and health answer with: the caller's tenant, or None (the whole queue)
    when auth is disabled — then there are no tenants to keep apart, and the one team running
    Sentinel sees everything, as on /metrics."""
    return None if principal is ANONYMOUS else principal.tenant
