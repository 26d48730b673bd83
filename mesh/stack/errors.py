"""Errors of the local stack supervisor: each names the part, its log file and the fix."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class StackError(Exception):
    """A part could not be started, checked or stopped.

    ``str()`` gives the whole message a person needs: what failed, for which
    part, where its log is and what to do about it.
    """

    def __init__(self, part: str, problem: str, *, fix: str = "", log_file: Path | None = None) -> None:
        self.part = part
        self.problem = problem
        self.fix = fix
        self.log_file = log_file
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"{self.part}: {self.problem}"]
        if self.log_file is not None:
            lines.append(f"  log: {self.log_file}")
        if self.fix:
            lines.append(f"  fix: {self.fix}")
        return "\n".join(lines)


class MissingBinary(StackError):
    """A program a part needs is not installed."""

    def __init__(self, part: str, binary: str, install_hint: str) -> None:
        self.binary = binary
        super().__init__(part, f"needs {binary!r}, which is not installed", fix=install_hint)


class PortInUse(StackError):
    """A port a part needs is held by a process the stack did not start."""

    def __init__(self, part: str, host: str, port: int, holder: str, setting: str) -> None:
        self.host = host
        self.port = port
        self.holder = holder
        super().__init__(
            part,
            f"port {host}:{port} is already in use by {holder}",
            fix=f"stop that process, or give {part} another port with {setting}=<port>",
        )


class NotReady(StackError):
    """A part was started but did not become ready in time (or exited)."""

    def __init__(self, part: str, problem: str, log_file: Path, log_tail: Sequence[str], fix: str = "") -> None:
        self.log_tail = tuple(log_tail)
        super().__init__(part, problem, fix=fix, log_file=log_file)

    def render(self) -> str:
        text = super().render()
        if not self.log_tail:
            return text + "\n  (the log is empty)"
        tail = "\n".join(f"    | {line}" for line in self.log_tail)
        return f"{text}\n  last {len(self.log_tail)} lines of the log:\n{tail}"
