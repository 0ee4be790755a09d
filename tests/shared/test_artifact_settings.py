"""ArtifactSettings: SENTINEL_ARTIFACTS_URL (or the older SENTINEL_ARTIFACTS_DIR), the size caps,
and the standard AWS variables an S3 store needs; a bad value names its variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.artifact_file import FileArtifactStore
from shared.artifact_s3 import S3ArtifactStore
from shared.artifact_store import open_store
from shared.errors import ConfigError
from shared.settings import ArtifactLocation, ArtifactSettings

MiB = 1024 * 1024


def test_defaults_a_directory_named_artifacts_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = ArtifactSettings.from_env({})
    assert settings.url == (tmp_path / "artifacts").as_uri()
    assert settings.location == ArtifactLocation(scheme="file", path=str(tmp_path / "artifacts"))
    assert (settings.max_artifact_bytes, settings.max_job_bytes) == (100 * MiB, 500 * MiB)
    assert ArtifactSettings() == settings  # the bare constructor agrees


def test_sentinel_artifacts_dir_still_names_the_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = ArtifactSettings.from_env({"SENTINEL_ARTIFACTS_DIR": "shots dir"})
    assert relative.url == (tmp_path / "shots dir").as_uri()
    assert relative.location.path == str(tmp_path / "shots dir")
    absolute = ArtifactSettings.from_env({"SENTINEL_ARTIFACTS_DIR": "/srv/artifacts"})
    assert absolute.url == "file:///srv/artifacts"
    both = {"SENTINEL_ARTIFACTS_DIR": "/srv/old", "SENTINEL_ARTIFACTS_URL": "file:///srv/new"}
    assert ArtifactSettings.from_env(both).location.path == "/srv/new"  # the URL wins


@pytest.mark.parametrize(
    ("url", "location"),
    [
        ("file:///var/lib/sentinel/artifacts/", ArtifactLocation("file", path="/var/lib/sentinel/artifacts")),
        ("file://localhost/data", ArtifactLocation("file", path="/data")),
        ("s3://artifacts", ArtifactLocation("s3", bucket="artifacts")),
        (
            "s3://my-bucket.example/sentinel/prod/",
            ArtifactLocation("s3", bucket="my-bucket.example", prefix="sentinel/prod"),
        ),
    ],
)
def test_urls_are_parsed_into_a_location(url: str, location: ArtifactLocation) -> None:
    assert ArtifactSettings.from_env({"SENTINEL_ARTIFACTS_URL": url}).location == location


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://host/artifacts", "SENTINEL_ARTIFACTS_URL must be file:///absolute/path or s3://bucket"),
        ("/srv/artifacts", "SENTINEL_ARTIFACTS_URL must be file:///absolute/path or s3://bucket"),
        ("gs://bucket", "SENTINEL_ARTIFACTS_URL must be"),
        ("file://artifacts", "needs an absolute path"),
        ("s3://", "names no bucket"),
        ("s3:///prefix/only", "names no bucket"),
        ("s3://Bad_Bucket!/x", "is not a bucket name"),
        ("s3://ab", "is not a bucket name"),
        ("s3://bucket/a/../b", "the prefix must be plain"),
        ("s3://bucket/a//b", "the prefix must be plain"),
        ("s3://bucket/p?versionId=1", "no query or fragment"),
    ],
)
def test_a_bad_url_names_the_variable(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as refused:
        ArtifactSettings.from_env({"SENTINEL_ARTIFACTS_URL": url})
    assert "SENTINEL_ARTIFACTS_URL" in str(refused.value)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SENTINEL_ARTIFACT_MAX_BYTES": "lots"}, "SENTINEL_ARTIFACT_MAX_BYTES must be an integer ≥ 1, got 'lots'"),
        ({"SENTINEL_ARTIFACT_MAX_BYTES": "0"}, "SENTINEL_ARTIFACT_MAX_BYTES must be an integer ≥ 1"),
        ({"SENTINEL_JOB_ARTIFACTS_MAX_BYTES": "-5"}, "SENTINEL_JOB_ARTIFACTS_MAX_BYTES must be an integer ≥ 1"),
        (
            {"SENTINEL_ARTIFACT_MAX_BYTES": "2000", "SENTINEL_JOB_ARTIFACTS_MAX_BYTES": "1000"},
            r"SENTINEL_JOB_ARTIFACTS_MAX_BYTES \(1000\) must be at least SENTINEL_ARTIFACT_MAX_BYTES \(2000\)",
        ),
    ],
)
def test_bad_caps_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ArtifactSettings.from_env(env)


def test_caps_are_read() -> None:
    settings = ArtifactSettings.from_env(
        {"SENTINEL_ARTIFACT_MAX_BYTES": "1048576", "SENTINEL_JOB_ARTIFACTS_MAX_BYTES": "10485760"}
    )
    assert (settings.max_artifact_bytes, settings.max_job_bytes) == (MiB, 10 * MiB)


S3_ENV = {
    "SENTINEL_ARTIFACTS_URL": "s3://artifacts/sentinel",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9000/",
    "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "s3cr3t/Key+value",
    "AWS_SESSION_TOKEN": "session-token-value",
    "AWS_REGION": "eu-west-1",
}


def test_an_s3_store_reads_the_standard_aws_variables_and_hides_the_secrets() -> None:
    settings = ArtifactSettings.from_env(S3_ENV)
    assert settings.endpoint_url == "http://127.0.0.1:9000"
    assert (settings.access_key_id, settings.secret_access_key) == ("AKIAEXAMPLE", "s3cr3t/Key+value")
    assert (settings.session_token, settings.region) == ("session-token-value", "eu-west-1")
    assert "s3cr3t" not in repr(settings) and "session-token-value" not in repr(settings)
    assert "AKIAEXAMPLE" in repr(settings)  # the key id is no secret, and helps to tell keys apart

    service_specific = {**S3_ENV, "AWS_ENDPOINT_URL_S3": "https://minio.internal:9000"}
    assert ArtifactSettings.from_env(service_specific).endpoint_url == "https://minio.internal:9000"
    default_region = {k: v for k, v in S3_ENV.items() if k != "AWS_REGION"} | {"AWS_DEFAULT_REGION": "ap-south-1"}
    assert ArtifactSettings.from_env(default_region).region == "ap-south-1"
    no_keys = {"SENTINEL_ARTIFACTS_URL": "s3://artifacts"}  # the library's credential chain then applies
    assert ArtifactSettings.from_env(no_keys).access_key_id == ""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"AWS_ENDPOINT_URL": "minio:9000"}, "AWS_ENDPOINT_URL must be an http:// or https:// URL, got 'minio:9000'"),
        ({"AWS_ENDPOINT_URL_S3": "ftp://x"}, "AWS_ENDPOINT_URL_S3 must be an http:// or https:// URL"),
        ({"AWS_SECRET_ACCESS_KEY": ""}, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together"),
        ({"AWS_ACCESS_KEY_ID": ""}, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together"),
        ({"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}, "AWS_SESSION_TOKEN needs AWS_ACCESS_KEY_ID"),
    ],
)
def test_bad_aws_variables_name_the_variable_and_never_the_secret(change: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as refused:
        ArtifactSettings.from_env(S3_ENV | change)
    assert "s3cr3t" not in str(refused.value)


def test_a_file_store_ignores_aws_variables_meant_for_something_else() -> None:
    env = {"SENTINEL_ARTIFACTS_URL": "file:///srv/a", "AWS_ENDPOINT_URL": "not a url", "AWS_ACCESS_KEY_ID": "x"}
    settings = ArtifactSettings.from_env(env)
    assert (settings.endpoint_url, settings.access_key_id) == ("", "")


def test_open_store_picks_the_backend_by_scheme(tmp_path: Path) -> None:
    file_store = open_store(ArtifactSettings.from_env({"SENTINEL_ARTIFACTS_URL": tmp_path.as_uri()}))
    assert isinstance(file_store, FileArtifactStore) and file_store.location == tmp_path.as_uri()
    s3_store = open_store(ArtifactSettings.from_env(S3_ENV))  # opens no connection
    assert isinstance(s3_store, S3ArtifactStore)
    assert s3_store.location == "s3://artifacts/sentinel at http://127.0.0.1:9000"
    with pytest.raises(ConfigError, match="SENTINEL_ARTIFACTS_URL"):
        open_store(ArtifactSettings(url="http://example.invalid/x"))
