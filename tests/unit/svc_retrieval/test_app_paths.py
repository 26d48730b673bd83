"""Where svc_retrieval keeps the embedded engine's data by default."""

from __future__ import annotations

from pathlib import Path

from mesh.settings import MeshSettings
from mesh.stack.layout import StackLayout
from svc_retrieval.app import make_vector_index
from svc_retrieval.clients.edge_index import EdgeVectorIndex
from svc_retrieval.config import Config


def test_the_embedded_shard_lives_in_the_stacks_data_folder(tmp_path: Path) -> None:
    # `ragmesh down --purge` deletes the stack's data folder: the chunk shard must be inside it.
    index = make_vector_index(Config(), MeshSettings(home=tmp_path))
    assert isinstance(index, EdgeVectorIndex)
    assert index._path == StackLayout(tmp_path).data_dir / "svc_retrieval" / "chunks"
