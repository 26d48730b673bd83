"""`ragmesh sandbox exec` through the Envoy edge to the real sandbox service."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mesh.settings import MeshSettings

pytestmark = pytest.mark.e2e


def _exec(code_file: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mesh.cli", "sandbox", "exec", "--code-file", str(code_file), *extra],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_exec_json_through_the_edge(settings: MeshSettings, tmp_path: Path) -> None:
    code = tmp_path / "job.py"
    code.write_text("print(6 * 7)\n")
    result = _exec(code, "--json", "--tenant", "e2e-sandbox")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["stdout"] == "42\n"
    assert doc["exit_code"] == 0
    assert doc["stop_reason"] == "COMPLETED"
    assert {"stderr", "wall_ms", "cpu_ms", "peak_memory_bytes"} <= doc.keys()


def test_no_network_through_the_whole_mesh(settings: MeshSettings, tmp_path: Path) -> None:
    host, port = settings.edge_addr.rsplit(":", 1)
    code = tmp_path / "escape.py"
    code.write_text(f"import socket\ns = socket.create_connection(({host!r}, {port}), timeout=1)\nprint('connected')\n")
    result = _exec(code, "--json", "--tenant", "e2e-sandbox")
    doc = json.loads(result.stdout)
    assert "connected" not in doc["stdout"]
    assert doc["exit_code"] != 0 and doc["stop_reason"] == "COMPLETED"
    assert "Error" in doc["stderr"]


def test_bad_input_exit_code_and_message(settings: MeshSettings, tmp_path: Path) -> None:
    code = tmp_path / "empty.py"
    code.write_text("")
    result = _exec(code, "--tenant", "e2e-sandbox")
    assert result.returncode == 3
    assert "INVALID_ARGUMENT" in result.stderr and "code" in result.stderr
