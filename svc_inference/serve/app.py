"""The Ray Serve side of the service: one application per model, deployed or attached at start.

Applications are named ``<prefix>-<model>`` and hold one deployment named after
the model. With ``serve_deploy: auto`` a running application is reused when its
replicas report the fingerprint of the same model config and the same code, so
restarting the service does not restart the models; anything else is
(re)deployed. The HTTP proxy is off: the service reaches models through
DeploymentHandles only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from svc_inference.domain.endpoints import CosineReranker, EmbedderEndpoint, LLMEndpoint, RerankerEndpoint
from svc_inference.domain.model import ModelInfo
from svc_inference.domain.model_config import EmbedderConfig, LLMConfig, ModelConfig, Profile, RerankerConfig
from svc_inference.domain.runtime import Defaults, ModelRuntime
from svc_inference.domain.sources import SourceSettings
from svc_inference.serve.cluster import RayConnection, RaySetup, connect
from svc_inference.serve.endpoints import ServeEmbedder, ServeLLM, ServeReranker, interactive_capacity

log = logging.getLogger(__name__)

_PACKAGE_DIR = Path(__file__).resolve().parent.parent
_FINGERPRINT_TIMEOUT_S = 30.0


@dataclasses.dataclass(frozen=True)
class ServeOptions:
    """How the service treats the Serve applications of its models."""

    app_prefix: str = "ragmesh-inference"
    deploy: str = "auto"
    """``auto``, ``always`` or ``never`` (see svc_inference.config.Config.serve_deploy)."""
    startup_timeout_s: float = 900.0


def app_name(prefix: str, model: str) -> str:
    """The Serve application that holds ``model``'s deployment."""
    return f"{prefix}-{model}"


@functools.cache
def code_digest() -> str:
    """A digest of the code that runs in replicas (the domain and serve packages)."""
    digest = hashlib.sha256()
    for path in sorted([*_PACKAGE_DIR.glob("domain/*.py"), *_PACKAGE_DIR.glob("serve/*.py")]):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def fingerprint(config: ModelConfig, sources: SourceSettings) -> str:
    """What a replica must report for the service to reuse it: its config, file locations and code."""
    digest = hashlib.sha256()
    digest.update(repr(config).encode())
    digest.update(repr(sources).encode())
    digest.update(code_digest().encode())
    return digest.hexdigest()[:32]


def served_models(profile: Profile) -> list[ModelConfig]:
    """The models that get a deployment (cosine rerankers are answered by their embedder's)."""
    return [m for m in profile.models() if not (isinstance(m, RerankerConfig) and m.backend == "embedding-cosine")]


DOCUMENTS_SUFFIX = "-documents"
"""Appended to an embedder's deployment (and application) name for its batch-only deployment."""


@dataclasses.dataclass(frozen=True)
class Target:
    """One Serve application: the deployment of a model, or an embedder's batch-only deployment."""

    model: ModelConfig
    """The model's config, its ``serving`` being the options this deployment runs with."""
    deployment: str
    """Deployment name (the model's name, plus DOCUMENTS_SUFFIX for a batch-only one)."""


def targets(models: Sequence[ModelConfig]) -> list[Target]:
    """Every deployment the models need: one each, and a second one for embedders with document_serving."""
    out: list[Target] = []
    for model in models:
        out.append(Target(model, model.name))
        if isinstance(model, EmbedderConfig) and model.document_serving is not None:
            documents = dataclasses.replace(model, serving=model.document_serving, document_serving=None)
            out.append(Target(documents, model.name + DOCUMENTS_SUFFIX))
    return out


async def open_serve_runtime(
    profile: Profile, sources: SourceSettings, setup: RaySetup, options: ServeOptions
) -> ModelRuntime:
    """Joins Ray, makes sure every model's application runs, and returns handle-backed endpoints."""
    # On the main thread, like the shutdown: nothing else runs yet, and Ray keeps its threads to itself.
    connection = connect(setup)
    try:
        return await asyncio.wait_for(_open(profile, sources, options, connection), options.startup_timeout_s)
    except BaseException:
        connection.close()
        raise


async def _open(
    profile: Profile, sources: SourceSettings, options: ServeOptions, connection: RayConnection
) -> ModelRuntime:
    from ray import serve

    await asyncio.to_thread(serve.start, proxy_location="Disabled")
    models = served_models(profile)
    deployments = targets(models)
    prints = {t.deployment: fingerprint(t.model, sources) for t in deployments}
    stale = await asyncio.to_thread(_stale, deployments, prints, options)
    if stale:
        log.info("deploying models on Ray Serve", extra={"fields": {"deployments": [t.deployment for t in stale]}})
        await asyncio.to_thread(_deploy, stale, sources, prints, options.app_prefix)
    handles = {
        t.deployment: await asyncio.to_thread(
            serve.get_deployment_handle, t.deployment, app_name(options.app_prefix, t.deployment)
        )
        for t in deployments
    }
    infos: dict[str, ModelInfo] = {}
    for model in models:
        infos[model.name] = await handles[model.name].info.remote()
    llms: dict[str, LLMEndpoint] = {}
    embedders: dict[str, EmbedderEndpoint] = {}
    rerankers: dict[str, RerankerEndpoint] = {}
    for model in models:
        handle, info = handles[model.name], infos[model.name]
        if isinstance(model, LLMConfig):
            llms[model.name] = ServeLLM(handle, info)
        elif isinstance(model, EmbedderConfig):
            embedders[model.name] = ServeEmbedder(
                handle, info, handles.get(model.name + DOCUMENTS_SUFFIX), max_interactive=interactive_capacity(model)
            )
        else:
            rerankers[model.name] = ServeReranker(handle, info)
    for reranker in profile.rerankers:
        if reranker.backend == "embedding-cosine":
            rerankers[reranker.name] = CosineReranker(reranker, embedders[reranker.embedder])

    async def disconnect() -> None:
        # On the main thread: Ray's shutdown tears down its own threads and must not run on one of them.
        connection.close()

    return ModelRuntime(
        llms=llms,
        embedders=embedders,
        rerankers=rerankers,
        defaults=Defaults(profile.default_llm, profile.default_embedder, profile.default_reranker),
        on_close=[disconnect],
    )


def _stale(deployments: Sequence[Target], prints: dict[str, str], options: ServeOptions) -> list[Target]:
    from ray import serve

    if options.deploy == "always":
        return list(deployments)
    running = {name for name, app in serve.status().applications.items() if app.status == "RUNNING"}
    stale: list[Target] = []
    for target in deployments:
        name = app_name(options.app_prefix, target.deployment)
        if name not in running:
            if options.deploy == "never":
                raise RuntimeError(f"Serve application {name} is not running and serve_deploy is never")
            stale.append(target)
            continue
        if options.deploy == "never":
            continue
        handle: Any = serve.get_deployment_handle(target.deployment, name)
        try:
            reported = handle.fingerprint.remote().result(timeout_s=_FINGERPRINT_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - an app we cannot ask is an app to redeploy
            log.warning("cannot read the fingerprint of %s (%s); redeploying it", name, exc)
            reported = None
        if reported != prints[target.deployment]:
            stale.append(target)
    return stale


def _deploy(deployments: Sequence[Target], sources: SourceSettings, prints: dict[str, str], prefix: str) -> None:
    from ray import serve

    from svc_inference.serve.deployments import build_application

    serve.run_many(
        [
            serve.RunTarget(
                target=build_application(t.model, sources, prints[t.deployment], deployment=t.deployment),
                name=app_name(prefix, t.deployment),
                route_prefix=None,
            )
            for t in deployments
        ],
        wait_for_applications_running=True,
    )
