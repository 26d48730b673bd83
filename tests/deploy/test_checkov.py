"""checkov on the rendered overlays, docker/Dockerfile and terraform/, and hadolint on the Dockerfile: no failed check.

Every check skipped is named with its reason: globally in .checkov.yaml (a comment above
each), or next to the object (checkov.io/skipN annotations, #checkov:skip comments).
checkov runs from its own cached venv (scripts/checkov.sh installs it on first use).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.kube import KUSTOMIZE, REPO, kustomize_build

pytestmark = pytest.mark.slow


def _checkov(*args: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [str(REPO / "scripts" / "checkov.sh"), *args, "-o", "json"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=REPO,
    )
    # checkov exits 1 when a check fails; anything else is a failure to run.
    assert done.returncode in (0, 1), done.stderr[-4000:]
    parsed = json.loads(done.stdout)
    return parsed if isinstance(parsed, list) else [parsed]


def _failures(reports: list[dict[str, Any]]) -> list[str]:
    out = []
    for report in reports:
        summary = report["summary"]
        assert summary["parsing_errors"] == 0, report.get("check_type")
        assert summary["resource_count"] > 0, report.get("check_type")
        for failed in report["results"]["failed_checks"]:
            out.append(f"{failed['check_id']} {failed['check_name']}: {failed['resource']} ({failed['file_path']})")
    return out


def test_rendered_overlays(tmp_path: Path, rendered: dict[str, str]) -> None:
    for name, text in rendered.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    (tmp_path / "karpenter.yaml").write_text(kustomize_build(KUSTOMIZE / "cluster" / "karpenter"))
    failures = _failures(_checkov("-d", str(tmp_path), "--framework", "kubernetes"))
    assert not failures, "\n".join(failures)


def test_dockerfile() -> None:
    failures = _failures(_checkov("-f", "docker/Dockerfile", "--framework", "dockerfile"))
    assert not failures, "\n".join(failures)


def test_hadolint() -> None:
    """hadolint (from the same cached venv) finds nothing at info level or above."""
    done = subprocess.run(
        [str(REPO / "scripts" / "checkov.sh"), "hadolint", "docker/Dockerfile"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_terraform() -> None:
    failures = _failures(_checkov("-d", "terraform", "--framework", "terraform"))
    assert not failures, "\n".join(failures)


def test_every_skip_has_a_reason() -> None:
    for name, key in ((".checkov.yaml", "skip-check"), (".hadolint.yaml", "ignored")):
        config = (REPO / name).read_text()
        lines = config.splitlines()
        for check in yaml.safe_load(config)[key]:
            (index,) = [i for i, line in enumerate(lines) if line.strip() == f"- {check}"]
            assert lines[index - 1].strip().startswith("#"), f"{name}: {check} is skipped without a comment above it"
    inline = [
        *[(p, m) for p in REPO.glob("terraform/*.tf") for m in re.findall(r"#checkov:skip=(\S+?):(.*)", p.read_text())],
        *[
            (p, m)
            for p in [REPO / "docker" / "Dockerfile"]
            for m in re.findall(r"#checkov:skip=(\S+?):(.*)", p.read_text())
        ],
        *[
            (p, m)
            for p in KUSTOMIZE.rglob("*.yaml")
            for m in re.findall(r"checkov\.io/skip\d+: (CKV\w+)=(.*)", p.read_text())
        ],
    ]
    assert inline
    for path, (check, reason) in inline:
        assert len(reason.strip()) > 20, f"{path}: {check} skipped without a reason"
