"""Where a client connects and how it proves who it is: the options both clients take, and channels.

The options mirror what the `sentinel` CLI reads from the environment (`SENTINEL_API`,
`SENTINEL_API_KEY`, `SENTINEL_TLS`, `SENTINEL_TLS_CA`, `SENTINEL_TLS_CLIENT_CERT` / `_KEY`,
`SENTINEL_TLS_SERVER_NAME`); `options_from_env` is the only code in the SDK that reads them. The API
key rides on every call as `authorization: Bearer <key>` metadata, over TLS or plaintext alike.
Never falls back to plaintext when TLS was asked for.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from sentinel_client._pem import certificates_problem, pair_problem
from sentinel_client._retry import RetryPolicy, stream_policy
from sentinel_client.errors import ConfigError

DEFAULT_TARGET = "localhost:50051"
#: The name-resolver schemes gRPC takes in a target (`dns:///api.internal:50051`, `unix:/run/api.sock`).
_GRPC_SCHEMES = ("dns", "unix", "unix-abstract", "ipv4", "ipv6", "vsock", "xds")
#: What a target without a scheme must be: `host`, `host:port` or `[v6 address]:port`.
_HOST_PORT = re.compile(r"(?:[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.%A-Za-z]+\])(?::[0-9]{1,5})?")
#: Seconds a single call may take, unless the client is given another `timeout`.
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class TLSConfig:
    """TLS to the API.

    Attributes:
        ca: the CA bundle (PEM file) to verify the API with; None: the system's roots.
        cert: a client certificate (PEM file), for an API that requires mTLS; with `key`.
        key: the client certificate's private key (PEM file).
        server_name: the name to expect in the API's certificate, when not the target's host.
    """

    ca: str | os.PathLike[str] | None = None
    cert: str | os.PathLike[str] | None = None
    key: str | os.PathLike[str] | None = None
    server_name: str | None = None

    def __post_init__(self) -> None:
        if bool(self.cert) != bool(self.key):
            raise ConfigError("TLSConfig: cert and key must be given together")

    def credentials(self) -> grpc.ChannelCredentials:
        """gRPC's credentials from these files, read now.

        Raises:
            ConfigError: a file cannot be read, holds no PEM certificate or key, or the key is
                encrypted or another certificate's (the file named in the message).
        """
        problem = _files_problem(
            os.fspath(self.ca or ""), os.fspath(self.cert or ""), os.fspath(self.key or ""), ca_name="ca", pair_names=""
        )
        if problem is not None:
            raise ConfigError(f"TLSConfig: {problem}")
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.ca),
            private_key=_read(self.key),
            certificate_chain=_read(self.cert),
        )

    def options(self) -> list[tuple[str, Any]]:
        """The channel options these settings need (the name to expect in the API's certificate)."""
        return [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []


def _files_problem(ca: str, cert: str, key: str, *, ca_name: str, pair_names: str) -> str | None:
    """What is wrong with the CA file and the client pair ("": not given), each named as its setting
    is (`pair_names` + `cert` / `key`)."""
    if ca and (problem := certificates_problem(ca, ca_name)) is not None:
        return problem
    if cert and key:
        return pair_problem(
            cert,
            key,
            cert_name=f"{pair_names}cert".upper() if pair_names else "cert",
            key_name=f"{pair_names}key".upper() if pair_names else "key",
        )
    return None


def _read(path: str | os.PathLike[str] | None) -> bytes | None:
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {os.fspath(path)!r}: {exc.strerror or exc}") from exc


@dataclass(frozen=True)
class Connection:
    """A client's settled options (see `Client` for what each means)."""

    target: str
    api_key: str | None
    tls: TLSConfig | None
    retries: RetryPolicy
    timeout: float | None
    interceptors: tuple[Any, ...]
    stream_retries: RetryPolicy

    @classmethod
    def of(
        cls,
        target: str | None,
        *,
        api_key: str | None,
        tls: bool | TLSConfig,
        retries: RetryPolicy | int,
        timeout: float | None,
        interceptors: Sequence[Any],
        stream_retries: RetryPolicy | int | None = None,
    ) -> Connection:
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout < math.inf
        ):
            raise ConfigError(f"timeout must be a number of seconds > 0 (or None), got {timeout!r}")
        if api_key and (not api_key.isprintable() or any(c.isspace() for c in api_key)):
            # A gRPC metadata value cannot hold it; said here, without the key, not as gRPC's traceback.
            raise ConfigError(
                "the API key (SENTINEL_API_KEY) holds a space, a line break or another control character:"
                " a key is one word (one pasted with a line break?)"
            )
        return cls(
            target=check_target(target or DEFAULT_TARGET),
            api_key=api_key or None,
            tls=tls if isinstance(tls, TLSConfig) else (TLSConfig() if tls else None),
            retries=RetryPolicy.of(retries),
            timeout=timeout,
            interceptors=tuple(interceptors),
            stream_retries=stream_policy(retries, stream_retries),
        )

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.api_key}"),) if self.api_key else ()

    def sync_channel(self) -> grpc.Channel:
        """A blocking channel, with the interceptors (`grpc.*ClientInterceptor`) around it."""
        if self.tls is None:
            channel = grpc.insecure_channel(self.target)
        else:
            channel = grpc.secure_channel(self.target, self.tls.credentials(), options=self.tls.options())
        return grpc.intercept_channel(channel, *self.interceptors) if self.interceptors else channel

    def aio_opener(self) -> Callable[[], grpc.aio.Channel]:
        """What opens an asyncio channel, with the interceptors (`grpc.aio.*ClientInterceptor`) on it,
        in the loop running when it is called; TLS files are read now, so a bad one fails at once.

        Raises:
            ConfigError: a TLS file cannot be read.
        """
        interceptors = list(self.interceptors) or None
        if self.tls is None:
            return lambda: grpc.aio.insecure_channel(self.target, interceptors=interceptors)
        credentials, options = self.tls.credentials(), self.tls.options()
        return lambda: grpc.aio.secure_channel(self.target, credentials, options=options, interceptors=interceptors)


def check_target(target: object, name: str = "target") -> str:
    """`target` if gRPC can dial it: `host:port`, `[v6 address]:port`, or a gRPC scheme's target
    (`dns:///host:port`, `unix:/path`, `unix-abstract:name`, `ipv4:` / `ipv6:` addresses).

    Checked here because gRPC takes any string and only reports UNAVAILABLE once its retries are
    spent, seconds later, without saying the address itself was wrong.

    Raises:
        ConfigError: naming `name` (the argument or variable) and what it expected.
    """
    expected = f"{name} must be the API's host:port (or a gRPC target such as unix:/path)"
    if not isinstance(target, str):
        raise ConfigError(f"{expected}, got {target!r}")
    scheme, colon_slashes, rest = target.partition("://")
    if colon_slashes and scheme.lower() in {"http", "https", "grpc", "grpcs"}:
        tls = " and ask for TLS (tls=True, SENTINEL_TLS=true)" if scheme.lower() in {"https", "grpcs"} else ""
        raise ConfigError(f"{expected}, not a URL: drop {scheme + '://'!r}{tls}: {rest.rstrip('/')!r}")
    scheme = target.split(":", 1)[0].lower()
    if scheme in _GRPC_SCHEMES and target[len(scheme) + 1 :].strip("/"):
        return target
    port = target.rpartition(":")[2] if target.rpartition("]")[2].count(":") == 1 else ""
    if not _HOST_PORT.fullmatch(target) or (port and not 0 < int(port) < 65536):
        raise ConfigError(f"{expected}, got {target!r}")
    return target


def options_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """`target`, `api_key` and `tls` from the SENTINEL_* variables, checked as the CLI checks them.

    Raises:
        ConfigError: naming the variable and what it expected.
    """
    ca = _path(environ, "SENTINEL_TLS_CA")
    cert = _path(environ, "SENTINEL_TLS_CLIENT_CERT")
    key = _path(environ, "SENTINEL_TLS_CLIENT_KEY")
    if bool(cert) != bool(key):
        raise ConfigError("SENTINEL_TLS_CLIENT_CERT and SENTINEL_TLS_CLIENT_KEY must be set together")
    problem = _files_problem(ca, cert, key, ca_name="SENTINEL_TLS_CA", pair_names="SENTINEL_TLS_CLIENT_")
    if problem is not None:
        raise ConfigError(problem)
    server_name = environ.get("SENTINEL_TLS_SERVER_NAME", "").strip()
    tls = _bool(environ, "SENTINEL_TLS") or bool(ca or cert)
    return {
        "target": environ.get("SENTINEL_API", "").strip() or DEFAULT_TARGET,
        "api_key": environ.get("SENTINEL_API_KEY", "").strip() or None,
        "tls": TLSConfig(ca=ca or None, cert=cert or None, key=key or None, server_name=server_name or None)
        if tls
        else False,
    }


def _bool(environ: Mapping[str, str], name: str) -> bool:
    raw = environ.get(name, "").strip().lower()
    if raw in {"", "0", "false", "no", "off"}:
        return False
    if raw in {"1", "true", "yes", "on"}:
        return True
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _path(environ: Mapping[str, str], name: str) -> str:
    raw = environ.get(name, "").strip()
    if raw and not os.path.isfile(raw):
        raise ConfigError(f"{name} must name a readable file, got {raw!r}")
    return raw
