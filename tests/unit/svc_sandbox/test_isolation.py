"""Isolation decision at startup and the bwrap command line (no sandbox is started)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mesh.errors import FailedPrecondition
from svc_sandbox.domain import BWRAP_MISSING, PYTHON_MISSING, Isolation, IsolationMode, decide_isolation
from svc_sandbox.domain.isolation import SandboxFds, bwrap_argv, etc_files
from svc_sandbox.domain.settings import SandboxSettings


def fake_which_found(name: str) -> str | None:
    return "/usr/bin/bwrap"


def fake_which_missing(name: str) -> str | None:
    return None


def test_bwrap_present_is_used_and_root_drops_to_the_configured_uid() -> None:
    config = SandboxSettings(run_as_uid=4242, run_as_gid=4343)
    isolation = decide_isolation(config, which=fake_which_found, euid=0)
    assert isolation == Isolation(IsolationMode.BUBBLEWRAP, "/usr/bin/python3", "/usr/bin/bwrap", 4242, 4343)


def test_non_root_service_keeps_its_uid() -> None:
    isolation = decide_isolation(SandboxSettings(), which=fake_which_found, euid=1000)
    assert (isolation.host_uid, isolation.host_gid) == (None, None)


def test_missing_bwrap_refuses_to_start_and_names_the_package() -> None:
    with pytest.raises(FailedPrecondition) as error:
        decide_isolation(SandboxSettings(), which=fake_which_missing, euid=0)
    assert error.value.reason == BWRAP_MISSING
    assert error.value.metadata["package"] == "bubblewrap"
    assert "apt-get install bubblewrap" in str(error.value)
    assert "RAGMESH_SANDBOX_ALLOW_INSECURE_NO_ISOLATION" in str(error.value)


def test_insecure_flag_warns_loudly_on_every_start(caplog: pytest.LogCaptureFixture) -> None:
    config = SandboxSettings(allow_insecure_no_isolation=True)
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            isolation = decide_isolation(config, which=fake_which_missing, euid=0)
    assert isolation.mode is IsolationMode.INSECURE_RLIMITS_ONLY
    assert isolation.bwrap is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "ISOLATION IS OFF" in r.message]
    assert len(warnings) == 2


def test_insecure_flag_does_not_bypass_an_installed_bwrap() -> None:
    config = SandboxSettings(allow_insecure_no_isolation=True)
    assert decide_isolation(config, which=fake_which_found, euid=0).mode is IsolationMode.BUBBLEWRAP


def test_missing_interpreter_refuses_to_start() -> None:
    with pytest.raises(FailedPrecondition) as error:
        decide_isolation(SandboxSettings(python_path=Path("/nonexistent/python3")), which=fake_which_found)
    assert error.value.reason == PYTHON_MISSING


ISOLATION = Isolation(IsolationMode.BUBBLEWRAP, "/usr/bin/python3", "/usr/bin/bwrap", 65534, 65534)
FDS = SandboxFds(init_script=10, bundle=11, status=12, info=13, passwd=14, group=15, hosts=16)
MERGED_USR = {"/bin": "usr/bin", "/sbin": "usr/sbin", "/lib": "usr/lib", "/lib64": "usr/lib64"}


def argv(merged: bool = True) -> list[str]:
    if merged:
        return bwrap_argv(
            ISOLATION,
            FDS,
            work_dir_bytes=1000,
            scratch_dir_bytes=500,
            exists=lambda p: p in MERGED_USR,
            readlink=MERGED_USR.get,
        )
    return bwrap_argv(
        ISOLATION,
        FDS,
        work_dir_bytes=1000,
        scratch_dir_bytes=500,
        exists=lambda p: p in ("/bin", "/lib"),
        readlink=lambda p: None,
    )


def pairs(args: list[str], option: str, arity: int) -> list[tuple[str, ...]]:
    return [tuple(args[i + 1 : i + 1 + arity]) for i, a in enumerate(args) if a == option]


def test_every_namespace_is_unshared_and_the_sandbox_is_locked_down() -> None:
    args = argv()
    for flag in (
        "--unshare-all",
        "--unshare-user",
        "--unshare-cgroup",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--as-pid-1",
        "--clearenv",
    ):
        assert flag in args
    assert "--share-net" not in args
    assert pairs(args, "--uid", 1) == [("1000",)]


def test_only_system_directories_are_bound_read_only() -> None:
    args = argv()
    binds = pairs(args, "--ro-bind", 2) + pairs(args, "--ro-bind-try", 2)
    assert ("/usr", "/usr") in binds
    assert {src for src, _ in binds} <= {"/usr", "/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives"}
    assert not pairs(args, "--bind", 2)
    assert not pairs(args, "--dev-bind", 2)
    assert pairs(args, "--symlink", 2) == [(target, path) for path, target in MERGED_USR.items()]
    joined = " ".join(args)
    for secret in ("/etc/shadow", "/root", "/home", "/work/main", "/etc/resolv.conf", "/run", "/sys"):
        assert secret not in joined


def test_unmerged_system_dirs_are_bound_not_symlinked() -> None:
    args = argv(merged=False)
    assert ("/bin", "/bin") in pairs(args, "--ro-bind", 2)
    assert ("/lib", "/lib") in pairs(args, "--ro-bind", 2)
    assert not pairs(args, "--symlink", 2)


def test_writable_space_is_sized_tmpfs_and_the_rest_is_read_only() -> None:
    args = argv()
    tmpfs = [args[i + 1] for i, a in enumerate(args) if a == "--tmpfs"]
    assert tmpfs == ["/dev/shm", "/work", "/tmp"]
    for mount in tmpfs:
        index = args.index(mount, args.index("--tmpfs"))
        assert args[index - 3] == "--size"
    assert pairs(args, "--size", 1) == [("500",), ("1000",), ("500",)]
    remounts = pairs(args, "--remount-ro", 1)
    assert remounts == [("/dev",), ("/",)]
    # "/" is remounted read-only after every mount under it was made.
    last_mount = max(i for i, a in enumerate(args) if a in ("--tmpfs", "--ro-bind-data", "--ro-bind-try"))
    assert args.index("/", args.index("--remount-ro", args.index("/dev"))) > last_mount


def test_environment_is_minimal_and_the_init_runs_isolated() -> None:
    args = argv()
    assert {name: value for name, value in pairs(args, "--setenv", 2)} == {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/work",
        "LANG": "C.UTF-8",
        "MALLOC_ARENA_MAX": "1",
    }
    assert pairs(args, "--chdir", 1) == [("/work",)]
    assert args[args.index("--") + 1 :] == ["/usr/bin/python3", "-I", "/proc/self/fd/10", "11", "12"]
    assert pairs(args, "--info-fd", 1) == [("13",)]
    assert {dest for _, dest in pairs(args, "--ro-bind-data", 2)} == {"/etc/passwd", "/etc/group", "/etc/hosts"}


def test_synthetic_etc_has_only_the_sandbox_user() -> None:
    files = etc_files()
    assert files["passwd"].count(b"\n") == 1
    assert files["passwd"].startswith(b"sandbox:x:1000:1000:")
    assert b"root" not in files["passwd"] + files["group"]


def test_bwrap_argv_needs_bwrap() -> None:
    insecure = Isolation(IsolationMode.INSECURE_RLIMITS_ONLY, "/usr/bin/python3", None, None, None)
    with pytest.raises(ValueError):
        bwrap_argv(insecure, FDS, work_dir_bytes=1, scratch_dir_bytes=1)
