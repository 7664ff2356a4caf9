"""deploy/kubernetes: the kustomizations render (kubectl kustomize), every
built-in resource validates against the Kubernetes schemas of an older
and the newest release (kubernetes-validate bundles them: no cluster),
and the custom resources (PodMonitor, ScaledObject, TriggerAuthentication)
have the fields their operators require and point at what exists."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
MANIFESTS = REPO / "deploy" / "kubernetes"
KUBECTL = shutil.which("kubectl")
# The oldest Kubernetes release still served by the major clouds, and the
# newest the validator knows.
VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
CUSTOM_KINDS = {"PodMonitor", "ScaledObject", "TriggerAuthentication"}

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed (deploy/setup-debian.sh "
                                                         "installs it, for kubectl kustomize)")


def render(folder: Path) -> list[dict]:
    done = subprocess.run([KUBECTL, "kustomize", str(folder)], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def by_kind(docs: list[dict]) -> dict[str, dict]:
    return {doc["kind"]: doc for doc in docs}


@pytest.fixture(scope="module")
def base() -> dict[str, dict]:
    docs = render(MANIFESTS)
    assert sorted(d["kind"] for d in docs) == ["Deployment", "Service", "Service", "StatefulSet"]
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in docs}


@pytest.mark.parametrize("folder", [MANIFESTS, MANIFESTS / "monitoring", MANIFESTS / "keda"],
                         ids=["base", "monitoring", "keda"])
def test_every_built_in_resource_validates_against_the_kubernetes_schemas(folder):
    for doc in render(folder):
        if doc["kind"] in CUSTOM_KINDS:
            continue
        for version in VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)  # raises with the field at fault


def test_the_validator_refuses_a_field_kubernetes_does_not_have(base):
    broken = yaml.safe_load(yaml.safe_dump(base["StatefulSet/wwnode"]))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["pathh"] = "/healthz"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def node_container(base) -> dict:
    return base["StatefulSet/wwnode"]["spec"]["template"]["spec"]["containers"][0]


def test_the_nodes_are_a_statefulset_with_a_volume_each_and_their_pod_name_as_node_id(base):
    sts = base["StatefulSet/wwnode"]
    container = node_container(base)
    env = {e["name"]: e for e in container["env"]}
    assert env["NODE_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    claim = sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim] == env["DATA_DIR"]["value"] == "/data"
    # The URLs come from the Secret, never from the manifest.
    for name in ("RABBIT_MQ_URL", "REDIS_URL"):
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": "wwnode-servers", "key": name}
    # Governing Service: headless, on the same pods.
    service = base[f"Service/{sts['spec']['serviceName']}"]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == sts["spec"]["selector"]["matchLabels"]
    # Longer than the node's own stop (STOP_TIMEOUT, 20 s by default).
    assert sts["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > 20


def test_probes_ask_healthz_on_the_port_the_node_serves_it(base):
    container = node_container(base)
    env = {e["name"]: e.get("value") for e in container["env"]}
    port = {p["name"]: p["containerPort"] for p in container["ports"]}["metrics"]
    assert env["METRICS_ADDR"] == f"0.0.0.0:{port}"
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    # Liveness rides out the broker and Redis outages readiness reports
    # (docs/metrics.md): five minutes of them, not thirty s.
    live, ready = container["livenessProbe"], container["readinessProbe"]
    assert live["failureThreshold"] * live["periodSeconds"] >= 300
    assert ready["failureThreshold"] * ready["periodSeconds"] <= 60


def test_pods_run_as_the_images_user(base):
    uid = re.search(r"useradd [^\n]*--uid (\d+)", (REPO / "Dockerfile").read_text()).group(1)
    for name in ("StatefulSet/wwnode", "Deployment/wwnode-dashboard"):
        context = base[name]["spec"]["template"]["spec"]["securityContext"]
        assert context["runAsNonRoot"] is True and str(context["runAsUser"]) == uid


def test_the_dashboard_needs_its_token_from_the_secret(base):
    container = base["Deployment/wwnode-dashboard"]["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:3] == ["dashboard", "--host", "0.0.0.0"]
    env = {e["name"]: e for e in container["env"]}
    assert env["DASHBOARD_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "wwnode-servers", "key": "DASHBOARD_TOKEN"}


def test_the_podmonitor_scrapes_the_nodes_metrics_port(base):
    (monitor,) = render(MANIFESTS / "monitoring")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1" and monitor["kind"] == "PodMonitor"
    assert monitor["metadata"]["name"]
    labels = base["StatefulSet/wwnode"]["spec"]["template"]["metadata"]["labels"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()
    port_names = {p["name"] for p in node_container(base)["ports"]}
    endpoints = monitor["spec"]["podMetricsEndpoints"]
    assert endpoints and all(e["port"] in port_names and e["path"] == "/metrics" for e in endpoints)


def test_keda_scales_the_statefulset_up_on_create_instance_and_never_down(base):
    kinds = by_kind(render(MANIFESTS / "keda"))
    scaled, auth = kinds["ScaledObject"], kinds["TriggerAuthentication"]
    assert scaled["apiVersion"] == auth["apiVersion"] == "keda.sh/v1alpha1"
    target = scaled["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("StatefulSet", "wwnode") and "StatefulSet/wwnode" in base
    behavior = scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"] == {"selectPolicy": "Disabled"}
    assert scaled["spec"]["minReplicaCount"] >= 1
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "rabbitmq"
    assert trigger["metadata"]["queueName"] == "create_instance" and trigger["metadata"]["mode"] == "QueueLength"
    assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
    (secret_ref,) = auth["spec"]["secretTargetRef"]
    assert secret_ref == {"parameter": "host", "name": "wwnode-servers", "key": "RABBIT_MQ_URL"}
