"""Turns the service config into a running ModelRuntime: models loaded in-process or on Ray Serve."""

from __future__ import annotations

import asyncio

from svc_inference.config import Config, RayEnvironment
from svc_inference.domain.model_config import Profile, load_profile
from svc_inference.domain.runtime import ModelRuntime
from svc_inference.domain.sources import SourceSettings
from svc_inference.metrics import PrometheusObserver


def source_settings(config: Config) -> SourceSettings:
    """Where model files are found and cached, per the config."""
    return SourceSettings(model_root=config.model_root, cache_dir=config.cache_dir)


async def open_runtime(
    config: Config,
    ray_address: str,
    *,
    profile: Profile | None = None,
    ray_environment: RayEnvironment | None = None,
) -> ModelRuntime:
    """Loads (``inprocess``) or deploys/attaches (``serve``) every model of the profile; its reports become metrics."""
    runtime = await _open(config, ray_address, profile, ray_environment)
    runtime.observer = PrometheusObserver()
    return runtime


async def _open(
    config: Config, ray_address: str, profile: Profile | None, ray_environment: RayEnvironment | None
) -> ModelRuntime:
    profile = profile or load_profile(config.models_dir, config.profile)
    sources = source_settings(config)
    if config.hosting == "inprocess":
        from svc_inference.domain.inprocess import open_inprocess_runtime

        return await asyncio.wait_for(open_inprocess_runtime(profile, sources), config.startup_timeout_s)
    from svc_inference.serve.app import ServeOptions, open_serve_runtime
    from svc_inference.serve.cluster import RaySetup

    setup = RaySetup.from_config(config, ray_address, ray_environment or RayEnvironment.from_env())
    options = ServeOptions(
        app_prefix=config.serve_app_prefix, deploy=config.serve_deploy, startup_timeout_s=config.startup_timeout_s
    )
    return await open_serve_runtime(profile, sources, setup, options)
