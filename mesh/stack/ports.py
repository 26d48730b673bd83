"""Is a TCP port free, and if not, which process listens on it."""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import socket
from pathlib import Path

from mesh.stack.process import command_name

_TCP_LISTEN = "0A"


def port_is_free(host: str, port: int) -> bool:
    """True if a listener could bind ``host:port`` now (TIME_WAIT leftovers do not count)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) < 10 or cols[3] != _TCP_LISTEN:
                continue
            local_port = int(cols[1].rsplit(":", 1)[1], 16)
            if local_port == port:
                inodes.add(cols[9])
    return inodes


def port_holders(port: int) -> list[int]:
    """Pids of the processes with a socket listening on ``port`` (those this user may inspect)."""
    inodes = _listening_inodes(port)
    if not inodes:
        return []
    targets = {f"socket:[{inode}]" for inode in inodes}
    holders: list[int] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if fd.readlink().as_posix() in targets:
                        holders.append(int(proc.name))
                        break
    return sorted(holders)


def describe_holder(port: int) -> str:
    """Who holds ``port``, for an error message."""
    holders = port_holders(port)
    if not holders:
        return "another process (not visible to this user)"
    return ", ".join(command_name(pid) for pid in holders)


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
