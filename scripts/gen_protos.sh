#!/usr/bin/env bash
# Regenerates protos/*_pb2.py, *_pb2_grpc.py and *.pyi from protos/*.proto (from the repo root,
# with -I. so the generated code imports `from protos import sentinel_pb2`).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
"$PY" -m grpc_tools.protoc -I. --python_out=. --pyi_out=. --grpc_python_out=. protos/*.proto
