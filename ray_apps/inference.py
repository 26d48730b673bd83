"""svc_inference's models as Serve applications that a RayService deploys by import path.

The local stack lets svc_inference deploy its own applications (``serve.run_many``);
on Kubernetes the RayService's ``serveConfigV2`` deploys them instead, and the service,
started with ``RAGMESH_INFERENCE_SERVE_DEPLOY=never``, attaches to them by name. Both
paths build the application with the same ``build_application`` from the same model
YAML, so a model's replicas, GPUs and placement are the same wherever it runs.

serveConfigV2 entry (kustomize/components/kuberay/rayservice-inference.yaml)::

    - name: ragmesh-inference-<model>       # svc_inference.serve.app.app_name(prefix, model)
      import_path: ray_apps.inference:build
      args: {profile: production, model: <model>, model_root: /models}

An embedder with ``document_serving`` has a second application, ``<model>-documents``
(svc_inference.serve.app.targets), built the same way with ``model: <model>-documents``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from svc_inference.config import MODELS_DIR
from svc_inference.domain.model_config import ModelConfigError, load_profile
from svc_inference.domain.sources import SourceSettings
from svc_inference.serve.app import Target, fingerprint, served_models, targets

DEFAULT_MODEL_ROOT = "/models"
DEFAULT_CACHE_DIR = "/tmp/ragmesh-models"
_KEYS = {"profile", "model", "model_root", "cache_dir"}


def served_model(profile_name: str, model: str) -> Target:
    """The deployment called ``model`` in ``profile_name``: a model's own, or an embedder's ``<model>-documents``."""
    profile = load_profile(MODELS_DIR, profile_name)
    served = {t.deployment: t for t in targets(served_models(profile))}
    if model not in served:
        raise ModelConfigError(f"profile {profile_name!r} serves no model {model!r} (it serves {sorted(served)})")
    return served[model]


def build(args: Mapping[str, Any]) -> Any:
    """The Serve application of one model: ``args`` are the serveConfigV2 entry's ``args``."""
    from svc_inference.serve.deployments import build_application

    unknown = sorted(set(args) - _KEYS)
    if unknown:
        raise ModelConfigError(f"unknown args {unknown}; expected some of {sorted(_KEYS)}")
    if "model" not in args:
        raise ModelConfigError("args.model is required: the model's name in the profile")
    target = served_model(str(args.get("profile", "production")), str(args["model"]))
    sources = SourceSettings(
        model_root=Path(str(args.get("model_root", DEFAULT_MODEL_ROOT))),
        cache_dir=Path(str(args.get("cache_dir", DEFAULT_CACHE_DIR))),
    )
    config = target.model
    return build_application(config, sources, fingerprint(config, sources), deployment=target.deployment)
