"""docker/Dockerfile: every path it names exists, every target runs as a non-root user, the
manifests' images are its targets, and the health check really asks gRPC health.

No container engine is on these machines, so the images are not built here; this checks
what a build would need from the tree.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import subprocess
import sys
from typing import Any

import pytest

from tests.deploy.kube import REPO, pod_specs

DOCKERFILE = REPO / "docker" / "Dockerfile"


@dataclasses.dataclass
class Stage:
    name: str
    parent: str
    instructions: list[tuple[str, str]] = dataclasses.field(default_factory=list)


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def _stages() -> dict[str, Stage]:
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for keyword, rest in _instructions(DOCKERFILE.read_text()):
        if keyword == "FROM":
            parts = rest.split()
            current = Stage(
                name=parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else parts[0], parent=parts[0]
            )
            stages[current.name] = current
        elif current is not None:
            current.instructions.append((keyword, rest))
    return stages


def _chain(stages: dict[str, Stage], name: str) -> list[Stage]:
    """The stage and its ancestors among the file's stages, base first."""
    chain = []
    while name in stages:
        chain.append(stages[name])
        name = stages[name].parent
    return chain[::-1]


def _copy_sources(rest: str) -> tuple[str | None, list[str]]:
    words = shlex.split(rest)
    source_stage = next((w.split("=", 1)[1] for w in words if w.startswith("--from=")), None)
    paths = [w for w in words if not w.startswith("--")]
    return source_stage, paths[:-1]


TARGETS = ("svc-inference", "svc-inference-gpu", "svc-retrieval", "svc-ingest", "svc-sandbox", "svc-agent")


def test_every_copy_source_exists_and_every_stage_is_defined() -> None:
    stages = _stages()
    for stage in stages.values():
        for keyword, rest in stage.instructions:
            if keyword != "COPY":
                continue
            source_stage, sources = _copy_sources(rest)
            if source_stage is not None:
                assert source_stage in stages, f"{stage.name}: COPY --from={source_stage} names no stage"
                continue
            for source in sources:
                assert (REPO / source).exists(), f"{stage.name}: COPY {source} is not in the tree"


@pytest.mark.parametrize("target", TARGETS)
def test_target_runs_its_service_as_non_root(target: str) -> None:
    stages = _stages()
    assert target in stages
    chain = _chain(stages, target)
    users = [rest for s in chain for k, rest in s.instructions if k == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), f"{target} runs as {users[-1:]}"
    entrypoints = [json.loads(rest) for s in chain for k, rest in s.instructions if k == "ENTRYPOINT"]
    assert entrypoints[-1][:2] == ["python", "-m"]
    module = entrypoints[-1][2]
    assert module == target.removesuffix("-gpu").replace("-", "_")
    assert (REPO / module / "__main__.py").is_file()
    healthchecks = [rest for s in chain for k, rest in s.instructions if k == "HEALTHCHECK"]
    assert healthchecks and "/app/docker/healthcheck.py" in healthchecks[-1]
    port = [rest for s in chain for k, rest in s.instructions if k == "ENV" and "RAGMESH_HEALTH_PORT=" in rest][-1]
    assert port.split("=", 1)[1].split()[0].isdigit()


def test_no_build_tools_in_runtime_stages() -> None:
    stages = _stages()
    for target in TARGETS:
        for stage in _chain(stages, target):
            if stage.name.startswith("build"):
                pytest.fail(f"{target} is built FROM the build stage {stage.name}")
            for keyword, rest in stage.instructions:
                if keyword == "RUN":
                    assert not any(tool in rest for tool in ("build-essential", "cmake", "gcc", " uv ")), (
                        f"{target}: {rest}"
                    )


def test_the_manifests_use_the_dockerfiles_targets(rendered_objects: dict[str, list[dict[str, Any]]]) -> None:
    ours = set()
    for objects in rendered_objects.values():
        for _, pod in pod_specs(objects):
            for container in [*pod.get("initContainers", []), *pod["containers"]]:
                image = container["image"].split(":")[0]
                if image.startswith("ragmesh/"):
                    ours.add(image.removeprefix("ragmesh/"))
    assert ours and ours <= set(TARGETS), ours - set(TARGETS)


def test_the_health_check_asks_grpc_health() -> None:
    """The check fails (exit 1) on a port where nothing serves gRPC health; 0 needs a SERVING answer."""
    from tests.support.stores import free_ports

    (port,) = free_ports(1)
    done = _check(port)
    assert done.returncode == 1
    assert "UNAVAILABLE" in done.stderr


def _check(port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "docker" / "healthcheck.py")],
        env={"RAGMESH_HEALTH_PORT": str(port), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


async def test_the_health_check_follows_the_servers_health() -> None:
    """SERVING passes; NOT_SERVING (what mesh.server reports while shutting down) fails."""
    import asyncio

    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    server = grpc.aio.server()
    servicer: Any = health.aio.HealthServicer()  # type: ignore[attr-defined]
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        done = await asyncio.to_thread(_check, port)
        assert done.returncode == 0, done.stderr
        await servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        assert (await asyncio.to_thread(_check, port)).returncode == 1
    finally:
        await server.stop(None)
