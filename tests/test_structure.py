"""The import graph keeps the shape the folders promise: two services over `shared/`.

Read from the source (every import statement, also those inside functions), so a new import that
crosses a boundary fails here before anyone has to find it in review.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("api_service", "executor_service")
#: The CLI may import a service only where it launches that service's server.
CLI_LAUNCHERS = {"sentinel_cli/main.py", "sentinel_cli/dev.py"}


def modules_of(path: Path) -> set[str]:
    """The modules `path` imports, by full name (absolute imports only; the project uses no others)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def imports_of(path: Path) -> set[str]:
    """The top-level packages `path` imports."""
    return {module.split(".")[0] for module in modules_of(path)}


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", ["shared", "protos"])
def test_shared_code_imports_no_service_and_no_cli(package: str) -> None:
    for path in sources(package):
        crossing = imports_of(path) & {*SERVICES, "sentinel_cli"}
        assert not crossing, f"{path.relative_to(ROOT)} imports {sorted(crossing)}"


@pytest.mark.parametrize(("service", "other"), [SERVICES, SERVICES[::-1]])
def test_neither_service_imports_the_other(service: str, other: str) -> None:
    for path in sources(service):
        assert other not in imports_of(path), f"{path.relative_to(ROOT)} imports {other}"
        assert "sentinel_cli" not in imports_of(path), f"{path.relative_to(ROOT)} imports sentinel_cli"


def test_the_cli_imports_a_service_only_to_launch_it() -> None:
    for path in sources("sentinel_cli"):
        relative = str(path.relative_to(ROOT))
        if relative in CLI_LAUNCHERS:
            continue
        crossing = imports_of(path) & set(SERVICES)
        assert not crossing, f"{relative} imports {sorted(crossing)}"


def test_the_sdk_imports_only_its_protos_grpc_protobuf_and_the_standard_library() -> None:
    """`sentinel_client` ships to users' programs: no service code, no CLI, no third-party package
    beyond gRPC and protobuf (not even google.rpc: it reads error details with protobuf alone)."""
    allowed = {"sentinel_client", "protos", "grpc", "google", *sys.stdlib_module_names}
    for path in sources("sentinel_client"):
        found = imports_of(path)
        assert found <= allowed, f"{path.relative_to(ROOT)} imports {sorted(found - allowed)}"
        google = {m for m in modules_of(path) if m.split(".")[0] == "google" and not m.startswith("google.protobuf")}
        assert not google, f"{path.relative_to(ROOT)} imports {sorted(google)}"


def test_grpc_and_protobuf_stay_at_the_edge() -> None:
    """Business logic in shared/ is testable without a server: only shared/edge touches gRPC."""
    edge_only = {"grpc", "grpc_health", "grpc_reflection", "grpc_status", "protos", "google"}
    for path in sources("shared"):
        if path.parent.name == "edge" or path.name == "telemetry.py":
            continue  # telemetry builds the tracing interceptors the edge installs
        crossing = imports_of(path) & edge_only
        assert not crossing, f"{path.relative_to(ROOT)} imports {sorted(crossing)}"


def test_the_checks_see_real_imports() -> None:
    """Guards the guard: the parser finds the imports it is meant to police."""
    assert "shared" in imports_of(ROOT / "api_service" / "server.py")
    assert "api_service" in imports_of(ROOT / "sentinel_cli" / "dev.py")
    assert "grpc" in imports_of(ROOT / "shared" / "edge" / "server.py")
    assert "google.protobuf.message" in modules_of(ROOT / "sentinel_client" / "_ops.py")
