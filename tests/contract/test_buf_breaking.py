"""The breaking-change check fails on a contract that breaks the released one, and passes on this tree.

``scripts/buf-breaking.sh`` compares proto/ with the committed image of the last
released contract (proto/released/ragmesh-v1.binpb); these tests run it on copies
of the tree, one deliberately broken per case, with no git refs involved.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "buf-breaking.sh"
SEARCH_PROTO = Path("proto/ragmesh/retrieval/v1/retrieval_service.proto")
TOP_K = "  uint32 top_k = 2 [(buf.validate.field).uint32.lte = 50];\n"


@pytest.fixture(scope="module", autouse=True)
def tools() -> None:
    if not (REPO / "node_modules" / ".bin" / "buf").is_file():
        pytest.fail("buf is missing (node_modules/.bin/buf): run make deps")
    subprocess.run([str(REPO / "scripts" / "fetch-proto-deps.sh")], check=True)


def tree_copy(tmp_path: Path) -> Path:
    """A copy of what buf reads: buf.yaml, proto/ and the materialized third-party schemas."""
    root = tmp_path / "tree"
    root.mkdir()
    shutil.copy2(REPO / "buf.yaml", root / "buf.yaml")
    shutil.copytree(REPO / "proto", root / "proto")
    shutil.copytree(REPO / "third_party", root / "third_party")
    return root


def edit(root: Path, old: str, new: str) -> None:
    path = root / SEARCH_PROTO
    text = path.read_text()
    assert text.count(old) == 1, f"{SEARCH_PROTO} no longer holds {old!r}: pick another field to break"
    path.write_text(text.replace(old, new))


def check(root: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **env},
    )


def test_the_tree_as_committed_does_not_break_the_released_contract(tmp_path: Path) -> None:
    done = check(tree_copy(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no breaking change against the released contract" in done.stdout


@pytest.mark.parametrize(
    ("changed", "named"),
    [
        (
            "  string top_k = 2 [(buf.validate.field).string.max_len = 50];\n",
            r'Field "2" with name "top_k" on message "SearchRequest" changed type from "uint32" to "string"',
        ),
        (
            "  uint32 top_k = 12 [(buf.validate.field).uint32.lte = 50];\n",
            r'Previously present field "2" with name "top_k" on message "SearchRequest" was deleted',
        ),
    ],
    ids=["field-type", "field-number"],
)
def test_a_wire_breaking_change_to_a_v1_message_fails_naming_the_break(
    tmp_path: Path, changed: str, named: str
) -> None:
    root = tree_copy(tmp_path)
    edit(root, TOP_K, changed)
    done = check(root)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert re.search(named, output), output
    assert f"{SEARCH_PROTO}:" in output, "the break is reported at its file and line"
    assert "breaks the released contract" in done.stderr


def test_a_deleted_v1_file_fails(tmp_path: Path) -> None:
    root = tree_copy(tmp_path)
    (root / "proto/ragmesh/sandbox/v1/sandbox_service.proto").unlink()
    done = check(root)
    assert done.returncode != 0
    assert re.search(r'Previously present file "ragmesh/sandbox/v1/sandbox_service.proto" was deleted', done.stdout)


def test_no_released_contract_fails_instead_of_passing_unchecked(tmp_path: Path) -> None:
    done = check(tree_copy(tmp_path), BUF_BREAKING_AGAINST=str(tmp_path / "missing.binpb"))
    assert done.returncode != 0
    assert "no released contract" in done.stderr
