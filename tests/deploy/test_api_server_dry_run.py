"""Every overlay applied to a real kube-apiserver (built from source) with server-side dry-run.

The server validates each object against its real schema, including the CRDs of KubeRay,
Karpenter (NodePool, EC2NodeClass), External Secrets and the Prometheus Operator with
their CEL rules, with strict field validation (an unknown or misspelled field fails).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from tests.deploy.kube import OVERLAYS, KubeAPI

pytestmark = pytest.mark.slow


def _apply_dry_run(api: KubeAPI, text: str) -> Any:
    return api.kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "--validate=strict",
        "--field-manager=ragmesh-test",
        "-f",
        "-",
        stdin=text,
    )


@pytest.fixture(scope="module")
def namespaced_api(kube_api: KubeAPI) -> KubeAPI:
    # Namespaced objects are only dry-run into a namespace that exists.
    done = kube_api.kubectl("create", "namespace", "ragmesh")
    assert done.returncode == 0 or "AlreadyExists" in done.stderr, done.stderr
    return kube_api


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_is_accepted_by_the_api_server(namespaced_api: KubeAPI, rendered: dict[str, str], overlay: str) -> None:
    done = _apply_dry_run(namespaced_api, rendered[overlay])
    assert done.returncode == 0, f"{overlay}:\n{done.stderr}"
    applied = [line for line in done.stdout.splitlines() if "(server dry run)" in line]
    assert len(applied) == len([d for d in yaml.safe_load_all(rendered[overlay]) if d]), done.stdout


def test_every_crd_kind_used_is_served(namespaced_api: KubeAPI) -> None:
    done = namespaced_api.kubectl("api-resources", "-o", "name")
    assert done.returncode == 0, done.stderr
    served = set(done.stdout.split())
    for resource in (
        "rayservices.ray.io",
        "rayclusters.ray.io",
        "nodepools.karpenter.sh",
        "ec2nodeclasses.karpenter.k8s.aws",
        "externalsecrets.external-secrets.io",
        "secretstores.external-secrets.io",
        "servicemonitors.monitoring.coreos.com",
        "prometheusrules.monitoring.coreos.com",
    ):
        assert resource in served


@pytest.mark.parametrize(
    ("field", "value"),
    [("maxReplica", 3), ("minReplicas", "zero")],
    ids=["misspelled-field", "wrong-type"],
)
def test_the_server_rejects_a_broken_rayservice(
    namespaced_api: KubeAPI, rendered_objects: dict[str, Any], field: str, value: object
) -> None:
    """The dry run can fail: a worker group with a field not in the CRD, or of the wrong type, is refused."""
    (service,) = [copy.deepcopy(o) for o in rendered_objects["prod"] if o["kind"] == "RayService"]
    service["spec"]["rayClusterConfig"]["workerGroupSpecs"][0][field] = value
    done = _apply_dry_run(namespaced_api, yaml.safe_dump(service))
    assert done.returncode != 0
    assert field in done.stderr, done.stderr


def test_the_server_rejects_a_nodepool_breaking_a_cel_rule(
    namespaced_api: KubeAPI, rendered_objects: dict[str, Any]
) -> None:
    """Karpenter's CEL validation runs: a budget with a schedule but no duration is refused."""
    pool = copy.deepcopy(
        next(o for o in rendered_objects["prod"] if o["kind"] == "NodePool" and o["metadata"]["name"] == "gpu")
    )
    pool["spec"]["disruption"]["budgets"] = [{"nodes": "1", "schedule": "0 8 * * mon-fri"}]
    done = _apply_dry_run(namespaced_api, yaml.safe_dump(pool))
    assert done.returncode != 0
    assert "duration" in done.stderr.lower() or "schedule" in done.stderr.lower(), done.stderr
