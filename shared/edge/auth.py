"""Who is calling: API keys, roles, and the tenant of a request.

Every job belongs to a tenant, and the tenant comes from the caller's API key only, never from
the request body. Keys live in a JSON file (SENTINEL_API_KEYS_FILE) as SHA-256 hashes only:

    {"keys": [{"tenant": "acme", "role": "submitter", "sha256": "<hex sha256 of the key>"}]}

Roles are ordered: a `viewer` reads its tenant's jobs and figures; a `submitter` also submits,
cancels and retries them; an `admin` also manages the queue (pause, resume, dead letters, clean).

`AuthInterceptor` runs before every RPC but health and reflection: it finds the caller's key in
the `authorization: Bearer <key>` metadata, checks the role the method needs (`METHOD_ROLES`), and
keeps the caller for the servicers' `tenant_of(context)`. With auth disabled (SENTINEL_AUTH=
disabled) every caller is tenant `default` with the admin role. Denials become status codes in
`shared.edge.status` like every other error. Nothing here may log or store a key in clear.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import grpc

from shared.edge.status import Context, abort
from shared.errors import ConfigError, PermissionDeniedError, SentinelError, UnauthenticatedError
from shared.settings import SecuritySettings

__all__ = [
    "DEFAULT_TENANT",
    "METHOD_ROLES",
    "AuthInterceptor",
    "KeyEntry",
    "KeyRing",
    "Principal",
    "Role",
    "figures_scope",
    "hash_key",
    "interceptor_for",
    "new_key",
    "tenant_of",
]

DEFAULT_TENANT = "default"
#: Tenants name Redis keys: keep them to a plain, bounded alphabet.
TENANT_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_KEY_PREFIX = "snt_"


class Role(enum.IntEnum):
    VIEWER = 1
    SUBMITTER = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"role must be viewer, submitter or admin, got {text!r}") from None


@dataclass(frozen=True)
class Principal:
    tenant: str
    role: Role


#: The caller when auth is disabled.
ANONYMOUS_ADMIN = Principal(tenant=DEFAULT_TENANT, role=Role.ADMIN)

_EXEC = "/sentinel.v1.TestExecution/"
_ADMIN = "/sentinel.v1.QueueAdmin/"
_EXECUTOR = "/sentinel.v1.Executor/"

#: The role each method needs. A method not listed here (and not open) needs ADMIN.
METHOD_ROLES: dict[str, Role] = {
    _EXEC + "Submit": Role.SUBMITTER,
    _EXEC + "SubmitBatch": Role.SUBMITTER,
    _EXEC + "Cancel": Role.SUBMITTER,
    _EXEC + "Retry": Role.SUBMITTER,
    _EXEC + "Status": Role.VIEWER,
    _EXEC + "StreamProgress": Role.VIEWER,
    _EXEC + "ListJobs": Role.VIEWER,
    _ADMIN + "GetStats": Role.VIEWER,
    _ADMIN + "GetHealth": Role.VIEWER,
    _ADMIN + "WatchEvents": Role.VIEWER,
    _ADMIN + "Pause": Role.ADMIN,
    _ADMIN + "Resume": Role.ADMIN,
    _ADMIN + "ListDeadLetters": Role.ADMIN,
    _ADMIN + "RequeueDeadLetter": Role.ADMIN,
    _ADMIN + "PurgeDeadLetters": Role.ADMIN,
    _ADMIN + "Clean": Role.ADMIN,
    _EXECUTOR + "GetWorkerStatus": Role.VIEWER,
    _EXECUTOR + "Drain": Role.ADMIN,
}

#: Services anyone may call: load balancers and grpcurl need them without a key.
OPEN_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)


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


_caller: ContextVar[Principal | None] = ContextVar("sentinel_caller", default=None)


def tenant_of(context: Context) -> str:
    """The tenant the caller acts for, as the auth interceptor established it.

    Raises:
        UnauthenticatedError: no interceptor vouched for this call (fail closed).
    """
    caller = _caller.get()
    if caller is None:
        raise UnauthenticatedError("this call was not authenticated")
    return caller.tenant


def figures_scope(context: Context) -> str | None:
    """Whose figures GetStats and GetHealth answer with: the caller's tenant, or None (the whole
    queue) when auth is disabled — then there are no tenants to keep apart, and the one team
    running Sentinel sees everything, as on /metrics.

    Raises:
        UnauthenticatedError: no interceptor vouched for this call (fail closed).
    """
    tenant = tenant_of(context)
    return None if _caller.get() is ANONYMOUS_ADMIN else tenant


def bearer_key(metadata: Sequence[tuple[str, Any]] | None) -> str:
    """The API key of an `authorization: Bearer <key>` header ("" when there is none)."""
    for name, value in metadata or ():
        if name.lower() == "authorization":
            text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
            scheme, _, key = text.strip().partition(" ")
            if scheme.lower() == "bearer":
                return key.strip()
    return ""


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates every call but health and reflection, and checks its method's role."""

    def __init__(self, keys: KeyRing | None) -> None:
        """Args: keys: the key ring; None means auth is disabled (everyone is default/admin)."""
        self._keys = keys

    def authorize(self, method: str, metadata: Sequence[tuple[str, Any]] | None) -> Principal:
        """The caller of `method`, if allowed.

        Raises:
            UnauthenticatedError: no key, or an unknown one.
            PermissionDeniedError: the key's role is below what the method needs.
        """
        if self._keys is None:
            return ANONYMOUS_ADMIN
        key = bearer_key(metadata)
        if not key:
            raise UnauthenticatedError("missing API key: send the metadata 'authorization: Bearer <key>'")
        principal = self._keys.identify(key)
        if principal is None:
            raise UnauthenticatedError("unknown API key")
        needed = METHOD_ROLES.get(method, Role.ADMIN)
        if principal.role < needed:
            name = method.rsplit("/", 1)[-1]
            raise PermissionDeniedError(f"{name} needs the {needed.label} role; this key is a {principal.role.label}")
        return principal

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method = str(details.method)
        if method.startswith(OPEN_PREFIXES):
            return await continuation(details)
        try:
            principal = self.authorize(method, details.invocation_metadata)
        except SentinelError as exc:
            handler = await continuation(details)
            return _denying(handler, exc) if handler is not None else None
        # The handler runs in this same task, so it sees the caller through `tenant_of`.
        _caller.set(principal)
        return await continuation(details)


def _denying(handler: grpc.RpcMethodHandler[Any, Any], exc: SentinelError) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same shape as `handler` that fails with `exc`'s status, running nothing."""

    async def unary(request: Any, context: Context) -> Any:
        await abort(context, exc)

    async def streaming(request: Any, context: Context) -> Any:
        await abort(context, exc)
        yield  # pragma: no cover - makes this an async generator

    options = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(unary, **options)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(streaming, **options)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(unary, **options)
    return grpc.stream_stream_rpc_method_handler(streaming, **options)


def interceptor_for(security: SecuritySettings) -> AuthInterceptor:
    """The interceptor for these settings; loads (and checks) the keys file."""
    if security.auth_disabled:
        return AuthInterceptor(None)
    return AuthInterceptor(KeyRing.from_file(security.keys_file))
