#!/usr/bin/env bash
# Regenerates protos/*_pb2.py, *_pb2.pyi, *_pb2_grpc.py and *_pb2_grpc.pyi from protos/*.proto (from
# the repo root, with -I. so the generated code imports `from protos import sentinel_pb2`).
#
# grpcio-tools writes the code and the messages' .pyi; mypy-protobuf's protoc-gen-mypy_grpc writes the
# services' .pyi. Both are pinned in pyproject's dev extra: another release changes the output, and
# tests/test_protos.py runs this script and compares byte for byte. `only_async` because every
# channel and server here is grpc.aio, so `TestExecutionStub(channel)` is typed with awaitable calls.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
# protoc looks plugins up on PATH; name the one installed beside $PY so an unactivated venv works.
BIN="$("$PY" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
"$PY" -m grpc_tools.protoc -I. \
  --python_out=. --pyi_out=. --grpc_python_out=. \
  --plugin=protoc-gen-mypy_grpc="$BIN/protoc-gen-mypy_grpc" --mypy_grpc_out=only_async,quiet:. \
  protos/*.proto
