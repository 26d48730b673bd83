"""How code is isolated: bubblewrap namespaces plus rlimits, run as an unprivileged host uid.

What was found on the reference machine (Debian 12, kernel 6.x, the service as root, no
Docker) and why the design is what it is:

* Unprivileged user namespaces work (``user.max_user_namespaces`` > 0; Debian's
  ``kernel.unprivileged_userns_clone`` knob is absent on this kernel), so bwrap runs as
  a plain, non-setuid program under an unprivileged host uid and builds every namespace
  itself: ``--unshare-all`` plus explicit ``--unshare-user`` and ``--unshare-cgroup`` so
  a kernel that lacks one fails loudly instead of silently skipping it, and
  ``--disable-userns`` so the code cannot open nested user namespaces (a large kernel
  attack surface).
* The service runs as root locally, and RLIMIT_NPROC is not enforced for real uid 0 —
  and uid 0 outside must never be what the code maps to. So when the service is root,
  bwrap is started as ``run_as_uid:run_as_gid`` (default 65534, ``nobody``) through
  util-linux ``setpriv`` (not ``Popen(user=...)``, which forces fork() and with it gRPC
  core's atfork handlers, seen crashing the child; without ids Popen uses vfork()).
  No ``preexec_fn`` runs in a process with gRPC threads. A non-root service keeps its own
  uid. Measured here: RLIMIT_NPROC is counted per (user namespace, uid) since Linux 5.14,
  so two sandboxes under the same host uid do not share a process budget — a fork bomb
  in one did not stop another from forking.
* cgroups were not chosen: this host exposes writable cgroup v1 hierarchies (v2 only as a
  controller-less ``unified`` mount), but Kubernetes pods normally cannot create cgroups,
  and rlimits + the pid namespace give deterministic limits on both. Memory is bounded
  exactly by RLIMIT_AS per process, and for the whole tree by the sandbox's init, which
  samples the processes' resident memory every 50 ms (see ``_sandbox_init.py``). What
  this gives up: no CPU-share isolation (a run may use up to ``max_processes`` CPUs
  until its wall-clock limit; admission caps concurrent runs at the CPU count), and
  the tree memory bound is sampled, so it can be overshot briefly.
* Writable space is bounded tmpfs mounts that live only in the sandbox's mount namespace
  (``--size`` on ``/work``, ``/tmp``, ``/dev/shm``), plus RLIMIT_FSIZE; the root, ``/dev``
  and everything bound from the host are read-only. Nothing is created on the host disk,
  and the mounts vanish with the namespace.
* ``/etc`` holds only a synthetic passwd/group/hosts and the dynamic linker cache: no
  shadow, no resolv.conf (DNS fails), nothing of the host's configuration.
* Seccomp is left to the pod: no ``bwrap --seccomp`` filter is built here. The base
  Deployment runs RuntimeDefault; ``kustomize/components/sandbox-hardening`` swaps in the
  Localhost profile ``profiles/ragmesh-sandbox.json`` (the namespace calls bwrap needs
  allowed, kernel-wide ones refused) and gVisor's RuntimeClass.

Without bwrap the service refuses to start, unless ``allow_insecure_no_isolation`` is
set: then code runs directly under rlimits only (development machines), with a warning
on every start.
"""

from __future__ import annotations

import enum
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mesh.errors import FailedPrecondition
from svc_sandbox.domain.model import WORK_DIR

if TYPE_CHECKING:
    from svc_sandbox.domain.settings import SandboxSettings

_log = logging.getLogger(__name__)

BWRAP_MISSING = "SANDBOX_BWRAP_MISSING"
"""FailedPrecondition reason: bubblewrap is not installed and insecure mode is off."""
PYTHON_MISSING = "SANDBOX_PYTHON_MISSING"
"""FailedPrecondition reason: the interpreter for sandboxed code is missing."""
SELF_TEST_FAILED = "SANDBOX_SELF_TEST_FAILED"
"""FailedPrecondition reason: bwrap is there but a trivial execution did not work."""

BWRAP_APT_PACKAGE = "bubblewrap"
"""The Debian/Ubuntu package that provides ``bwrap``."""

SANDBOX_UID = 1000
"""uid (and gid) the code has inside its user namespace: not root there either."""

SANDBOX_HOSTNAME = "sandbox"

SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"


def sandbox_env(home: str) -> dict[str, str]:
    """The whole environment the code sees: nothing of the service's.

    ``MALLOC_ARENA_MAX=1``: glibc otherwise reserves 64 MiB of address space for each
    thread's malloc arena, which under RLIMIT_AS makes a few threads fail to start
    ("can't start new thread") long before any real memory is used.
    """
    return {"PATH": SANDBOX_PATH, "HOME": home, "LANG": "C.UTF-8", "MALLOC_ARENA_MAX": "1"}


# Top-level directories the interpreter may need, besides /usr. On merged-/usr systems
# they are symlinks into /usr and are recreated as symlinks; otherwise bound read-only.
_SYSTEM_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")

# Host files that are safe and useful to show read-only (if they exist).
_HOST_ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives")


class IsolationMode(enum.Enum):
    """How executions are isolated."""

    BUBBLEWRAP = "BUBBLEWRAP"
    """Namespaces, read-only binds and private tmpfs via bwrap, plus rlimits."""
    INSECURE_RLIMITS_ONLY = "INSECURE_RLIMITS_ONLY"
    """Development only: rlimits and a temp dir, no isolation from the host."""


@dataclass(frozen=True)
class Isolation:
    """The isolation decided at startup, with everything resolved to concrete paths and ids."""

    mode: IsolationMode
    """How executions are isolated."""
    python: str
    """Interpreter for the code (absolute path)."""
    bwrap: str | None
    """bwrap executable (absolute path); None in insecure mode."""
    host_uid: int | None
    """Host uid to switch to before starting the sandbox; None to keep the service's."""
    host_gid: int | None
    """Host gid that goes with ``host_uid``."""


def decide_isolation(
    config: SandboxSettings,
    *,
    which: Callable[[str], str | None] = shutil.which,
    euid: int | None = None,
) -> Isolation:
    """Choose the isolation for this process, or refuse to start.

    Raises FailedPrecondition naming the apt package ``bubblewrap`` when bwrap is
    missing and ``allow_insecure_no_isolation`` is off; logs a loud warning when it is
    on. ``which`` and ``euid`` exist for tests.
    """
    python = str(config.python_path)
    if not os.path.isabs(python) or not os.access(python, os.X_OK):
        raise FailedPrecondition(
            f"sandbox interpreter {python!r} is missing or not executable",
            reason=PYTHON_MISSING,
            metadata={"python_path": python},
        )
    effective_uid = os.geteuid() if euid is None else euid
    host_uid = config.run_as_uid if effective_uid == 0 else None
    host_gid = config.run_as_gid if effective_uid == 0 else None
    bwrap = which(config.bwrap_path)
    if bwrap is not None:
        return Isolation(IsolationMode.BUBBLEWRAP, python, os.path.abspath(bwrap), host_uid, host_gid)
    if not config.allow_insecure_no_isolation:
        raise FailedPrecondition(
            f"bubblewrap ({config.bwrap_path!r}) was not found, and sandboxed code must not run without it: "
            f"install the package {BWRAP_APT_PACKAGE!r} (apt-get install {BWRAP_APT_PACKAGE}), or for "
            "development only set RAGMESH_SANDBOX_ALLOW_INSECURE_NO_ISOLATION=true",
            reason=BWRAP_MISSING,
            metadata={"package": BWRAP_APT_PACKAGE, "bwrap_path": config.bwrap_path},
        )
    _log.warning(
        "!!! SANDBOX ISOLATION IS OFF: bubblewrap (%r) not found and allow_insecure_no_isolation is set. "
        "Code runs with rlimits only and can read host files, use the network and see host processes. "
        "Never run this way outside a development machine; install the %r package. !!!",
        config.bwrap_path,
        BWRAP_APT_PACKAGE,
    )
    return Isolation(IsolationMode.INSECURE_RLIMITS_ONLY, python, None, host_uid, host_gid)


@dataclass(frozen=True)
class SandboxFds:
    """File descriptors (in the service process) that bwrap consumes or passes on."""

    init_script: int
    """Sealed memfd with ``_sandbox_init.py``; run as ``/proc/self/fd/N``."""
    bundle: int
    """Sealed memfd with limits, code and input files, read by the init."""
    status: int
    """Write end of the pipe the init reports on."""
    info: int
    """Write end of the pipe bwrap writes ``{"child-pid": ...}`` to (``--info-fd``)."""
    passwd: int
    """Sealed memfd with the synthetic /etc/passwd."""
    group: int
    """Sealed memfd with the synthetic /etc/group."""
    hosts: int
    """Sealed memfd with the synthetic /etc/hosts."""


def etc_files() -> dict[str, bytes]:
    """Content of the synthetic /etc files: only the sandbox user, only localhost."""
    return {
        "passwd": f"sandbox:x:{SANDBOX_UID}:{SANDBOX_UID}:sandbox:{WORK_DIR}:/usr/sbin/nologin\n".encode(),
        "group": f"sandbox:x:{SANDBOX_UID}:\n".encode(),
        "hosts": f"127.0.0.1\tlocalhost {SANDBOX_HOSTNAME}\n::1\tlocalhost\n".encode(),
    }


def _system_dir_args(exists: Callable[[str], bool], readlink: Callable[[str], str | None]) -> list[str]:
    args: list[str] = []
    for path in _SYSTEM_DIRS:
        target = readlink(path)
        if target is not None:
            args += ["--symlink", target, path]
        elif exists(path):
            args += ["--ro-bind", path, path]
    return args


def _readlink(path: str) -> str | None:
    return os.readlink(path) if os.path.islink(path) else None


def bwrap_argv(
    isolation: Isolation,
    fds: SandboxFds,
    *,
    work_dir_bytes: int,
    scratch_dir_bytes: int,
    exists: Callable[[str], bool] = os.path.lexists,
    readlink: Callable[[str], str | None] = _readlink,
) -> list[str]:
    """The full command line: bwrap's options, then the interpreter running the init.

    Pure apart from looking at how /bin, /lib* are laid out on the host (``exists`` and
    ``readlink`` are injectable for tests). Order matters to bwrap: mounts apply in
    sequence, so the read-only remounts come last.
    """
    if isolation.bwrap is None:
        raise ValueError("bwrap_argv needs bubblewrap isolation")
    argv = [
        isolation.bwrap,
        "--unshare-all",
        "--unshare-user",
        "--unshare-cgroup",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--as-pid-1",
        "--uid",
        str(SANDBOX_UID),
        "--gid",
        str(SANDBOX_UID),
        "--hostname",
        SANDBOX_HOSTNAME,
        "--ro-bind",
        "/usr",
        "/usr",
        *_system_dir_args(exists, readlink),
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--size",
        str(scratch_dir_bytes),
        "--tmpfs",
        "/dev/shm",
        "--remount-ro",
        "/dev",
        "--size",
        str(work_dir_bytes),
        "--tmpfs",
        WORK_DIR,
        "--size",
        str(scratch_dir_bytes),
        "--tmpfs",
        "/tmp",
        "--perms",
        "0444",
        "--ro-bind-data",
        str(fds.passwd),
        "/etc/passwd",
        "--perms",
        "0444",
        "--ro-bind-data",
        str(fds.group),
        "/etc/group",
        "--perms",
        "0444",
        "--ro-bind-data",
        str(fds.hosts),
        "/etc/hosts",
    ]
    for path in _HOST_ETC_FILES:
        argv += ["--ro-bind-try", path, path]
    argv += ["--remount-ro", "/", "--chdir", WORK_DIR, "--clearenv"]
    for name, value in sandbox_env(WORK_DIR).items():
        argv += ["--setenv", name, value]
    argv += [
        "--info-fd",
        str(fds.info),
        "--",
        *init_argv(isolation, fds.init_script, fds.bundle, fds.status),
    ]
    return argv


def init_argv(isolation: Isolation, init_script_fd: int, bundle_fd: int, status_fd: int) -> list[str]:
    """The interpreter command that runs the sandbox init (inside bwrap, or directly)."""
    return [isolation.python, "-I", f"/proc/self/fd/{init_script_fd}", str(bundle_fd), str(status_fd)]


def insecure_env(work_dir: Path) -> dict[str, str]:
    """The whole environment of an insecure-mode execution: nothing of the service's."""
    return sandbox_env(str(work_dir))
