"""``ragmesh ingest``: the --json summary and the exit status, against a served svc_ingest."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.support import auth as test_auth
from tests.support.ingest import REPO, SAMPLES, Ingest

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def _cli(*args: str) -> tuple[int, str, str]:
    """Runs ``ragmesh`` with a token for the tenant it names (the served svc_ingest knows the test key)."""
    tenant = args[args.index("--tenant") + 1]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mesh.cli",
        *args,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "RAGMESH_TOKEN": test_auth.token(tenant)},
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_json_summary_and_exit_codes(ingest: Ingest, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    shutil.copyfile(SAMPLES / "k8s/concepts/policy/limit-range.md", folder / "limit-range.md")
    (folder / "broken.pdf").write_bytes(b"not a pdf at all")
    addr = ingest.addr

    code, out, _ = await _cli("ingest", str(folder), "--addr", addr, "--tenant", ingest.tenant, "--json", "--no-graph")
    summary = json.loads(out)
    assert code == 4, out
    assert summary["status"] == "PARTIAL_SUCCESS"
    assert summary["documents"] == {"ingested": 1, "unchanged": 0, "failed": 1, "deleted": 0}
    assert summary["chunks_written"] > 0
    assert summary["formats"] == {"md": {"files": 1, "failed": 0}, "pdf": {"files": 1, "failed": 1}}
    assert [e["reason"] for e in summary["errors"]] and summary["errors"][0]["path"].endswith("broken.pdf")
    assert set(summary) >= {"job_id", "status", "documents", "chunks_written", "errors"}

    (folder / "broken.pdf").unlink()
    code, out, err = await _cli("ingest", str(folder), "--addr", addr, "--tenant", ingest.tenant, "--no-graph")
    assert code == 0, err
    assert "SUCCEEDED: 0 ingested, 1 unchanged" in err

    code, _, err = await _cli("ingest", str(tmp_path / "missing"), "--addr", addr, "--tenant", ingest.tenant)
    assert code == 3
    assert "INVALID_ARGUMENT" in err
