"""TLS for Sentinel's gRPC servers and clients, built from `shared.settings`.

Servers: `listen` opens the port with TLS when a certificate is configured (and requires client
certificates when a client CA is), else plaintext. Clients: `open_channel` dials with TLS when
the client settings ask for it, and attaches the API key to every call. Every file is checked with
`ssl` before gRPC sees it: gRPC only logs a bad one, then fails to bind (or to connect), which
reads as a port (or network) problem; here a bad file raises `ConfigError` naming its variable.
It must never read the environment itself, and never fall back to plaintext when TLS was asked for.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import grpc

from sentinel_client._pem import certificates_problem, pair_problem
from shared.errors import ConfigError
from shared.settings import ClientSettings, TlsSettings


def _read(path: str) -> bytes:
    return Path(path).read_bytes()


def _check_certificates(path: str, name: str) -> None:
    """ConfigError naming `name` unless `path` can be read and holds at least one PEM certificate."""
    problem = certificates_problem(path, name)
    if problem is not None:
        raise ConfigError(problem)


def _check_pair(cert: str, key: str, *, cert_name: str, key_name: str) -> None:
    """ConfigError naming `cert_name` or `key_name` unless `cert` holds a PEM certificate and `key`
    its PEM private key, unencrypted."""
    problem = pair_problem(cert, key, cert_name=cert_name, key_name=key_name)
    if problem is not None:
        raise ConfigError(problem)


def server_credentials(tls: TlsSettings) -> grpc.ServerCredentials:
    """Credentials for a TLS server; with a client CA, clients must present a certificate it signed.

    Raises:
        ConfigError: a file is unreadable, not PEM, an encrypted key or the key of another certificate.
    """
    _check_pair(tls.cert_file, tls.key_file, cert_name="SENTINEL_TLS_CERT", key_name="SENTINEL_TLS_KEY")
    if tls.client_ca_file:
        _check_certificates(tls.client_ca_file, "SENTINEL_TLS_CLIENT_CA")
    pair = [(_read(tls.key_file), _read(tls.cert_file))]
    if tls.client_ca_file:
        return grpc.ssl_server_credentials(pair, root_certificates=_read(tls.client_ca_file), require_client_auth=True)
    return grpc.ssl_server_credentials(pair)


def listen(server: grpc.aio.Server, host: str, port: int, tls: TlsSettings) -> int:
    """Open `host:port` on `server` (TLS when configured); returns the bound port (0 = failed: in use,
    or not an address of this machine).

    Raises:
        ConfigError: a TLS file is bad (see `server_credentials`).
    """
    address = f"{host}:{port}"
    credentials = server_credentials(tls) if tls.enabled else None  # a bad file: ConfigError, not 0
    try:
        if credentials is not None:
            return int(server.add_secure_port(address, credentials))
        return int(server.add_insecure_port(address))
    except RuntimeError:  # grpcio raises "Failed to bind to address" where older versions returned 0
        return 0


class _BearerKey(grpc.AuthMetadataPlugin):
    def __init__(self, key: str) -> None:
        self._metadata = (("authorization", f"Bearer {key}"),)

    def __call__(self, context: grpc.AuthMetadataContext, callback: grpc.AuthMetadataPluginCallback) -> None:
        callback(self._metadata, None)


def open_channel(
    settings: ClientSettings, address: str | None = None, *, interceptors: Sequence[grpc.aio.ClientInterceptor] = ()
) -> grpc.aio.Channel:
    """A channel to the API: TLS when the settings say so; the API key rides on every call.

    `interceptors` (client spans, say) see each call before the key is added.
    """
    target = address or settings.api
    if not settings.tls:
        key = settings.api_key
        keyed: list[grpc.aio.ClientInterceptor] = [_UnaryKey(key), _StreamKey(key)] if key else []
        return grpc.aio.insecure_channel(target, interceptors=[*interceptors, *keyed])
    credentials = channel_credentials(settings)
    if settings.api_key:
        credentials = grpc.composite_channel_credentials(
            credentials, grpc.metadata_call_credentials(_BearerKey(settings.api_key))
        )
    return grpc.aio.secure_channel(
        target, credentials, options=channel_options(settings), interceptors=list(interceptors) or None
    )


def channel_credentials(settings: ClientSettings) -> grpc.ChannelCredentials:
    """TLS credentials for a client: the CA to trust, and a client certificate for mTLS.

    Raises:
        ConfigError: a file is bad, named by its variable (`settings.tls_variables` + `_CA`, ...).
    """
    prefix = settings.tls_variables
    if settings.tls_ca:
        _check_certificates(settings.tls_ca, f"{prefix}_CA")
    if settings.tls_cert:
        _check_pair(
            settings.tls_cert, settings.tls_key, cert_name=f"{prefix}_CLIENT_CERT", key_name=f"{prefix}_CLIENT_KEY"
        )
    return grpc.ssl_channel_credentials(
        root_certificates=_read(settings.tls_ca) if settings.tls_ca else None,
        private_key=_read(settings.tls_key) if settings.tls_key else None,
        certificate_chain=_read(settings.tls_cert) if settings.tls_cert else None,
    )


def channel_options(settings: ClientSettings) -> list[tuple[str, str]]:
    """Channel options for TLS: the certificate name to expect, when it is not the address's host."""
    return [("grpc.ssl_target_name_override", settings.tls_server_name)] if settings.tls_server_name else []


class _PlainKey:
    """Adds the API key on a plaintext channel (gRPC refuses call credentials without TLS)."""

    def __init__(self, key: str) -> None:
        self._pair = ("authorization", f"Bearer {key}")

    def _with_key(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()), self._pair)
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )


# grpc.aio files an interceptor under one kind of call only, so each kind gets its own class.
class _UnaryKey(_PlainKey, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[grpc.aio.UnaryUnaryCall[Any, Any]]],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> grpc.aio.UnaryUnaryCall[Any, Any]:
        return await continuation(self._with_key(client_call_details), request)


class _StreamKey(_PlainKey, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[grpc.aio.UnaryStreamCall[Any, Any]]],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> grpc.aio.UnaryStreamCall[Any, Any]:
        return await continuation(self._with_key(client_call_details), request)
