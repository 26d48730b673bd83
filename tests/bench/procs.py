"""Memory and open files of the stack's parts, read from /proc: each part's process and its whole tree.

A part's pid is what the supervisor started (``ragmesh status --json``); most of
a part's work can run in its children (Ray's workers and Serve replicas run
under the ``ray`` part's raylet, PostgreSQL's backends under its postmaster),
so each sample gives the part's own process and the sum over its process tree.
Summed RSS counts pages shared between the processes of a tree more than once:
it is an upper bound, and what matters here is how it changes. Beside it, the
tree's summed PSS (proportional set size, from ``/proc/<pid>/smaps_rollup``):
each shared page counted once, split between the processes that map it. A tree
whose processes share a lot (PostgreSQL's backends and its shared buffers, Ray's
workers and their shared object store and libraries) grows in summed RSS each
time one of its processes first touches a page another already holds, while its
PSS does not: PSS is the memory the tree takes from the machine.
"""

from __future__ import annotations

import dataclasses
import os
from collections import defaultdict
from pathlib import Path

PROC = Path("/proc")


@dataclasses.dataclass(frozen=True)
class Usage:
    """One process's (or one tree's) resident memory and open file descriptors."""

    rss_bytes: int
    fds: int
    processes: int
    pss_bytes: int | None = None
    """Proportional set size; None when the kernel does not say (no smaps_rollup, or not readable)."""


def _kib_line(path: Path, key: str) -> int | None:
    """The value of the ``key`` line ("Key:   123 kB") of a /proc file, in bytes; 0 when the file has no such line
    (a kernel thread or a zombie holds no memory); None when the file cannot be read (the process is gone)."""
    try:
        for line in path.read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return 0


def _rss_bytes(pid: int, proc: Path) -> int | None:
    return _kib_line(proc / str(pid) / "status", "VmRSS:")


def _pss_bytes(pid: int, proc: Path) -> int | None:
    return _kib_line(proc / str(pid) / "smaps_rollup", "Pss:")


def _fds(pid: int, proc: Path) -> int | None:
    try:
        return len(os.listdir(proc / str(pid) / "fd"))
    except OSError:
        return None


def children(proc: Path = PROC) -> dict[int, list[int]]:
    """Parent pid -> child pids, for every process now."""
    tree: dict[int, list[int]] = defaultdict(list)
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: the fields after it are fixed.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) >= 2:
            tree[int(fields[1])].append(int(entry.name))
    return tree


def descendants(pid: int, tree: dict[int, list[int]]) -> list[int]:
    """``pid`` and every process below it."""
    out, stack = [], [pid]
    while stack:
        current = stack.pop()
        out.append(current)
        stack.extend(tree.get(current, ()))
    return out


def usage(pids: list[int], proc: Path = PROC) -> Usage | None:
    """Summed RSS, PSS and fds of the processes still there (None when none is; PSS None when any is unknown)."""
    rss = fds = alive = 0
    pss: int | None = 0
    for pid in pids:
        pid_rss, pid_fds = _rss_bytes(pid, proc), _fds(pid, proc)
        if pid_rss is None or pid_fds is None:
            continue
        pid_pss = _pss_bytes(pid, proc)
        if pid_pss is None and not (proc / str(pid)).exists():
            # It ended between the reads (a Ray task's worker, a backend): gone for this sample, as if unseen.
            continue
        rss, fds, alive = rss + pid_rss, fds + pid_fds, alive + 1
        pss = None if pss is None or pid_pss is None else pss + pid_pss
    return Usage(rss, fds, alive, pss) if alive else None


def sample(parts: dict[str, int | None], proc: Path = PROC) -> dict[str, dict[str, int | None] | None]:
    """Per part: its process's RSS and fds, and its tree's RSS, PSS and fds (None for a part with no live process)."""
    tree = children(proc)
    out: dict[str, dict[str, int | None] | None] = {}
    for name, pid in parts.items():
        own = usage([pid], proc) if pid else None
        if own is None or pid is None:
            out[name] = None
            continue
        whole = usage(descendants(pid, tree), proc) or own
        out[name] = {
            "rss_bytes": own.rss_bytes,
            "fds": own.fds,
            "tree_rss_bytes": whole.rss_bytes,
            "tree_pss_bytes": whole.pss_bytes,
            "tree_fds": whole.fds,
            "tree_processes": whole.processes,
        }
    return out
