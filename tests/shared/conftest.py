from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.shared.moto_s3 import MotoS3, start_moto


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    """One moto server for the session (it takes a second or two to start); tests use fresh buckets."""
    server = start_moto(tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        yield server
    finally:
        server.stop()
