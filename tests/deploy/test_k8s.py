"""deploy/k8s, checked offline on what `kubectl kustomize` renders from the example overlay.

Every object is validated against the Kubernetes schemas (kubernetes-validate, strict: unknown
fields fail) and the KEDA objects against KEDA's (tests/deploy/keda_tools); then the pieces are
checked against each other and against the code: settings names, ports, probes, grace periods,
selectors, Secrets, the scaling target and figure, the network policy's ranges, Redis's settings.
"""

from __future__ import annotations

import copy
import ipaddress
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from executor_service.navigation_policy import is_denied_address
from shared.access import KeyRing
from shared.edge.serving import LIVENESS_SERVICE
from shared.errors import ConfigError
from shared.sealed import sealer_for
from tests.deploy.manifests import (
    BASE,
    EXAMPLE,
    KUBERNETES_VERSION,
    ROOT,
    Obj,
    Rendered,
    env_names,
    example,
    keda_validate,
    port_named,
    render,
    selects,
)
from tests.support import free_port, wait_for_blocking

API, EXECUTOR, REDIS = "sentinel-api", "sentinel-executor", "sentinel-redis"
#: Each service's port settings: (container port name, variable).
PORTS = {
    API: [("grpc", "API_GRPC_PORT"), ("http", "API_HTTP_PORT"), ("metrics", "API_METRICS_PORT")],
    EXECUTOR: [("grpc", "EXECUTOR_GRPC_PORT"), ("metrics", "EXECUTOR_METRICS_PORT")],
}
GRACE = {API: "API_SHUTDOWN_GRACE_MS", EXECUTOR: "EXECUTOR_SHUTDOWN_GRACE_MS"}
#: Time a pod needs after its grace: handing jobs back, closing Chromium, the server's own stop.
SHUTDOWN_MARGIN_MS = 10_000
#: The metrics-api scaler's trigger parameters (KEDA's scaler documentation).
METRICS_API_PARAMETERS = {
    "url",
    "format",
    "valueLocation",
    "targetValue",
    "activationTargetValue",
    "unsafeSsl",
    "authMode",
    "timeout",
    "aggregateFromKubeServiceEndpoints",
    "aggregationType",
}


@pytest.fixture(scope="module")
def k8s() -> Rendered:
    return example()


def settings_names() -> set[str]:
    """Every variable name shared/settings.py reads (the one module that reads the environment)."""
    return set(re.findall(r'"([A-Z][A-Z0-9_]+)"', (ROOT / "shared" / "settings.py").read_text()))


# --- rendering and schemas -------------------------------------------------------------------


def test_base_and_overlay_render_and_the_overlay_places_everything_in_its_namespace(k8s: Rendered) -> None:
    assert render(BASE), "the base renders on its own"
    namespace = k8s.one("Namespace", "sentinel")["metadata"]["name"]
    for obj in k8s.objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == namespace, f"{obj['kind']} {obj['metadata']['name']}"
    kinds = {o["kind"] for o in k8s.objects}
    assert {"Deployment", "StatefulSet", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"} <= kinds
    assert {"NetworkPolicy", "ScaledObject", "ConfigMap", "Secret"} <= kinds


def test_every_kubernetes_object_is_valid_against_the_schemas_strictly(k8s: Rendered) -> None:
    checked = 0
    for obj in k8s.objects:
        if obj["apiVersion"].startswith("keda.sh/"):
            continue
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        checked += 1
    assert checked >= 12
    # The check is strict: a misspelt field fails it.
    broken = copy.deepcopy(k8s.one("Deployment", EXECUTOR))
    broken["spec"]["template"]["spec"]["terminationGracePeriod"] = 60
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_keda_objects_are_valid_against_keda_schemas(k8s: Rendered) -> None:
    keda = [o for o in k8s.objects if o["apiVersion"].startswith("keda.sh/")]
    assert [o["kind"] for o in keda] == ["ScaledObject"]
    reports = keda_validate(keda)
    assert [(r["kind"], r["name"], r["errors"]) for r in reports] == [("ScaledObject", EXECUTOR, [])]
    broken = copy.deepcopy(keda[0])
    broken["spec"]["minReplicaCount"] = "zero"
    del broken["spec"]["scaleTargetRef"]
    [report] = keda_validate([broken])
    for schemas in ("KEDA API types", "KEDA 2.10.1 CRD"):  # both sets of schemas see both faults
        [error] = [e for e in report["errors"] if e.startswith(schemas)]
        assert "scaleTargetRef" in error and "minReplicaCount" in error, error


# --- settings, Secrets, commands ---------------------------------------------------------------


def test_every_variable_given_to_the_services_is_a_setting(k8s: Rendered) -> None:
    known = settings_names()
    given = set(k8s.config())
    for name in (API, EXECUTOR):
        given |= set(env_names(k8s.container("Deployment", name)))
    unknown = sorted(given - known)
    assert not unknown, f"not read by shared/settings.py: {unknown}"


def test_config_and_secret_references_resolve(k8s: Rendered) -> None:
    names = {(o["kind"], o["metadata"]["name"]) for o in k8s.objects}
    for name in (API, EXECUTOR):
        container = k8s.container("Deployment", name)
        for source in container["envFrom"]:
            kind, ref = (
                ("ConfigMap", source["configMapRef"]) if "configMapRef" in source else ("Secret", source["secretRef"])
            )
            assert (kind, ref["name"]) in names or ref.get("optional"), f"{name}: {kind} {ref['name']} missing"
        for item in container.get("env", []):
            secret = item.get("valueFrom", {}).get("secretKeyRef")
            if secret:
                data = k8s.one("Secret", secret["name"])["data"]
                assert secret["key"] in data, f"{name}: Secret {secret['name']} has no key {secret['key']}"
        for volume in k8s.pod_spec("Deployment", name)["volumes"]:
            if "secret" in volume:
                assert ("Secret", volume["secret"]["secretName"]) in names


def test_the_keys_file_is_mounted_where_the_setting_points(k8s: Rendered) -> None:
    keys_file = Path(k8s.config()["SENTINEL_API_KEYS_FILE"])
    secret = k8s.generated("Secret", "sentinel-api-keys")
    assert keys_file.name in secret["data"]
    for name in (API, EXECUTOR):  # executors check keys on their internal service too
        volumes = {v["name"]: v for v in k8s.pod_spec("Deployment", name)["volumes"]}
        mounts = {m["mountPath"]: m for m in k8s.container("Deployment", name)["volumeMounts"]}
        mount = mounts.get(str(keys_file.parent))
        assert mount is not None and mount.get("readOnly"), f"{name}: nothing read-only at {keys_file.parent}"
        assert volumes[mount["name"]]["secret"]["secretName"] == secret["metadata"]["name"]


def test_the_example_secrets_are_placeholders_sentinel_refuses() -> None:
    """As committed, the example cannot run with a key someone else knows: both services refuse it."""
    with pytest.raises(ConfigError, match="sha256"):
        KeyRing.from_json((EXAMPLE / "keys.json").read_text())
    line = (EXAMPLE / "secret-key.env").read_text().strip()
    name, _, value = line.partition("=")
    assert name == "SENTINEL_SECRET_KEY"
    with pytest.raises(ConfigError, match="SENTINEL_SECRET_KEY"):
        sealer_for(value)


@pytest.mark.parametrize("name", [API, EXECUTOR])
def test_the_containers_run_sentinel_commands_that_exist(k8s: Rendered, name: str) -> None:
    container = k8s.container("Deployment", name)
    argv = container["args"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "command" not in container and argv[0] in scripts
    assert argv[-1] == name.removeprefix("sentinel-")
    sentinel = str(Path(sys.executable).with_name(argv[0]))
    result = subprocess.run([sentinel, *argv[1:], "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    image = container["image"]
    assert ":" in image and not image.endswith(":latest"), f"the overlay pins {name}'s image: {image}"


# --- ports, probes, selectors ------------------------------------------------------------------


@pytest.mark.parametrize("name", [API, EXECUTOR])
def test_container_ports_are_the_configured_ones_and_probes_use_grpc_health(k8s: Rendered, name: str) -> None:
    config = k8s.config()
    container = k8s.container("Deployment", name)
    for port_name, variable in PORTS[name]:
        assert port_named(container, port_name) == int(config[variable]), variable
    grpc_port = port_named(container, "grpc")
    readiness, liveness, startup = (container[p] for p in ("readinessProbe", "livenessProbe", "startupProbe"))
    assert readiness["grpc"] == {"port": grpc_port}, "readiness: the overall status (Redis, draining)"
    assert liveness["grpc"] == {"port": grpc_port, "service": LIVENESS_SERVICE}
    assert startup["grpc"] == {"port": grpc_port, "service": LIVENESS_SERVICE}


def test_services_select_their_pods_and_target_named_container_ports(k8s: Rendered) -> None:
    pods = {
        o["metadata"]["name"]: (
            o["spec"]["template"]["metadata"]["labels"],
            o["spec"]["template"]["spec"]["containers"],
        )
        for o in [*k8s.all("Deployment"), *k8s.all("StatefulSet")]
    }
    for service in k8s.all("Service"):
        selected = [
            n for n, (labels, _) in pods.items() if selects({"matchLabels": service["spec"]["selector"]}, labels)
        ]
        assert len(selected) == 1, f"Service {service['metadata']['name']} selects {selected}"
        [container] = pods[selected[0]][1]
        for port in service["spec"]["ports"]:
            assert port["port"] == port_named(container, port["targetPort"]), port
    for workload in [*k8s.all("Deployment"), *k8s.all("StatefulSet")]:
        assert selects(workload["spec"]["selector"], workload["spec"]["template"]["metadata"]["labels"])
    for pdb in k8s.all("PodDisruptionBudget"):
        selected = [n for n, (labels, _) in pods.items() if selects(pdb["spec"]["selector"], labels)]
        assert selected == [pdb["metadata"]["name"]], f"PDB {pdb['metadata']['name']} selects {selected}"


async def test_liveness_stays_serving_while_redis_is_down_and_readiness_does_not(k8s: Rendered) -> None:
    """The probes' service names, asked of a real API whose Redis does not answer."""
    from grpc import aio
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from api_service.server import ApiServer
    from shared.settings import ApiSettings, QueueSettings, RedisSettings

    container = k8s.container("Deployment", API)
    server = await ApiServer.start(
        redis=RedisSettings(url=f"redis://127.0.0.1:{free_port()}/0", configured=True),
        queue_settings=QueueSettings(),
        api=ApiSettings(host="127.0.0.1", port=0, http_port=0, metrics_port=0),
    )
    try:
        async with aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)

            async def status(probe: str) -> int:
                service = container[probe]["grpc"].get("service", "")
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
                return int(reply.status)

            assert await status("readinessProbe") == health_pb2.HealthCheckResponse.NOT_SERVING
            assert await status("livenessProbe") == health_pb2.HealthCheckResponse.SERVING
            assert await status("startupProbe") == health_pb2.HealthCheckResponse.SERVING
    finally:
        await server.stop(0)


# --- shutdown, Chromium, disruption ----------------------------------------------------------


@pytest.mark.parametrize("name", [API, EXECUTOR])
def test_termination_grace_outlasts_the_services_own_grace(k8s: Rendered, name: str) -> None:
    grace_ms = int(k8s.config()[GRACE[name]])
    termination_s = k8s.pod_spec("Deployment", name)["terminationGracePeriodSeconds"]
    assert termination_s * 1000 >= grace_ms + SHUTDOWN_MARGIN_MS, (termination_s, GRACE[name], grace_ms)


def test_executors_get_a_memory_backed_dev_shm_within_their_memory_limit(k8s: Rendered) -> None:
    container = k8s.container("Deployment", EXECUTOR)
    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == "/dev/shm"]
    [volume] = [v for v in k8s.pod_spec("Deployment", EXECUTOR)["volumes"] if v["name"] == mount["name"]]
    assert volume["emptyDir"]["medium"] == "Memory"
    shm = gibibytes(volume["emptyDir"]["sizeLimit"])
    assert shm >= 1
    assert gibibytes(container["resources"]["limits"]["memory"]) > shm, "/dev/shm counts against the limit"


def gibibytes(quantity: str) -> float:
    units = {"Gi": 1.0, "Mi": 1 / 1024}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return float(quantity.removesuffix(suffix)) * factor
    raise AssertionError(f"unexpected quantity {quantity!r}")


def test_the_api_scales_on_cpu_from_two_replicas_and_executors_only_by_keda(k8s: Rendered) -> None:
    [hpa] = k8s.all("HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", API)
    assert hpa["spec"]["minReplicas"] >= 2 and hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    [metric] = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu" and metric["resource"]["target"]["type"] == "Utilization"
    assert k8s.container("Deployment", API)["resources"]["requests"]["cpu"], "CPU utilization needs a request"
    for name in (API, EXECUTOR):  # the autoscalers own the counts
        assert "replicas" not in k8s.one("Deployment", name)["spec"]


# --- KEDA ------------------------------------------------------------------------------------


def test_the_scaled_object_targets_the_executors_down_to_zero_on_the_apis_figure(k8s: Rendered) -> None:
    config = k8s.config()
    scaled = k8s.one("ScaledObject", EXECUTOR)
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] == k8s.one("Deployment", EXECUTOR)["metadata"]["name"]
    assert spec.get("scaleTargetRef", {}).get("kind", "Deployment") == "Deployment"
    assert spec["minReplicaCount"] == 0 and spec["maxReplicaCount"] >= 1
    assert spec["cooldownPeriod"] >= 60 and spec["fallback"]["replicas"] >= 1
    [trigger] = spec["triggers"]
    assert trigger["type"] == "metrics-api"
    meta = trigger["metadata"]
    assert set(meta) <= METRICS_API_PARAMETERS, set(meta) - METRICS_API_PARAMETERS
    assert meta["format"] == "prometheus"
    assert float(meta["activationTargetValue"]) < 1, "one runnable job must wake the executors"
    assert int(meta["targetValue"]) == int(config["QUEUE_CONCURRENCY"]), "jobs per executor"
    # KEDA runs in its own namespace: the URL names the API Service with its namespace and the
    # Service port that leads to the API container's metrics port.
    url = urlsplit(meta["url"])
    host = str(url.hostname)
    service_name, namespace, *rest = host.split(".")
    assert (namespace, rest) == (scaled["metadata"]["namespace"], ["svc", "cluster", "local"])
    service = k8s.one("Service", service_name)
    [port] = [p for p in service["spec"]["ports"] if p["port"] == url.port]
    assert port["targetPort"] == "metrics" and url.path == "/metrics"
    api = k8s.container("Deployment", API)
    assert port_named(api, "metrics") == int(config["API_METRICS_PORT"])
    assert selects(
        {"matchLabels": service["spec"]["selector"]},
        k8s.one("Deployment", API)["spec"]["template"]["metadata"]["labels"],
    )
    assert meta["valueLocation"] == f'sentinel_queue_runnable_jobs{{queue="{config["SENTINEL_QUEUE"]}"}}'


# --- network policy --------------------------------------------------------------------------

NOT_PUBLIC = [
    "10.0.0.1",
    "10.255.255.254",
    "172.16.0.1",
    "172.31.255.1",
    "192.168.1.1",
    "127.0.0.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # CGNAT
    "0.0.0.1",
    "192.0.2.1",
    "198.18.0.1",
    "224.0.0.251",
    "255.255.255.255",
    "::1",
    "fd00::1",
    "fe80::1",
    "::ffff:10.0.0.1",
    "ff02::1",
]
PUBLIC = ["1.1.1.1", "8.8.8.8", "93.184.216.34", "2606:4700:4700::1111"]


def egress_allows(policy: Obj, address: str) -> bool:
    """Whether an ipBlock rule of `policy` lets traffic to `address` out (any port)."""
    ip = ipaddress.ip_address(address)
    for rule in policy["spec"]["egress"]:
        for peer in rule.get("to", []):
            block = peer.get("ipBlock")
            if block is None:
                continue
            network = ipaddress.ip_network(block["cidr"])
            if ip.version == network.version and ip in network:
                excepted = [ipaddress.ip_network(e) for e in block.get("except", [])]
                if not any(ip in e for e in excepted):
                    return True
    return False


def test_executors_may_reach_public_addresses_dns_and_redis_only(k8s: Rendered) -> None:
    """The policy refuses what the navigation guard refuses (its own test of an address), no public range."""
    [policy] = [p for p in k8s.all("NetworkPolicy") if "Egress" in p["spec"]["policyTypes"]]
    executor_labels = k8s.one("Deployment", EXECUTOR)["spec"]["template"]["metadata"]["labels"]
    assert selects(policy["spec"]["podSelector"], executor_labels)
    for address in NOT_PUBLIC:
        assert is_denied_address(ipaddress.ip_address(address)), f"the navigation guard lets {address} through"
        assert not egress_allows(policy, address), f"executors may reach {address}"
    for address in PUBLIC:
        assert egress_allows(policy, address), f"executors may not reach {address}"
    for block in (p["ipBlock"] for r in policy["spec"]["egress"] for p in r["to"] if "ipBlock" in p):
        for excepted in block["except"]:
            assert is_denied_address(ipaddress.ip_network(excepted)[0]), f"{excepted} is public: pages need it"
    rules = [r for r in policy["spec"]["egress"] if not any("ipBlock" in p for p in r["to"])]
    dns = [r for r in rules if {p["port"] for p in r["ports"]} == {53}]
    assert dns and {p["protocol"] for p in dns[0]["ports"]} == {"UDP", "TCP"}
    redis_labels = k8s.one("StatefulSet", REDIS)["spec"]["template"]["metadata"]["labels"]
    to_redis = [r for r in rules if any(selects(p.get("podSelector", {}), redis_labels) for p in r["to"])]
    redis_port = port_named(k8s.container("StatefulSet", REDIS), "redis")
    assert to_redis and [p["port"] for p in to_redis[0]["ports"]] == [redis_port]


def test_only_sentinels_pods_reach_redis(k8s: Rendered) -> None:
    [policy] = [p for p in k8s.all("NetworkPolicy") if p["spec"]["policyTypes"] == ["Ingress"]]
    assert selects(
        policy["spec"]["podSelector"], k8s.one("StatefulSet", REDIS)["spec"]["template"]["metadata"]["labels"]
    )
    [rule] = policy["spec"]["ingress"]
    for name in (API, EXECUTOR):
        labels = k8s.one("Deployment", name)["spec"]["template"]["metadata"]["labels"]
        assert any(selects(p["podSelector"], labels) for p in rule["from"]), name


# --- Redis -----------------------------------------------------------------------------------


def test_the_redis_url_names_the_redis_service(k8s: Rendered) -> None:
    url = urlsplit(k8s.config()["REDIS_URL"])
    service = k8s.one("Service", str(url.hostname))
    assert url.port in [p["port"] for p in service["spec"]["ports"]]
    assert k8s.one("StatefulSet", REDIS)["spec"]["serviceName"] == service["metadata"]["name"]


def test_the_redis_statefulset_runs_with_aof_and_noeviction_on_its_volume(k8s: Rendered, tmp_path: Path) -> None:
    """Its arguments, run on a local redis-server: what Redis reports back is what Sentinel needs."""
    statefulset = k8s.one("StatefulSet", REDIS)
    container = k8s.container("StatefulSet", REDIS)
    argv = [str(a) for a in container["args"]]
    [claim] = statefulset["spec"]["volumeClaimTemplates"]
    [mount] = [m for m in container["volumeMounts"] if m["name"] == claim["metadata"]["name"]]
    assert argv[argv.index("--dir") + 1] == mount["mountPath"], "AOF files on the persistent volume"
    assert claim["spec"]["resources"]["requests"]["storage"]
    assert shutil.which(argv[0]), "redis-server is required (make install)"
    port = free_port()
    local = [*argv, "--port", str(port), "--bind", "127.0.0.1"]
    local[local.index("--dir") + 1] = str(tmp_path)  # Redis changes into it as it reads the option
    process = subprocess.Popen(local, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import redis

        client = redis.Redis(port=port, decode_responses=True)

        def answers() -> bool:
            assert process.poll() is None, "redis-server exited with the StatefulSet's arguments"
            return bool(client.ping())

        wait_for_blocking(answers, within=15, what="redis-server to answer", ignoring=(redis.ConnectionError,))
        got = {name: client.config_get(name)[name] for name in ("appendonly", "appendfsync", "maxmemory-policy")}
        assert got == {"appendonly": "yes", "appendfsync": "everysec", "maxmemory-policy": "noeviction"}
        limit = gibibytes(container["resources"]["limits"]["memory"]) * 1024**3
        assert 0 < int(str(client.config_get("maxmemory")["maxmemory"])) < limit, (
            "Redis says OOM before the kernel kills it"
        )
        client.close()
    finally:
        process.terminate()
        process.wait(timeout=10)
