"""TLS and mTLS from the SDK, by constructor arguments and by the SENTINEL_TLS* variables the CLI reads,
against a real API server (in this process: its TLS settings are built here) and redis-server."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from api_service.server import ApiServer
from sentinel_client import AsyncClient, ConfigError, TLSConfig, UnauthenticatedError, UnavailableError
from shared.access import hash_key, new_key
from shared.settings import SecuritySettings, TlsSettings
from tests.artifact_helpers import start_api
from tests.sentinel_client.twins import connect
from tests.support import RedisProcess, make_cert

pytestmark = pytest.mark.timeout(60)


@dataclass
class TlsApi:
    address: str
    key: str
    certs: Path

    def tls(self, client: str | None = "client") -> TLSConfig:
        """Trusting the test CA, with `client`'s certificate (None: none)."""
        cert = str(self.certs / f"{client}.pem") if client else None
        key = str(self.certs / f"{client}.key") if client else None
        return TLSConfig(ca=str(self.certs / "ca.pem"), cert=cert, key=key)


@pytest.fixture
async def api(redis_server: RedisProcess, tmp_path: Path) -> AsyncIterator[TlsApi]:
    ca = make_cert(tmp_path, "ca", None, ca=True)
    make_cert(tmp_path, "server", ca)
    make_cert(tmp_path, "client", ca)
    make_cert(tmp_path, "stranger", make_cert(tmp_path, "other-ca", None, ca=True))
    key = new_key()
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps({"keys": [{"tenant": "t", "role": "viewer", "sha256": hash_key(key)}]}))
    tls = TlsSettings(str(tmp_path / "server.pem"), str(tmp_path / "server.key"), str(tmp_path / "ca.pem"))
    server: ApiServer = await start_api(
        redis_server, None, SecuritySettings(tls=tls, auth_disabled=False, keys_file=str(keys_file))
    )
    try:
        yield TlsApi(address=f"localhost:{server.port}", key=key, certs=tmp_path)
    finally:
        await server.stop(0)


async def test_mtls_with_a_key_by_arguments(flavor: str, api: TlsApi) -> None:
    async with connect(flavor, api.address, tls=api.tls(), api_key=api.key) as client:
        assert (await client.stats()).tenant == "t"
    async with connect(flavor, api.address, tls=api.tls()) as keyless:
        with pytest.raises(UnauthenticatedError):
            await keyless.stats()
    for stranger in (api.tls(None), api.tls("stranger")):  # the API requires a certificate its CA signed
        async with connect(flavor, api.address, tls=stranger, retries=0) as client:
            with pytest.raises(UnavailableError):
                await client.stats()
    async with connect(flavor, api.address, retries=0) as plaintext:  # never a silent fallback
        with pytest.raises(UnavailableError):
            await plaintext.stats()


async def test_mtls_from_the_environment(api: TlsApi) -> None:
    environ = {
        "SENTINEL_API": api.address,
        "SENTINEL_API_KEY": api.key,
        "SENTINEL_TLS_CA": str(api.certs / "ca.pem"),
        "SENTINEL_TLS_CLIENT_CERT": str(api.certs / "client.pem"),
        "SENTINEL_TLS_CLIENT_KEY": str(api.certs / "client.key"),
    }
    async with AsyncClient.from_env(environ) as client:
        assert (await client.stats()).tenant == "t"


@pytest.mark.parametrize(
    ("environ", "said"),
    [
        ({"SENTINEL_TLS": "maybe"}, "SENTINEL_TLS must be true or false, got 'maybe'"),
        ({"SENTINEL_TLS_CA": "/no/such/ca.pem"}, "SENTINEL_TLS_CA must name a readable file"),
        ({"SENTINEL_TLS_CLIENT_CERT": __file__}, "SENTINEL_TLS_CLIENT_CERT and SENTINEL_TLS_CLIENT_KEY"),
    ],
)
def test_a_bad_variable_is_named(environ: dict[str, str], said: str) -> None:
    with pytest.raises(ConfigError, match=said):
        AsyncClient.from_env(environ)


def test_options_are_checked_when_the_client_is_made() -> None:
    with pytest.raises(ConfigError, match="cert and key"):
        TLSConfig(cert="client.pem")
    with pytest.raises(ConfigError, match=re.escape("TLSConfig: ca must name a readable file, got '/no/such/ca.pem'")):
        AsyncClient("localhost:1", tls=TLSConfig(ca="/no/such/ca.pem"))
    with pytest.raises(ConfigError, match="timeout"):
        AsyncClient("localhost:1", timeout=0)
    with pytest.raises(ConfigError, match="retries"):
        AsyncClient("localhost:1", retries=-1)
