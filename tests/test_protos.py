"""The committed generated code in protos/ must be exactly what the .proto files generate.

Regenerates every protos/*.proto in a temporary copy of the layout the real script uses
(scripts/gen_protos.sh: from the repository root with ``-I.``) and compares byte for byte, so a
.proto edited without ``make protos`` fails CI instead of shipping stale stubs.
"""

from __future__ import annotations

import difflib
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
PROTO_FILES = sorted(PROTOS.glob("*.proto"))
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
EXPECTED = sorted(f"{proto.stem}{suffix}" for proto in PROTO_FILES for suffix in GENERATED_SUFFIXES)


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run protoc on a copy of protos/*.proto; returns the directory holding the output."""
    root = tmp_path_factory.mktemp("gen")
    (root / "protos").mkdir()
    for proto in PROTO_FILES:
        shutil.copy2(proto, root / "protos" / proto.name)
    args = ["-I.", "--python_out=.", "--pyi_out=.", "--grpc_python_out=."]
    sources = [f"protos/{proto.name}" for proto in PROTO_FILES]
    result = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", *args, *sources],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"protoc failed:\n{result.stdout}{result.stderr}"
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
        f"(regenerated with grpcio-tools {version('grpcio-tools')}, protobuf {version('protobuf')}; "
        f"a different grpcio-tools release alone changes version headers).\n{diff}",
        pytrace=False,
    )
