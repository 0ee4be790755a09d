"""The committed generated code in protos/ must be exactly what the .proto files generate.

Runs the real script (scripts/gen_protos.sh) on a temporary copy of the layout it expects
(scripts/ and protos/ side by side) and compares byte for byte, so a .proto edited without
``make protos`` fails CI instead of shipping stale code or stale type stubs.
"""

from __future__ import annotations

import difflib
import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
PROTO_FILES = sorted(PROTOS.glob("*.proto"))
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")
SCRIPT = ROOT / "scripts" / "gen_protos.sh"
EXPECTED = sorted(f"{proto.stem}{suffix}" for proto in PROTO_FILES for suffix in GENERATED_SUFFIXES)


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run scripts/gen_protos.sh on a copy of protos/*.proto; returns the directory holding the output."""
    root = tmp_path_factory.mktemp("gen")
    (root / "protos").mkdir()
    (root / "scripts").mkdir()
    for proto in PROTO_FILES:
        shutil.copy2(proto, root / "protos" / proto.name)
    shutil.copy2(SCRIPT, root / "scripts" / SCRIPT.name)
    result = subprocess.run(
        ["bash", str(root / "scripts" / SCRIPT.name)],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"gen_protos.sh failed:\n{result.stdout}{result.stderr}"
    return root / "protos"


def test_there_are_protos() -> None:
    assert (PROTOS / "sentinel.proto").is_file()


def test_no_generated_file_without_a_proto() -> None:
    committed = sorted(p.name for p in PROTOS.iterdir() if p.name.endswith(GENERATED_SUFFIXES))
    assert committed == EXPECTED, "protos/ holds generated files no .proto produces (or lacks some)"


def test_regeneration_makes_no_other_files(regenerated: Path) -> None:
    made = sorted(p.name for p in regenerated.iterdir() if not p.name.endswith(".proto"))
    assert made == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_generated_file_is_up_to_date(regenerated: Path, name: str) -> None:
    committed = PROTOS / name
    assert committed.is_file(), f"protos/{name} is not committed; run `make protos`"
    fresh = (regenerated / name).read_bytes()
    if committed.read_bytes() == fresh:
        return
    diff = "".join(
        list(
            difflib.unified_diff(
                committed.read_text().splitlines(keepends=True),
                fresh.decode().splitlines(keepends=True),
                f"committed/protos/{name}",
                f"regenerated/protos/{name}",
            )
        )[:60]
    )
    pytest.fail(
        f"protos/{name} is stale: run `make protos` and commit the result "
        f"(regenerated with grpcio-tools {version('grpcio-tools')}, mypy-protobuf {version('mypy-protobuf')}, "
        f"protobuf {version('protobuf')}; a different release of either generator alone changes the output).\n{diff}",
        pytrace=False,
    )
