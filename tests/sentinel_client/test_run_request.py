"""What `submit_run` (and so `sentinel run`) sends for each test: its definition file's own options too."""

from __future__ import annotations

import json
from pathlib import Path

from sentinel_client._requests import run_request

DEFINITION = {"name": "t", "steps": [{"navigate": {"url": "https://shop.example.test/"}}]}


def test_a_files_options_go_with_its_test_and_the_runs_stay_the_runs(tmp_path: Path) -> None:
    with_options = tmp_path / "slow.json"
    with_options.write_text(
        json.dumps({"definition": DEFINITION, "options": {"timeoutMs": 4000, "maxAttempts": 1, "tags": ["slow"]}}),
        encoding="utf-8",
    )
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(DEFINITION), encoding="utf-8")

    request = run_request([str(with_options), str(plain)], name="suite", max_parallel=0, options={"tags": ["ci"]})

    own, bare = request.tests
    assert own.HasField("options") and (own.options.timeout_ms, own.options.max_attempts) == (4000, 1)
    assert list(own.options.tags) == ["slow"]
    assert not bare.HasField("options")
    assert list(request.options.tags) == ["ci"] and request.options.idempotency_key  # the run's
