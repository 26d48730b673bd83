"""Bring the local stack up, report on it and take it down.

``up`` starts the selected parts in dependency order and waits for each to be
ready; a part that is already running and healthy is left alone, one that is
down or unhealthy is (re)started. ``down`` stops parts in reverse order.
Everything a run needs to know is in the pid files under the stack home, so
every command works from a fresh process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import json
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mesh.stack import process
from mesh.stack.config import RAY_WORKER_PREFIX, StackConfig, ray_worker_index
from mesh.stack.errors import MissingBinary, NotReady, PortInUse
from mesh.stack.layout import StackLayout
from mesh.stack.ordering import start_order, with_requirements
from mesh.stack.parts import Part, build_parts
from mesh.stack.ports import describe_holder, port_is_free
from mesh.stack.probes import ProbeResult

_POLL_S = 0.25
_PORT_RELEASE_WAIT_S = 3.0
_LOG_TAIL_LINES = 20


@dataclasses.dataclass(frozen=True)
class Restart:
    """One restart by ``up``: when, and why."""

    at: str
    """UTC time of the restart, ISO 8601."""
    reason: str
    """Why: the part was not running, was unhealthy, its configuration changed, or a part under it restarted."""
    pid: int = 0
    """The new process."""

    def as_json(self) -> dict[str, Any]:
        return {"at": self.at, "reason": self.reason, "pid": self.pid}


@dataclasses.dataclass(frozen=True)
class PartStatus:
    """What ``ragmesh status`` reports for one part."""

    name: str
    healthy: bool
    state: str
    """``running`` (and healthy), ``unhealthy`` (process up, probe failing), ``stopped``, or ``not installed``
    (an optional part the stack runs without, such as jaeger: what is off then is in ``detail``)."""
    address: str
    pid: int | None
    log_file: Path
    pid_file: Path
    detail: str
    metrics_url: str = ""
    """Where Prometheus scrapes the part; empty when it exports no metrics."""
    restarts: int = 0
    """Times ``up`` restarted the part (down, unhealthy or reconfigured) since it last started from stopped."""
    last_restart: Restart | None = None
    """The latest of those restarts."""

    @property
    def acceptable(self) -> bool:
        """Healthy, or an optional part that is not installed (the stack works without it)."""
        return self.healthy or self.state == "not installed"

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "healthy": self.healthy,
            "state": self.state,
            "address": self.address,
            "pid": self.pid,
            "log_file": str(self.log_file),
            "pid_file": str(self.pid_file),
            "detail": self.detail,
            "metrics_url": self.metrics_url,
            "restarts": self.restarts,
            "last_restart": self.last_restart.as_json() if self.last_restart else None,
        }


@dataclasses.dataclass(frozen=True)
class UpResult:
    """What ``up`` did with one part."""

    name: str
    action: str
    """``kept`` (was healthy), ``started`` or ``restarted``."""
    pid: int
    ready_s: float
    """Seconds from launch to ready (0 when kept)."""


@dataclasses.dataclass(frozen=True)
class DownResult:
    """What ``down`` did with one part."""

    name: str
    action: str
    """``stopped``, ``killed`` (did not exit in time) or ``not running``."""
    stop_s: float = 0.0
    """Seconds the part took to exit."""


def _started_workers(layout: StackLayout) -> int:
    """The highest worker node number with a pid file in this home (0 when none)."""
    found = [ray_worker_index(p.stem) for p in layout.run_dir.glob(f"{RAY_WORKER_PREFIX}*.pid")]
    return max((i for i in found if i is not None), default=0)


class Supervisor:
    """Runs the parts of one stack home."""

    def __init__(self, config: StackConfig, say: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.layout = StackLayout(config.home)
        # Worker nodes an earlier `up --ray-workers N` left running stay known to status and down.
        workers = max(config.ray_workers, _started_workers(self.layout))
        self.parts: dict[str, Part] = build_parts(config, self.layout, ray_workers=workers)
        self.names: tuple[str, ...] = tuple(self.parts)
        """Every part this supervisor knows, in start order."""
        self._say = say or (lambda _message: None)

    # -- selection -------------------------------------------------------

    def plan(self, only: Sequence[str] | None = None, *, with_deps: bool = True) -> list[str]:
        """The parts ``up`` would handle, in start order."""
        selected = list(only) if only else list(self.config.parts)
        if not only and "ray" in selected:
            selected.extend(self.config.ray_worker_names)
        requires = {name: part.requires for name, part in self.parts.items()}
        after = {name: part.after for name, part in self.parts.items()}
        names = with_requirements(selected, requires) if with_deps else set(selected)
        return start_order(names, requires, after, self.names)

    # -- up --------------------------------------------------------------

    def up(self, only: Sequence[str] | None = None, *, with_deps: bool = True) -> list[UpResult]:
        """Start what is not running and healthy, in dependency order; return what was done."""
        names = self.plan(only, with_deps=with_deps)
        with self._lock():
            for name in list(names):
                part = self.parts[name]
                try:
                    part.ensure_installed(self._part_say(name))
                except MissingBinary as missing:
                    if not part.optional:
                        raise
                    names.remove(name)
                    self._say(f"{name}: not installed, skipped: {part.off_when_missing} (to turn it on: {missing.fix})")
            results: list[UpResult] = []
            moved: set[str] = set()
            for name in names:
                part = self.parts[name]
                result = self._up_one(part, force=bool(moved & set(part.restart_with)))
                if result.action != "kept":
                    moved.add(name)
                results.append(result)
            return results

    def _part_say(self, name: str) -> Callable[[str], None]:
        return lambda message: self._say(f"{name}: {message}")

    def _up_one(self, part: Part, *, force: bool = False) -> UpResult:
        say = self._part_say(part.name)
        record = process.running_record(part.pid_file)
        # "restarted" when an earlier run left a pid file: the part was up before and is not now.
        action = "restarted" if part.pid_file.exists() else "started"
        why = "it was not running"
        fingerprint = part.fingerprint()
        if record is not None:
            result = part.probe()
            if force:
                why = f"{', '.join(part.restart_with)} restarted under it"
            elif result.ok and record.fingerprint in ("", fingerprint):
                say(f"already running (pid {record.pid})")
                return UpResult(part.name, "kept", record.pid, 0.0)
            elif result.ok:
                why = "its command or configuration changed"
            else:
                why = f"it was running but unhealthy ({result.detail})"
            say(f"{why}; restarting")
        elif action == "restarted":
            previous = process.read_pid_file(part.pid_file)
            why = f"it was not running (pid {previous.pid} had exited)" if previous else why
            say(f"{why}; restarting")
        # Clear what is left of an earlier run: an unhealthy process, orphaned helpers, a stale pid file.
        process.stop_pid_file(part.pid_file, stop_signal=part.stop_signal, timeout_s=self.config.stop_timeout_s)
        for attempt in range(1, part.start_attempts + 1):
            self._check_ports(part)
            part.prepare(say)
            launch = part.launch()
            say("starting" if attempt == 1 else f"starting again (attempt {attempt} of {part.start_attempts})")
            started = time.monotonic()
            spawned = process.spawn(
                launch.argv,
                log_file=part.log_file,
                pid_file=part.pid_file,
                env=launch.env,
                cwd=launch.cwd,
                fingerprint=fingerprint,
                priority_boost=part.start_priority_boost,
            )
            try:
                self._wait_ready(part, spawned, started)
                if part.start_priority_boost:
                    process.set_group_priority(process.group_members(spawned.pid), 0)
                break
            except NotReady:
                exited = not process.record_is_running(spawned)
                process.stop_pid_file(part.pid_file, stop_signal=part.stop_signal, timeout_s=self.config.stop_timeout_s)
                if attempt == part.start_attempts or not exited:
                    raise
                say("exited before it was ready")
            except BaseException:
                process.stop_pid_file(part.pid_file, stop_signal=part.stop_signal, timeout_s=self.config.stop_timeout_s)
                raise
        ready_s = time.monotonic() - started
        say(f"ready in {ready_s:.1f}s (pid {spawned.pid}, {part.address()})")
        self._note_start(part.name, action, why, spawned.pid)
        return UpResult(part.name, action, spawned.pid, ready_s)

    def _note_start(self, name: str, action: str, why: str, pid: int) -> None:
        """Counts a restart (``status`` shows it); a start from stopped begins the count again."""
        path = self.layout.restarts_file(name)
        if action != "restarted":
            path.unlink(missing_ok=True)
            return
        count, _ = self._restarts(name)
        at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        record = {"count": count + 1, "last": Restart(at, why, pid).as_json()}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record) + "\n")
        tmp.replace(path)

    def _restarts(self, name: str) -> tuple[int, Restart | None]:
        try:
            record = json.loads(self.layout.restarts_file(name).read_text())
            last = record["last"]
            return int(record["count"]), Restart(str(last["at"]), str(last["reason"]), int(last["pid"]))
        except (OSError, ValueError, KeyError, TypeError):
            return 0, None

    def _check_ports(self, part: Part) -> None:
        # A part just stopped may take a moment to let go of its sockets, so a busy port is asked
        # again for a short while before it counts as held by someone else.
        deadline = time.monotonic() + _PORT_RELEASE_WAIT_S
        for spec in part.ports():
            while not port_is_free(self.config.host, spec.port):
                if time.monotonic() >= deadline:
                    raise PortInUse(part.name, self.config.host, spec.port, describe_holder(spec.port), spec.setting)
                time.sleep(_POLL_S)

    def _not_ready(self, part: Part, problem: str) -> NotReady:
        return NotReady(
            part.name,
            problem,
            part.log_file,
            process.tail(part.log_file, _LOG_TAIL_LINES),
            fix=part.not_ready_hint or f"see the log; `ragmesh up --only {part.name}` tries again",
        )

    def _wait_for(
        self, part: Part, record: process.ProcessRecord, check: Callable[[], ProbeResult], deadline: float
    ) -> None:
        result = ProbeResult(False, "not probed yet")
        while True:
            if not process.record_is_running(record):
                code = process.exit_code(record.pid)
                how = f"exited with code {code}" if code is not None else "exited"
                raise self._not_ready(part, f"{how} before it was ready")
            result = check()
            if result.ok:
                return
            if result.fatal:
                raise self._not_ready(part, f"cannot become ready: {result.detail}")
            if time.monotonic() >= deadline:
                raise self._not_ready(
                    part, f"not ready after {part.ready_timeout_s:.0f}s (last check: {result.detail})"
                )
            time.sleep(_POLL_S)

    def _wait_ready(self, part: Part, record: process.ProcessRecord, started: float) -> None:
        deadline = started + part.ready_timeout_s
        self._wait_for(part, record, part.startup_probe, deadline)
        part.after_start(self._part_say(part.name))
        self._wait_for(part, record, part.probe, deadline)

    # -- status ----------------------------------------------------------

    def status(self, only: Sequence[str] | None = None) -> list[PartStatus]:
        """The state of the configured parts (and of any other part that has a pid file)."""
        if only:
            names = start_order(set(only), {}, {}, self.names)
        else:
            shown = set(self.config.parts) | {n for n, p in self.parts.items() if p.pid_file.exists()}
            if "ray" in self.config.parts:
                shown.update(self.config.ray_worker_names)
            names = [name for name in self.names if name in shown]
        with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
            return list(pool.map(self._status_one, [self.parts[name] for name in names]))

    def _status_one(self, part: Part) -> PartStatus:
        record = process.running_record(part.pid_file)
        if record is None and part.optional and not self._installed(part):
            state, healthy, pid = "not installed", False, None
            detail = f"not installed: {part.off_when_missing}"
        elif record is None:
            state, healthy, pid, detail = "stopped", False, None, "not running"
        else:
            result = part.probe()
            healthy, pid, detail = result.ok, record.pid, result.detail
            state = "running" if result.ok else "unhealthy"
        restarts, last = self._restarts(part.name)
        return PartStatus(
            part.name,
            healthy,
            state,
            part.address(),
            pid,
            part.log_file,
            part.pid_file,
            detail,
            part.metrics_url(),
            restarts,
            last,
        )

    @staticmethod
    def _installed(part: Part) -> bool:
        try:
            part.ensure_installed(lambda _message: None)
        except MissingBinary:
            return False
        return True

    # -- down ------------------------------------------------------------

    def down(self, only: Sequence[str] | None = None, *, purge: bool = False) -> list[DownResult]:
        """Stop parts in reverse start order (all of them unless ``only``); ``purge`` deletes their data."""
        names = list(reversed(start_order(set(only) if only else set(self.names), {}, {}, self.names)))
        results = []
        with self._lock():
            for name in names:
                part = self.parts[name]
                started = time.monotonic()
                outcome = process.stop_pid_file(
                    part.pid_file, stop_signal=part.stop_signal, timeout_s=self.config.stop_timeout_s
                )
                stop_s = time.monotonic() - started
                action = {None: "not running", True: "stopped", False: "killed"}[outcome]
                if outcome is not None:
                    self._say(f"{name}: {action} in {stop_s:.1f}s")
                results.append(DownResult(name, action, stop_s))
            if purge:
                self._purge(names if only else None)
        return results

    def _purge(self, names: Sequence[str] | None) -> None:
        if names is None:
            targets = [self.layout.data_dir, *self.layout.short_fallback_dirs(), self.layout.part_dir("ray")]
            targets += [self.layout.ray_worker_temp_dir(n) for n in self.names if ray_worker_index(n) is not None]
        else:
            targets = [self.layout.data(name) for name in names]
            if "ray" in names:
                targets.append(self.layout.ray_temp_dir)
            targets += [self.layout.ray_worker_temp_dir(n) for n in names if ray_worker_index(n) is not None]
        for target in targets:
            if target.exists():
                self._say(f"deleting {target}")
                shutil.rmtree(target)

    # -- locking ---------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """One ``up`` or ``down`` at a time per stack home."""
        self.layout.run_dir.mkdir(parents=True, exist_ok=True)
        with (self.layout.run_dir / "stack.lock").open("w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._say("waiting for another ragmesh up/down on this stack home")
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
