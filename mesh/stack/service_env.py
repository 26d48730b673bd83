"""What the stack tells each service through its environment: where to listen and where everything is.

This is the contract between ``ragmesh up`` and the services' ``Config.from_env()``:

- ``RAGMESH_<DOMAIN>_HOST`` / ``RAGMESH_<DOMAIN>_PORT``: where service ``svc_<domain>`` listens;
- ``RAGMESH_<DOMAIN>_METRICS_PORT``: where it serves Prometheus ``/metrics`` (on the same host);
- ``RAGMESH_<DOMAIN>_ADDR``: ``host:port`` of every service, for the clients between them, and
  ``RAGMESH_EDGE_ADDR`` for the Envoy edge (the names ``mesh.settings.MeshSettings`` reads);
- ``RAGMESH_POSTGRES_DSN``, ``RAGMESH_REDIS_URL``, ``RAGMESH_NEO4J_URI`` / ``_USER`` / ``_PASSWORD``,
  ``RAGMESH_RAY_ADDRESS``: the stores and the Ray head;
- ``RAY_ADDRESS``, ``RAY_AUTH_MODE=token``, ``RAY_AUTH_TOKEN_PATH``: what ``ray.init()`` reads to join
  the head with its token;
- ``RAGMESH_HOME``: the stack's home, for services that keep local files (embedded shards);
- ``RAGMESH_OTEL_ENDPOINT``: the jaeger part's OTLP/gRPC address when tracing is on (absent: spans are
  made, so trace ids reach logs and callers, but not exported), ``RAGMESH_OTEL_SAMPLE_RATIO`` (1: every
  request is recorded; which traces are kept is the collector's decision, ``mesh.stack.jaeger_config``);
- ``RAGMESH_AUTH_JWKS_FILE`` / ``_ISSUER`` / ``_AUDIENCE`` / ``_INTERNAL_AUDIENCE`` / ``_CLOCK_SKEW_S``:
  how every caller's token is verified, and ``RAGMESH_AUTH_SERVICE_TOKEN_FILE``: the service's own token.
"""

from __future__ import annotations

from mesh.stack.binaries import jaeger_installed
from mesh.stack.config import SERVICE_NAMES, StackConfig
from mesh.stack.layout import StackLayout


def domain_of(service: str) -> str:
    """``svc_retrieval`` -> ``RETRIEVAL``."""
    return service.removeprefix("svc_").upper()


def ray_client_env(config: StackConfig, layout: StackLayout) -> dict[str, str]:
    """Environment that lets a Ray client (``ray.init``, the ``ray`` CLI) join this stack's head."""
    return {
        "RAY_ADDRESS": f"{config.host}:{config.ray_gcs_port}",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(layout.ray_token_file),
        "RAY_USAGE_STATS_ENABLED": "0",
    }


def otlp_endpoint(config: StackConfig) -> str:
    """Where this stack's parts export spans (``host:port`` of the jaeger part); empty when tracing is off.

    Tracing is on when it is configured (``tracing``, jaeger among ``parts``) and the Jaeger
    binary is built: a machine without it runs the stack untraced rather than not at all.
    """
    if not config.tracing or "jaeger" not in config.parts or not jaeger_installed(config.go_home):
        return ""
    return f"{config.host}:{config.jaeger_otlp_grpc_port}"


def tracing_env(config: StackConfig) -> dict[str, str]:
    """The tracing settings (``mesh.telemetry.TracingSettings``) every process of the stack gets."""
    # Record everything at the head: the jaeger part samples whole traces (jaeger_config.tail_sampling),
    # which keeps the failed and slow ones that a head ratio would mostly throw away.
    env = {"RAGMESH_OTEL_SAMPLE_RATIO": "1.0"}
    endpoint = otlp_endpoint(config)
    if endpoint:
        env["RAGMESH_OTEL_ENDPOINT"] = endpoint
    return env


def store_env(config: StackConfig, layout: StackLayout) -> dict[str, str]:
    """Addresses of the stores and of every service (the same for every service)."""
    host = config.host
    env = {
        "RAGMESH_HOME": str(layout.home),
        "RAGMESH_EDGE_ADDR": f"{host}:{config.envoy_listener_port}",
        "RAGMESH_POSTGRES_DSN": (
            f"postgresql://{config.postgres_user}:{config.postgres_password}"
            f"@{host}:{config.postgres_port}/{config.postgres_database}"
        ),
        "RAGMESH_REDIS_URL": f"redis://{host}:{config.redis_port}/0",
        "RAGMESH_NEO4J_URI": f"bolt://{host}:{config.neo4j_bolt_port}",
        "RAGMESH_NEO4J_USER": config.neo4j_user,
        "RAGMESH_NEO4J_PASSWORD": config.neo4j_password,
        "RAGMESH_RAY_ADDRESS": f"{host}:{config.ray_gcs_port}",
        "RAGMESH_AUTH_JWKS_FILE": str(layout.jwks_file),
        "RAGMESH_AUTH_ISSUER": config.auth_issuer,
        "RAGMESH_AUTH_AUDIENCE": config.auth_audience,
        "RAGMESH_AUTH_INTERNAL_AUDIENCE": config.auth_internal_audience,
        "RAGMESH_AUTH_CLOCK_SKEW_S": str(config.auth_clock_skew_s),
    }
    for service in SERVICE_NAMES:
        env[f"RAGMESH_{domain_of(service)}_ADDR"] = f"{host}:{config.service_port(service)}"
    env.update(ray_client_env(config, layout))
    env.update(tracing_env(config))
    return env


def service_env(config: StackConfig, layout: StackLayout, service: str) -> dict[str, str]:
    """The variables ``ragmesh up`` sets for ``service`` on top of the caller's environment."""
    env = store_env(config, layout)
    domain = domain_of(service)
    env[f"RAGMESH_{domain}_HOST"] = config.host
    env[f"RAGMESH_{domain}_PORT"] = str(config.service_port(service))
    env[f"RAGMESH_{domain}_METRICS_PORT"] = str(config.metrics_port(service))
    env["RAGMESH_AUTH_SERVICE_TOKEN_FILE"] = str(layout.service_token_file(service))
    return env
