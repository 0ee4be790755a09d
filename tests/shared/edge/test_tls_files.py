"""Bad TLS files are configuration errors naming their variable, checked before gRPC sees them.

gRPC only logs a bad certificate or key ("Invalid private key") and then fails to bind, which the
service used to report as a port problem (API_GRPC_PORT). Certificates are made here with
`cryptography`, and one case runs the real `sentinel api`.
"""

from __future__ import annotations

import datetime
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from sentinel_client import Client, TLSConfig
from sentinel_client import ConfigError as SdkConfigError
from shared.edge.tls import channel_credentials, listen, server_credentials
from shared.errors import ConfigError
from shared.settings import ClientSettings, ExecutionSettings, TlsSettings
from tests.support import closed_port, free_port, make_cert

SENTINEL = str(Path(sys.executable).with_name("sentinel"))


@dataclass(frozen=True)
class Files:
    ca: str  # a CA certificate
    cert: str  # a certificate the CA signed, and its key
    key: str
    other_key: str  # the key of another certificate
    encrypted_key: str  # `key`, encrypted with a password
    junk: str  # a file that holds no PEM at all
    der: str  # the CA certificate in DER, not PEM


@pytest.fixture
def files(tmp_path: Path) -> Files:
    ca = make_cert(tmp_path, "ca", None, ca=True)
    _, key = make_cert(tmp_path, "server", ca)
    make_cert(tmp_path, "other", ca)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
    )
    (tmp_path / "encrypted.key").write_bytes(encrypted)
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    (tmp_path / "ca.der").write_bytes(ca[0].public_bytes(serialization.Encoding.DER))
    names = {"ca": "ca.pem", "cert": "server.pem", "key": "server.key", "other_key": "other.key"}
    names |= {"encrypted_key": "encrypted.key", "junk": "junk.pem", "der": "ca.der"}
    return Files(**{field: str(tmp_path / name) for field, name in names.items()})


def test_a_good_pair_and_client_ca_pass(files: Files) -> None:
    assert server_credentials(TlsSettings(cert_file=files.cert, key_file=files.key))
    assert server_credentials(TlsSettings(cert_file=files.cert, key_file=files.key, client_ca_file=files.ca))
    mtls = ClientSettings(tls=True, tls_ca=files.ca, tls_cert=files.cert, tls_key=files.key)
    assert channel_credentials(mtls)


@pytest.mark.parametrize(
    ("cert", "key", "client_ca", "said"),
    [
        ("cert", "other_key", "", "SENTINEL_TLS_KEY does not match SENTINEL_TLS_CERT"),
        ("junk", "key", "", "SENTINEL_TLS_CERT holds no PEM certificate"),
        ("der", "key", "", "SENTINEL_TLS_CERT holds no PEM certificate"),
        ("cert", "junk", "", "SENTINEL_TLS_KEY holds no PEM private key"),
        ("cert", "encrypted_key", "", "SENTINEL_TLS_KEY is encrypted; give an unencrypted key"),
        ("cert", "key", "junk", "SENTINEL_TLS_CLIENT_CA holds no PEM certificate"),
        ("cert", "key", "der", "SENTINEL_TLS_CLIENT_CA holds no PEM certificate"),
    ],
)
def test_a_bad_server_file_names_its_variable(files: Files, cert: str, key: str, client_ca: str, said: str) -> None:
    tls = TlsSettings(
        cert_file=getattr(files, cert), key_file=getattr(files, key), client_ca_file=getattr(files, client_ca, "")
    )
    with pytest.raises(ConfigError, match=f"^{re.escape(said)}"):
        server_credentials(tls)


def test_a_file_gone_since_the_settings_were_read_names_its_variable(files: Files, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^SENTINEL_TLS_KEY must name a readable file"):
        server_credentials(TlsSettings(cert_file=files.cert, key_file=str(tmp_path / "gone.key")))


async def test_listen_raises_the_config_error_instead_of_failing_to_bind(files: Files) -> None:
    server = grpc.aio.server()
    try:
        with pytest.raises(ConfigError, match=r"^SENTINEL_TLS_KEY does not match SENTINEL_TLS_CERT"):
            listen(server, "127.0.0.1", 0, TlsSettings(cert_file=files.cert, key_file=files.other_key))
    finally:
        await server.stop(None)


def test_the_cli_and_probe_client_files_name_their_variables(files: Files) -> None:
    with pytest.raises(ConfigError, match=r"^SENTINEL_TLS_CA holds no PEM certificate"):
        channel_credentials(ClientSettings.from_env({"SENTINEL_TLS_CA": files.junk}))
    mismatched = {"SENTINEL_TLS_CLIENT_CERT": files.cert, "SENTINEL_TLS_CLIENT_KEY": files.other_key}
    with pytest.raises(ConfigError, match=r"^SENTINEL_TLS_CLIENT_KEY does not match SENTINEL_TLS_CLIENT_CERT"):
        channel_credentials(ClientSettings.from_env(mismatched))


def test_the_api_to_executor_client_files_name_their_variables(files: Files) -> None:
    direct = {"SENTINEL_EXECUTION": "direct", "SENTINEL_EXECUTORS": "127.0.0.1:1"}
    bad_ca = ExecutionSettings.from_env({**direct, "SENTINEL_EXECUTOR_TLS_CA": files.der}).executor_client
    with pytest.raises(ConfigError, match=r"^SENTINEL_EXECUTOR_TLS_CA holds no PEM certificate"):
        channel_credentials(bad_ca)
    encrypted = {
        "SENTINEL_EXECUTOR_TLS_CLIENT_CERT": files.cert,
        "SENTINEL_EXECUTOR_TLS_CLIENT_KEY": files.encrypted_key,
    }
    client = ExecutionSettings.from_env({**direct, **encrypted}).executor_client
    with pytest.raises(ConfigError, match=r"^SENTINEL_EXECUTOR_TLS_CLIENT_KEY is encrypted"):
        channel_credentials(client)


def test_sentinel_api_with_the_key_of_another_certificate_says_so_not_port(files: Files, tmp_path: Path) -> None:
    prefixes = ("REDIS_", "QUEUE_", "SENTINEL_", "OTEL_", "API_", "EXECUTOR_", "USE_QUEUE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(
        REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0",  # the API starts without Redis; TLS fails first
        SENTINEL_AUTH="disabled",
        API_GRPC_HOST="127.0.0.1",
        API_GRPC_PORT=str(free_port()),
        API_HTTP_PORT="0",
        API_METRICS_PORT="0",
        SENTINEL_TLS_CERT=files.cert,
        SENTINEL_TLS_KEY=files.other_key,
        PYTHONUNBUFFERED="1",
    )
    result = subprocess.run(
        [SENTINEL, "api"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=90, check=False
    )
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 2, result.stderr
    assert last == (
        f"sentinel: configuration error: SENTINEL_TLS_KEY does not match SENTINEL_TLS_CERT: "
        f"{files.other_key!r} is not the key of {files.cert!r}"
    ), result.stderr
    assert "API_GRPC_PORT" not in result.stderr
    assert "Invalid private key" not in result.stderr  # gRPC never saw the pair


def test_the_sdk_names_a_bad_file_by_its_variable_or_its_tls_config_field(files: Files) -> None:
    with pytest.raises(SdkConfigError, match=r"^SENTINEL_TLS_CA holds no PEM certificate"):
        Client.from_env({"SENTINEL_TLS_CA": files.junk})
    mismatched = {"SENTINEL_TLS_CLIENT_CERT": files.cert, "SENTINEL_TLS_CLIENT_KEY": files.other_key}
    with pytest.raises(SdkConfigError, match=r"^SENTINEL_TLS_CLIENT_KEY does not match SENTINEL_TLS_CLIENT_CERT"):
        Client.from_env(mismatched)
    with pytest.raises(SdkConfigError, match=r"^TLSConfig: ca holds no PEM certificate"):
        TLSConfig(ca=files.der).credentials()
    with pytest.raises(SdkConfigError, match=r"^TLSConfig: key is encrypted"):
        TLSConfig(ca=files.ca, cert=files.cert, key=files.encrypted_key).credentials()
    TLSConfig(ca=files.ca, cert=files.cert, key=files.key).credentials()  # a good set passes


def test_a_cli_command_with_a_bad_ca_file_says_so_not_unavailable(files: Files, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTINEL_")}
    env |= {"SENTINEL_API": f"127.0.0.1:{closed_port()}", "SENTINEL_TLS_CA": files.junk}
    done = subprocess.run(
        [SENTINEL, "status", "some-job"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done
    assert done.stderr.strip().splitlines()[-1].endswith(f"SENTINEL_TLS_CA holds no PEM certificate ({files.junk!r})")
    assert "UNAVAILABLE" not in done.stderr


def test_a_small_rsa_key_that_grpc_takes_passes_the_check(tmp_path: Path) -> None:
    """OpenSSL's default policy refuses an RSA-1024 key ('ee key too small'); gRPC serves with it,
    so the check must not stop a service that ran before (and never call it 'no PEM key')."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "small.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (tmp_path / "small.key").write_bytes(pem)
    tls = TlsSettings(cert_file=str(tmp_path / "small.pem"), key_file=str(tmp_path / "small.key"))
    server_credentials(tls)  # no ConfigError
