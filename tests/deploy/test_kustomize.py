"""The kustomize tree: every overlay and component mix builds, and what it renders keeps the rules.

Rules: each service has a Service port named grpc, native gRPC probes on it, a locked-down
security context, requests and limits, a PodDisruptionBudget, an HPA when stateless, a
termination grace longer than the server's own, and a ConfigMap whose every RAGMESH_*
key is a setting the service reads and whose values its Config accepts.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest

from mesh.config import EnvConfig
from mesh.server import ServerConfig
from mesh.settings import MeshSettings
from mesh.telemetry import TracingSettings
from svc_agent.config import Config as AgentConfig
from svc_inference.config import Config as InferenceConfig
from svc_ingest.config import Config as IngestConfig
from svc_retrieval.config import Config as RetrievalConfig
from svc_sandbox.config import Config as SandboxConfig
from tests.deploy.kube import COMPONENTS, KUSTOMIZE, OVERLAYS, documents, kustomize_build, pod_specs

SERVICES: dict[str, tuple[type[EnvConfig], ...]] = {
    "svc-inference": (InferenceConfig,),
    "svc-retrieval": (RetrievalConfig,),
    "svc-ingest": (IngestConfig,),
    "svc-sandbox": (SandboxConfig,),
    "svc-agent": (AgentConfig,),
}
STATEFUL = {"svc-ingest"}


def _of(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def _one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = _of(objects, kind, name)
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def _config_map(objects: list[dict[str, Any]], prefix: str) -> dict[str, str]:
    """The data of the generated ConfigMap whose name is ``prefix`` plus kustomize's hash suffix."""
    found = [o for o in _of(objects, "ConfigMap") if o["metadata"]["name"].rsplit("-", 1)[0] == prefix]
    assert len(found) == 1, prefix
    data: dict[str, str] = found[0]["data"]
    return data


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels, matchExpressions) selects ``labels``."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if (op == "In" and labels.get(key) not in values) or (op == "NotIn" and labels.get(key) in values):
            return False
        if (op == "Exists" and key not in labels) or (op == "DoesNotExist" and key in labels):
            return False
    return True


def _mix(tmp_path: Path, components: list[str]) -> str:
    """Builds the base plus ``components`` from a throwaway kustomization (paths relative to it)."""
    rel = os.path.relpath(KUSTOMIZE, tmp_path)
    lines = [
        "apiVersion: kustomize.config.k8s.io/v1beta1",
        "kind: Kustomization",
        "resources:",
        f"  - {rel}/base",
        "components:",
        *[f"  - {rel}/components/{c}" for c in components],
    ]
    (tmp_path / "kustomization.yaml").write_text("\n".join(lines) + "\n")
    return kustomize_build(tmp_path)


@pytest.mark.parametrize("components", [[c] for c in COMPONENTS] + [list(COMPONENTS)], ids=[*COMPONENTS, "all"])
def test_each_component_builds_on_the_base(tmp_path: Path, components: list[str]) -> None:
    objects = documents(_mix(tmp_path, components))
    assert _of(objects, "Deployment", "svc-agent")


def test_the_cluster_kustomization_builds() -> None:
    kinds = sorted(o["kind"] for o in documents(kustomize_build(KUSTOMIZE / "cluster" / "karpenter")))
    assert kinds == ["EC2NodeClass"] * 3 + ["NodePool"] * 3


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", sorted(SERVICES))
def test_service_shape(rendered_objects: dict[str, list[dict[str, Any]]], overlay: str, service: str) -> None:
    objects = rendered_objects[overlay]
    deployment = _one(objects, "Deployment", service)
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    grpc_port = next(p["containerPort"] for p in container["ports"] if p["name"] == "grpc")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"] == {"port": grpc_port}, probe
    svc = _one(objects, "Service", service)
    assert any(p["name"] == "grpc" and p["port"] == grpc_port for p in svc["spec"]["ports"])
    assert _one(objects, "ServiceAccount", service)["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == service
    assert {c["topologyKey"] for c in pod["topologySpreadConstraints"]} == {
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
    }
    for need in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][need]), need
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert any(_matches(p["spec"]["selector"], labels) for p in _of(objects, "PodDisruptionBudget"))
    hpas = [h for h in _of(objects, "HorizontalPodAutoscaler") if h["spec"]["scaleTargetRef"]["name"] == service]
    assert len(hpas) == (0 if service in STATEFUL else 1)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_locked_down(rendered_objects: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    specs = list(pod_specs(rendered_objects[overlay]))
    assert specs
    for where, pod in specs:
        # Only Ray heads mount a token: their autoscaler asks the API server for workers.
        assert pod.get("automountServiceAccountToken") is where.endswith("/head"), where
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["seccompProfile"]["type"] in ("RuntimeDefault", "Localhost"), where
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in context["capabilities"], where
            assert not context.get("privileged", False), where
            # Neo4j's entrypoint writes its generated config into the image (see its StatefulSet).
            assert context["readOnlyRootFilesystem"] is (where != "StatefulSet/neo4j"), where
            assert container["resources"]["limits"]["memory"], where
            image = container["image"]
            assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), (
                f"{where}: {image} has no pinned tag"
            )


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", sorted(SERVICES))
def test_config_maps_are_settings_the_service_reads(
    rendered_objects: dict[str, list[dict[str, Any]]], overlay: str, service: str
) -> None:
    """Every key is a field of MeshSettings or of the service's Config, and Config.from_env accepts the values."""
    objects = rendered_objects[overlay]
    mesh = _config_map(objects, "ragmesh-mesh")
    own = _config_map(objects, f"{service}-config")
    known = {f"{MeshSettings.env_prefix}_{f.name.upper()}" for f in dataclasses.fields(MeshSettings)}
    known |= {f"{TracingSettings.env_prefix}_{f.name.upper()}" for f in dataclasses.fields(TracingSettings)}
    for cls in SERVICES[service]:
        known |= set(cls.env_names())
    unknown = sorted(k for k in {**mesh, **own} if k not in known)
    assert not unknown, f"{service} reads no setting named {unknown}"
    env = {**mesh, **own}
    MeshSettings.from_env(env)
    TracingSettings.from_env(env)
    configs = [cls.from_env(env) for cls in SERVICES[service]]
    server = configs[0]
    assert isinstance(server, ServerConfig)
    assert server.host == "0.0.0.0"
    assert server.metrics_port == 9090
    pod = _one(objects, "Deployment", service)["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > server.grace_s + 5


def test_mesh_addresses_name_the_services(rendered_objects: dict[str, list[dict[str, Any]]]) -> None:
    objects = rendered_objects["prod"]
    mesh = _config_map(objects, "ragmesh-mesh")
    for service in SERVICES:
        domain = service.removeprefix("svc-").upper()
        host, port = mesh[f"RAGMESH_{domain}_ADDR"].split(":")
        assert host == service
        assert any(
            p["port"] == int(port) and p["name"] == "grpc" for p in _one(objects, "Service", service)["spec"]["ports"]
        )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_sandbox_has_no_egress(rendered_objects: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    objects = rendered_objects[overlay]
    labels = _one(objects, "Deployment", "svc-sandbox")["spec"]["template"]["metadata"]["labels"]
    policies = [p for p in _of(objects, "NetworkPolicy") if _matches(p["spec"]["podSelector"], labels)]
    assert policies, "no NetworkPolicy selects the sandbox"
    assert any("Egress" in p["spec"]["policyTypes"] for p in policies)
    for policy in policies:
        assert not policy["spec"].get("egress"), f"{policy['metadata']['name']} lets the sandbox send traffic"
    default = _one(objects, "NetworkPolicy", "default-deny")["spec"]
    assert default["podSelector"] == {} and set(default["policyTypes"]) == {"Ingress", "Egress"}


def test_stores_are_statefulsets_with_storage_and_anti_affinity(
    rendered_objects: dict[str, list[dict[str, Any]]],
) -> None:
    objects = rendered_objects["prod"]
    for name in ("qdrant", "neo4j"):
        store = _one(objects, "StatefulSet", name)
        (claim,) = store["spec"]["volumeClaimTemplates"]
        assert claim["spec"]["storageClassName"] == "ragmesh-gp3"
        assert store["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert _one(objects, "StatefulSet", "qdrant")["spec"]["replicas"] == 3
    assert _one(objects, "StorageClass", "ragmesh-gp3")["parameters"]["encrypted"] == "true"
    # Postgres and Redis are terraform's in prod, pods only in dev.
    assert not _of(objects, "StatefulSet", "postgres") and _of(rendered_objects["dev"], "StatefulSet", "postgres")


def test_prod_takes_terraform_outputs(rendered_objects: dict[str, list[dict[str, Any]]]) -> None:
    objects = rendered_objects["prod"]
    outputs = _one(objects, "ConfigMap", "terraform-outputs")["data"]
    ingest = _one(objects, "ServiceAccount", "svc-ingest")["metadata"]["annotations"]
    assert ingest["eks.amazonaws.com/role-arn"] == outputs["ingest_role_arn"]
    for node_class in _of(objects, "EC2NodeClass"):
        assert node_class["spec"]["role"] == outputs["karpenter_node_role_name"]
        assert node_class["spec"]["subnetSelectorTerms"][0]["tags"]["karpenter.sh/discovery"] == outputs["cluster_name"]
    for obj in objects:
        if obj["kind"] in ("NodePool", "EC2NodeClass", "RuntimeClass", "StorageClass", "Namespace"):
            assert "namespace" not in obj["metadata"], f"cluster-scoped {obj['kind']} given a namespace"


def test_the_sandbox_node_profile_is_the_components_profile() -> None:
    import json

    import yaml

    profile = json.loads((KUSTOMIZE / "components/sandbox-hardening/profiles/ragmesh-sandbox.json").read_text())
    node_class = yaml.safe_load((KUSTOMIZE / "cluster/karpenter/ec2nodeclass-sandbox.yaml").read_text())
    user_data = node_class["spec"]["userData"]
    embedded = user_data.split("<<'PROFILE'\n", 1)[1].split("\nPROFILE", 1)[0]
    assert json.loads(embedded) == profile
    # bubblewrap needs the namespace calls; the profile must not refuse them.
    denied = set(profile["syscalls"][0]["names"])
    assert not denied & {"unshare", "clone", "clone3", "mount", "pivot_root", "sethostname", "setns"}
    assert {"kexec_load", "init_module", "bpf", "ptrace"} <= denied


def _secret_key_refs(objects: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(secret, key) of every secretKeyRef and every item of a secret volume in the pod templates."""
    refs = set()
    for _, pod in pod_specs(objects):
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    refs.add((ref["name"], ref["key"]))
        for volume in pod.get("volumes", []):
            secret = volume.get("secret")
            if secret:
                assert secret.get("items"), f"secret volume {volume['name']} must name the keys it mounts"
                refs |= {(secret["secretName"], item["key"]) for item in secret["items"]}
    return refs


def test_prod_secrets_come_from_external_secrets(rendered_objects: dict[str, list[dict[str, Any]]]) -> None:
    objects = rendered_objects["prod"]
    provided: dict[str, set[str]] = {}
    for external in _of(objects, "ExternalSecret"):
        target = external["spec"]["target"]
        keys = set(target.get("template", {}).get("data", {})) or {d["secretKey"] for d in external["spec"]["data"]}
        provided[target["name"]] = keys
    refs = _secret_key_refs(objects)
    assert refs
    for secret, key in refs:
        assert key in provided.get(secret, set()), f"prod pods read {secret}/{key}, which no ExternalSecret writes"
    # envFrom: the services read the whole store-credentials Secret as RAGMESH_* settings.
    known = {f"{MeshSettings.env_prefix}_{f.name.upper()}" for f in dataclasses.fields(MeshSettings)}
    assert provided["ragmesh-store-credentials"] <= known


def test_the_dev_secret_command_makes_every_key_dev_reads(rendered_objects: dict[str, list[dict[str, Any]]]) -> None:
    """docs/DEPLOY.md's `kubectl create secret` for dev holds every key the dev pods read."""
    import re

    docs = (KUSTOMIZE.parent / "docs" / "DEPLOY.md").read_text()
    dev = docs[docs.index("## A development cluster") :]
    created: dict[str, set[str]] = {}
    for match in re.finditer(r"create secret generic (\S+)((?:.|\n)*?)(?:\n\S|\n\n)", dev):
        literals = re.findall(r"--from-literal=([A-Za-z0-9_.-]+)=", match.group(2))
        files = re.findall(r"--from-file=([A-Za-z0-9_.-]+)", match.group(2))
        created[match.group(1)] = {*literals, *files}
    assert set(created) == {"ragmesh-store-credentials", "ragmesh-ratelimit-redis", "ragmesh-jwt-signing-key"}
    for secret, key in _secret_key_refs(rendered_objects["dev"]):
        assert key in created.get(secret, set()), (
            f"dev pods read {secret}/{key}, which the documented commands do not create"
        )
    created_keys = created["ragmesh-store-credentials"]
    known = {f"{MeshSettings.env_prefix}_{f.name.upper()}" for f in dataclasses.fields(MeshSettings)}
    assert {k for k in created_keys if k.startswith("RAGMESH_")} <= known


def test_only_gpu_pods_tolerate_the_gpu_taint(rendered_objects: dict[str, list[dict[str, Any]]]) -> None:
    (pool,) = _of(rendered_objects["prod"], "NodePool", "gpu")
    (taint,) = pool["spec"]["template"]["spec"]["taints"]
    gpu_pods = 0
    for where, pod in pod_specs(rendered_objects["prod"]):
        wants_gpu = any("nvidia.com/gpu" in c["resources"].get("limits", {}) for c in pod["containers"])
        tolerates = any(t["key"] == taint["key"] for t in pod.get("tolerations", []))
        assert wants_gpu == tolerates, f"{where}: asks for a GPU {wants_gpu}, tolerates the GPU taint {tolerates}"
        if wants_gpu:
            gpu_pods += 1
            assert pod["nodeSelector"] == {"karpenter.sh/nodepool": "gpu"}, where
    assert gpu_pods == 2
