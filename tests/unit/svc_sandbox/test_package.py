"""The domain package stays free of transport code."""

from __future__ import annotations

import subprocess
import sys


def test_domain_imports_no_grpc() -> None:
    code = "import sys, svc_sandbox.domain; print(sorted(m for m in sys.modules if m.split('.')[0] == 'grpc'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
