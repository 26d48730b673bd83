"""The RayService serves svc_inference's production profile, and its worker groups can host it.

Each serveConfigV2 application is built here with ray_apps.inference:build (no cluster
needed), and its replicas' resources are placed on the worker groups the way Ray's
scheduler would: a placement group with STRICT_PACK on one node, fractional GPUs packed.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from ray_apps.inference import build
from svc_inference.config import MODELS_DIR, Config
from svc_inference.domain.model_config import ModelConfigError, load_profile
from svc_inference.serve.app import app_name, served_models, targets


@pytest.fixture(scope="module")
def service(rendered_objects: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    (found,) = [o for o in rendered_objects["prod"] if o["kind"] == "RayService"]
    return found


def _applications(service: dict[str, Any]) -> list[dict[str, Any]]:
    apps: list[dict[str, Any]] = yaml.safe_load(service["spec"]["serveConfigV2"])["applications"]
    return apps


def _groups(service: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Worker group -> the Ray resources one of its nodes offers (from rayStartParams and the pod)."""
    out = {}
    for group in service["spec"]["rayClusterConfig"]["workerGroupSpecs"]:
        (container,) = group["template"]["spec"]["containers"]
        limits = container["resources"]["limits"]
        gpus = float(group["rayStartParams"].get("num-gpus", limits.get("nvidia.com/gpu", 0)))
        assert gpus == float(limits.get("nvidia.com/gpu", 0)), "num-gpus must match the pod's GPU limit"
        out[group["groupName"]] = {"CPU": float(limits["cpu"]), "GPU": gpus}
    return out


def test_applications_are_the_production_profile(service: dict[str, Any]) -> None:
    profile = load_profile(MODELS_DIR, "production")
    prefix = Config().serve_app_prefix
    apps = {a["name"]: a for a in _applications(service)}
    assert set(apps) == {app_name(prefix, t.deployment) for t in targets(served_models(profile))}
    for app in apps.values():
        assert app["import_path"] == "ray_apps.inference:build"
        assert app["name"] == app_name(prefix, app["args"]["model"])
    assert len({a["route_prefix"] for a in apps.values()}) == len(apps)


def test_the_service_attaches_instead_of_deploying(rendered_objects: dict[str, list[dict[str, Any]]]) -> None:
    (config_map,) = [
        o
        for o in rendered_objects["prod"]
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("svc-inference-config")
    ]
    config = Config.from_env(config_map["data"])
    assert (config.hosting, config.serve_deploy, config.profile) == ("serve", "never", "production")
    assert config_map["data"]["RAGMESH_RAY_ADDRESS"] == "ragmesh-inference-head-svc:6379"


def test_every_replica_fits_a_worker_group(service: dict[str, Any]) -> None:
    groups = _groups(service)
    assert all(g["GPU"] > 0 for g in groups.values())
    gpu_4x = service["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    assert gpu_4x["groupName"] == "gpu-4x" and gpu_4x["minReplicas"] == 0
    shared_gpu: list[float] = []
    for app in _applications(service):
        deployment: Any = build(app["args"])._bound_deployment
        bundles = deployment._replica_config.placement_group_bundles
        options = deployment.ray_actor_options
        if bundles:
            # STRICT_PACK: every bundle of one replica on one node.
            need = {k: sum(float(b.get(k, 0)) for b in bundles) for k in ("CPU", "GPU")}
        else:
            need = {"CPU": float(options.get("num_cpus", 1)), "GPU": float(options.get("num_gpus", 0))}
        fits = [name for name, offer in groups.items() if all(need[k] <= offer[k] for k in need)]
        assert fits, f"{app['name']} needs {need}; groups offer {groups}"
        if 0 < need["GPU"] < 1:
            shared_gpu.append(need["GPU"])
    # bge-m3 and the reranker share one GPU.
    assert sorted(shared_gpu) == [0.5, 0.5] and sum(shared_gpu) <= 1


def test_the_70b_model_runs_tensor_parallel_over_four_gpus(service: dict[str, Any]) -> None:
    (app,) = [a for a in _applications(service) if a["args"]["model"] == "llama3-70b-instruct"]
    deployment: Any = build(app["args"])._bound_deployment
    bundles = deployment._replica_config.placement_group_bundles
    assert sum(b.get("GPU", 0) for b in bundles) == 4
    assert deployment._replica_config.placement_group_strategy == "STRICT_PACK"


def test_the_builder_refuses_unknown_models_and_args() -> None:
    with pytest.raises(ModelConfigError, match="serves no model"):
        build({"profile": "production", "model": "gpt-9"})
    with pytest.raises(ModelConfigError, match="unknown args"):
        build({"profile": "production", "model": "bge-m3", "gpus": 2})
    with pytest.raises(ModelConfigError, match="required"):
        build({"profile": "production"})
