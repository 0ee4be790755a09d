"""SENTINEL_EXECUTION, USE_QUEUE_SYSTEM, SENTINEL_EXECUTORS and QUEUE_LOW_PRIORITY_ONLY."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.errors import ConfigError
from shared.settings import ExecutionMode, ExecutionSettings

EXECUTORS = {"SENTINEL_EXECUTORS": "exec-a:50052, exec-b:50052"}


def test_queue_is_the_default_and_needs_no_executors() -> None:
    settings = ExecutionSettings.from_env({})
    assert settings.mode is ExecutionMode.QUEUE and settings.uses_queue and not settings.runs_direct
    assert settings.max_jobs == 10_000 and not settings.low_priority_only


@pytest.mark.parametrize(
    ("env", "mode"),
    [
        ({"SENTINEL_EXECUTION": "direct"}, ExecutionMode.DIRECT),
        ({"SENTINEL_EXECUTION": "Hybrid"}, ExecutionMode.HYBRID),
        ({"USE_QUEUE_SYSTEM": "false"}, ExecutionMode.DIRECT),
        ({"USE_QUEUE_SYSTEM": "true"}, ExecutionMode.QUEUE),
        ({"USE_QUEUE_SYSTEM": "false", "SENTINEL_EXECUTION": "direct"}, ExecutionMode.DIRECT),
        ({"USE_QUEUE_SYSTEM": "true", "SENTINEL_EXECUTION": "hybrid"}, ExecutionMode.HYBRID),
        ({"QUEUE_LOW_PRIORITY_ONLY": "true"}, ExecutionMode.HYBRID),
    ],
)
def test_the_mode_from_either_variable(env: dict[str, str], mode: ExecutionMode) -> None:
    settings = ExecutionSettings.from_env({**env, **EXECUTORS})
    assert settings.mode is mode
    assert settings.executors == ("exec-a:50052", "exec-b:50052")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"SENTINEL_EXECUTION": "sometimes"},
            "SENTINEL_EXECUTION must be one of queue, direct, hybrid, got 'sometimes'",
        ),
        ({"USE_QUEUE_SYSTEM": "maybe"}, "USE_QUEUE_SYSTEM must be true or false"),
        (
            {"USE_QUEUE_SYSTEM": "false", "SENTINEL_EXECUTION": "queue"},
            "USE_QUEUE_SYSTEM=false contradicts SENTINEL_EXECUTION=queue",
        ),
        (
            {"USE_QUEUE_SYSTEM": "false", "SENTINEL_EXECUTION": "hybrid"},
            "USE_QUEUE_SYSTEM=false contradicts SENTINEL_EXECUTION=hybrid",
        ),
        (
            {"USE_QUEUE_SYSTEM": "true", "SENTINEL_EXECUTION": "direct"},
            "USE_QUEUE_SYSTEM=true contradicts SENTINEL_EXECUTION=direct",
        ),
        ({"QUEUE_LOW_PRIORITY_ONLY": "true", "SENTINEL_EXECUTION": "direct"}, "QUEUE_LOW_PRIORITY_ONLY=true needs"),
        ({"SENTINEL_EXECUTORS": "exec-a"}, "SENTINEL_EXECUTORS must list host:port addresses"),
        ({"SENTINEL_EXECUTORS": "exec-a:99999"}, "SENTINEL_EXECUTORS must list host:port addresses"),
        ({"SENTINEL_DIRECT_MAX_JOBS": "0"}, "SENTINEL_DIRECT_MAX_JOBS must be an integer ≥ 1"),
        ({"SENTINEL_EXECUTOR_TLS_CLIENT_CERT": "/etc/hostname"}, "SENTINEL_EXECUTOR_TLS_CLIENT_KEY must be set"),
    ],
)
def test_a_bad_value_names_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ExecutionSettings.from_env({"SENTINEL_EXECUTION": "hybrid", **EXECUTORS, **env})


def test_the_api_needs_executors_to_run_jobs_directly_but_an_executor_does_not() -> None:
    for mode in ("direct", "hybrid"):
        with pytest.raises(
            ConfigError, match=f"SENTINEL_EXECUTORS must list the executors .* SENTINEL_EXECUTION={mode}"
        ):
            ExecutionSettings.from_env({"SENTINEL_EXECUTION": mode})
        assert ExecutionSettings.from_env({"SENTINEL_EXECUTION": mode}, api=False).executors == ()


def test_how_the_api_reaches_executors(tmp_path: Path) -> None:
    ca, cert, key = (tmp_path / n for n in ("ca.pem", "api.pem", "api.key"))
    for path in (ca, cert, key):
        path.write_text("-")
    settings = ExecutionSettings.from_env(
        {
            "SENTINEL_EXECUTION": "direct",
            **EXECUTORS,
            "SENTINEL_EXECUTOR_TLS_CA": str(ca),
            "SENTINEL_EXECUTOR_TLS_CLIENT_CERT": str(cert),
            "SENTINEL_EXECUTOR_TLS_CLIENT_KEY": str(key),
            "SENTINEL_EXECUTOR_API_KEY": "sk_admin",
        }
    )
    client = settings.executor_client
    assert client.tls and (client.tls_ca, client.tls_cert, client.tls_key) == (str(ca), str(cert), str(key))
    assert client.api_key == "sk_admin"
    assert not ExecutionSettings.from_env({}).executor_client.tls
