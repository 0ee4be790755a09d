"""A real S3-protocol server for the artifact store's tests: moto's standalone server.

Started as its own process on 127.0.0.1 and a free port (so a test measuring its own memory does
not count the server's), with IAM authentication switched on once one user with an access key and
an allow-s3:* policy exists: from then on moto checks every request's SigV4 signature against that
key, so wrong credentials are refused as a real S3 would refuse them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from sentinel_cli.redis_proc import stop_process
from tests.support import free_port, wait_for_blocking

REGION = "us-east-1"
_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})


@dataclass
class MotoS3:
    port: int
    process: subprocess.Popen[bytes]
    access_key_id: str = ""
    secret_access_key: str = ""

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, service: str = "s3") -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=self.access_key_id or "setup",
            aws_secret_access_key=self.secret_access_key or "setup",
        )

    def new_bucket(self) -> str:
        name = f"sentinel-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def env(self, url: str, **extra: str) -> dict[str, str]:
        """Environment for `ArtifactSettings.from_env` that points at this server with valid keys."""
        return {
            "SENTINEL_ARTIFACTS_URL": url,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            **extra,
        }

    def stop(self) -> None:
        stop_process(self.process)


def _post(url: str, body: bytes) -> bytes:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=5) as reply:
        return bytes(reply.read())


def start_moto(log: Path, *, timeout_s: float = 30.0) -> MotoS3:
    """Start moto's server, create the IAM user and key, then require signed requests."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = MotoS3(port=port, process=process)

    def answering() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with code {process.returncode}: {log.read_text()[-2000:]}")
        urllib.request.urlopen(f"{server.endpoint}/moto-api/", timeout=1).close()
        return True

    try:
        wait_for_blocking(answering, within=timeout_s, ignoring=(OSError,), what="moto_server to answer")
    except BaseException:
        server.stop()
        raise
    try:
        iam = server.client("iam")
        iam.create_user(UserName="sentinel")
        iam.put_user_policy(UserName="sentinel", PolicyName="artifacts", PolicyDocument=_POLICY)
        key = iam.create_access_key(UserName="sentinel")["AccessKey"]
        server.access_key_id, server.secret_access_key = key["AccessKeyId"], key["SecretAccessKey"]
        _post(f"{server.endpoint}/moto-api/reset-auth", b"0")  # every request from now on is checked
    except Exception:
        server.stop()
        raise
    return server
