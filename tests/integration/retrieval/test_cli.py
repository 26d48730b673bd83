"""``ragmesh search`` and ``ragmesh eval retrieval`` against a real svc_retrieval (``--addr``)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from tests.support import auth as test_auth
from tests.support.retrieval import DocumentEmbedder, Served, ingest, upsert_requests
from tests.support.tenants import new_tenant

# The session's svc_inference answers on the session's event loop.
pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

# Runs the retrieval commands the way `ragmesh` does, whether or not mesh.cli lists the module yet.
_RUNNER = """
import argparse, sys
from mesh.cli import retrieval_cmds
parser = argparse.ArgumentParser(prog="ragmesh")
retrieval_cmds.register(parser.add_subparsers(dest="command"))
args = parser.parse_args(sys.argv[1:])
sys.exit(args.func(args))
"""


async def ragmesh(*argv: str) -> tuple[int, str, str]:
    """Runs a retrieval command with a token for the tenant it names (the served svc_retrieval knows the test key)."""
    tenant = argv[argv.index("--tenant") + 1]
    env = {**os.environ, "RAGMESH_TOKEN": test_auth.token(tenant)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _RUNNER, *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_search_and_eval_commands(served: Served, embedder: DocumentEmbedder, tmp_path: Path) -> None:
    tenant = new_tenant()
    await ingest(served, tenant, await upsert_requests(embedder))
    addr = f"127.0.0.1:{served.server.port}"

    code, out, err = await ragmesh("search", "kubelet image garbage collection", "--json", "--top-k", "2",
                                   "--tenant", tenant, "--addr", addr)  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    assert len(doc["hits"]) == 2 and doc["hits"][0]["doc_id"] == "gc"
    assert set(doc["hits"][0]["legs"]) == {"dense", "sparse", "graph"}

    code, out, err = await ragmesh("search", "taints", "--tenant", tenant, "--addr", addr)
    assert code == 0, err
    assert "Taints and Tolerations" in out

    questions = tmp_path / "q.jsonl"
    rows = [
        {"id": "a", "question": "How often are unused images garbage collected?", "kind": "fact",
         "gold_paths": ["concepts/garbage-collection.md"]},
        {"id": "b", "question": "Which taint effect evicts running pods?", "kind": "fact",
         "gold_paths": ["concepts/taint-and-toleration.md"]},
        {"id": "c", "question": "What is the capital of France?", "kind": "unanswerable", "gold_paths": []},
    ]  # fmt: skip
    questions.write_text("\n".join(json.dumps(r) for r in rows))
    code, out, err = await ragmesh("eval", "retrieval", "--questions", str(questions), "--k", "3", "--json",
                                   "--tenant", tenant, "--addr", addr)  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert set(report) >= {"hybrid", "dense", "sparse", "graph", "by_kind"}
    assert report["hybrid"] == {"recall_at_k": 1.0, "mrr_at_10": 1.0, "n": 2}
    assert report["skipped_without_gold"] == 1

    code, out, err = await ragmesh("search", "", "--tenant", tenant, "--addr", addr)
    assert code == 3 and "INVALID_ARGUMENT" in err
