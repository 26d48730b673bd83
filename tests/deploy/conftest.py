"""Fixtures of the deploy tests: renderings of every overlay, and a real API server with the CRDs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.deploy.kube import KUSTOMIZE, OVERLAYS, KubeAPI, crd_files, documents, kustomize_build, running_api_server


@pytest.fixture(scope="session")
def rendered() -> dict[str, str]:
    """overlay name -> `kubectl kustomize` output, built once per session."""
    return {name: kustomize_build(KUSTOMIZE / "overlays" / name) for name in OVERLAYS}


@pytest.fixture(scope="session")
def rendered_objects(rendered: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """overlay name -> its objects."""
    return {name: documents(text) for name, text in rendered.items()}


@pytest.fixture(scope="session")
def kube_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeAPI]:
    """etcd + kube-apiserver (built from source) with the operators' CRDs installed and established."""
    with running_api_server(tmp_path_factory.mktemp("kube-api")) as api:
        for crd in crd_files():
            done = api.kubectl("apply", "--server-side", "-f", str(crd))
            assert done.returncode == 0, f"installing {crd.name}: {done.stderr}"
        done = api.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=120s")
        assert done.returncode == 0, done.stderr
        yield api
