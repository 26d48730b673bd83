"""A part whose process can exit before it is ready (Ray's fixed registration window) is started again."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mesh.stack import Supervisor
from mesh.stack.config import StackConfig
from mesh.stack.errors import NotReady
from mesh.stack.parts import Launch, Part, PortSpec
from mesh.stack.probes import OK, ProbeResult


class FakeFlakyPart(Part):
    """Exits 1 on its first ``failures`` starts, then stays up; ready once it is up."""

    name = "ray"

    def __init__(self, config: StackConfig, failures: int, attempts: int) -> None:
        super().__init__(config, Supervisor(config).layout)
        self.failures = failures
        self.start_attempts = attempts
        self.counter = config.home / "starts"

    @property
    def ready_timeout_s(self) -> float:
        return 20.0

    def ports(self) -> list[PortSpec]:
        return []

    def address(self) -> str:
        return "fake"

    def launch(self) -> Launch:
        code = (
            "import pathlib, sys, time\n"
            f"p = pathlib.Path({str(self.counter)!r})\n"
            "n = int(p.read_text()) + 1 if p.exists() else 1\n"
            "p.write_text(str(n))\n"
            f"sys.exit(1) if n <= {self.failures} else time.sleep(60)\n"
        )
        return Launch([sys.executable, "-c", code], {}, self.config.home)

    def fingerprint(self) -> str:
        return "fake"

    def probe(self) -> ProbeResult:
        return OK if self.counter.exists() and int(self.counter.read_text()) > self.failures else ProbeResult(False, "")


def _supervisor(tmp_path: Path, part: FakeFlakyPart) -> Supervisor:
    supervisor = Supervisor(part.config)
    supervisor.parts["ray"] = part
    return supervisor


def test_an_early_exit_is_started_again(tmp_path: Path) -> None:
    config = StackConfig(home=tmp_path, stop_timeout_s=5)
    part = FakeFlakyPart(config, failures=2, attempts=3)
    supervisor = _supervisor(tmp_path, part)
    try:
        (result,) = supervisor.up(["ray"], with_deps=False)
        assert result.action == "started"
        assert part.counter.read_text() == "3"
    finally:
        supervisor.down(["ray"])


def test_attempts_run_out(tmp_path: Path) -> None:
    config = StackConfig(home=tmp_path, stop_timeout_s=5)
    part = FakeFlakyPart(config, failures=2, attempts=2)
    with pytest.raises(NotReady, match="exited with code 1"):
        _supervisor(tmp_path, part).up(["ray"], with_deps=False)
    assert part.counter.read_text() == "2"
