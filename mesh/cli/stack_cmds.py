"""``ragmesh up`` / ``status`` / ``down`` / ``envoy-config``: the one-command local stack."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mesh.config import ConfigError
from mesh.stack import PART_NAMES, PartStatus, StackConfig, StackError, Supervisor, render_envoy_config
from mesh.stack.config import MAX_RAY_WORKERS, is_part_name
from mesh.stack.envoy_ratelimit import GlobalLimitReport, global_limit_report, read_edge_limit_counters
from mesh.stack.ordering import DependencyError
from mesh.stack.service_env import otlp_endpoint

_EXIT_FAILED = 1
_EXIT_USAGE = 2


def _part_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if not is_part_name(name)]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown part(s) {', '.join(unknown)}; known: {', '.join(PART_NAMES)} and ray_worker_<i>"
        )
    return names


def _say(message: str) -> None:
    print(message, flush=True)


def _config() -> StackConfig:
    return StackConfig.from_env()


def _guarded(args: argparse.Namespace, command: Any) -> int:
    try:
        code: int = command(args)
    except (ConfigError, DependencyError) as exc:
        print(f"ragmesh: {exc}", file=sys.stderr)
        return _EXIT_USAGE
    except StackError as exc:
        print(f"ragmesh: {exc}", file=sys.stderr)
        return _EXIT_FAILED
    return code


def _up(args: argparse.Namespace) -> int:
    overrides = {} if args.ray_workers is None else {"ray_workers": args.ray_workers}
    supervisor = Supervisor(StackConfig.from_env(**overrides), say=_say)
    results = supervisor.up(args.only, with_deps=not args.no_deps)
    started = [r for r in results if r.action != "kept"]
    summary = ", ".join(f"{r.name} {r.ready_s:.1f}s" for r in started) or "nothing to start"
    print(f"stack up ({supervisor.layout.home}): {summary}")
    return 0


def _status_table(statuses: Sequence[PartStatus]) -> str:
    rows = [("NAME", "HEALTHY", "ADDRESS", "PID", "RESTARTS", "METRICS", "LOG")]
    for s in statuses:
        rows.append(
            (
                s.name,
                "yes" if s.healthy else ("off" if s.acceptable else "no"),
                s.address,
                str(s.pid or "-"),
                str(s.restarts),
                s.metrics_url or "-",
                str(s.log_file),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1] for row in rows
    ]
    for s in statuses:
        if not s.healthy:
            lines.append(f"{s.name}: {s.state}: {s.detail}")
    for s in statuses:
        if s.last_restart is not None:
            last = s.last_restart
            lines.append(f"{s.name}: restarted {s.restarts}x by ragmesh up, last at {last.at}: {last.reason}")
    return "\n".join(lines)


def _global_limit(supervisor: Supervisor, statuses: Sequence[PartStatus]) -> GlobalLimitReport | None:
    """How the edge's per-tenant limits fare, when the edge runs (from Envoy's counters)."""
    by_name = {s.name: s for s in statuses}
    envoy = by_name.get("envoy")
    if envoy is None or not envoy.healthy:
        return None
    service = by_name.get("ratelimit") or supervisor.status(["ratelimit"])[0]
    return global_limit_report(read_edge_limit_counters(supervisor.config), service.state)


def _tracing_json(supervisor: Supervisor, statuses: Sequence[PartStatus]) -> dict[str, Any]:
    """Whether traces are collected, and where they are read."""
    jaeger = {s.name: s for s in statuses}.get("jaeger") or supervisor.status(["jaeger"])[0]
    on = jaeger.healthy and bool(otlp_endpoint(supervisor.config))
    return {
        "on": on,
        "state": jaeger.state,
        "query_url": f"http://{supervisor.config.host}:{supervisor.config.jaeger_query_port}" if on else "",
        "sample_ratio": supervisor.config.trace_sample_ratio,
    }


def _tracing_line(supervisor: Supervisor, statuses: Sequence[PartStatus]) -> str:
    doc = _tracing_json(supervisor, statuses)
    if doc["on"]:
        return (
            f"tracing: on (sample ratio {doc['sample_ratio']:g}); traces at {doc['query_url']}/api/traces/<id>, "
            "or `ragmesh trace <id>` with the id an answer prints"
        )
    if doc["state"] == "not installed":
        return "tracing: off (jaeger is not installed: scripts/install-go-tools.sh jaeger, then ragmesh up)"
    if not supervisor.config.tracing:
        return "tracing: off (RAGMESH_TRACING=false)"
    return f"tracing: off (jaeger is {doc['state']})"


def _status(args: argparse.Namespace) -> int:
    supervisor = Supervisor(_config())
    statuses = supervisor.status(args.only)
    limits = _global_limit(supervisor, statuses)
    if args.json:
        doc: dict[str, Any] = {"home": str(supervisor.layout.home), "parts": [s.as_json() for s in statuses]}
        if limits is not None:
            doc["global_rate_limit"] = limits.as_json()
        doc["tracing"] = _tracing_json(supervisor, statuses)
        print(json.dumps(doc, indent=2))
    else:
        print(_status_table(statuses))
        if limits is not None:
            print(limits.line())
        print(_tracing_line(supervisor, statuses))
    return 0 if all(s.acceptable for s in statuses) else _EXIT_FAILED


def _down(args: argparse.Namespace) -> int:
    supervisor = Supervisor(_config(), say=_say)
    results = supervisor.down(args.only, purge=args.purge)
    stopped = [r.name for r in results if r.action != "not running"]
    print(f"stack down ({supervisor.layout.home}): {', '.join(stopped) or 'nothing was running'}")
    return 0


def _envoy_config(args: argparse.Namespace) -> int:
    config = StackConfig() if args.defaults else _config()
    text = render_envoy_config(config)
    if args.check is not None:
        current = args.check.read_text() if args.check.is_file() else ""
        if current != text:
            print(
                f"ragmesh: {args.check} differs from the rendering; "
                f"regenerate with: ragmesh envoy-config {'--defaults ' if args.defaults else ''}--output {args.check}",
                file=sys.stderr,
            )
            return _EXIT_FAILED
        return 0
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def register(subparsers: Any) -> None:
    """Add up, status, down and envoy-config to the ``ragmesh`` parser."""
    parts_help = f"comma-separated parts ({', '.join(PART_NAMES)}, ray_worker_<i>)"

    up = subparsers.add_parser(
        "up", help="start the local stack (idempotent)", description="Start the local stack in dependency order."
    )
    up.add_argument("--only", type=_part_list, metavar="PARTS", help=f"{parts_help}; their requirements start too")
    up.add_argument("--no-deps", action="store_true", help="with --only: do not start what the parts require")
    up.add_argument(
        "--ray-workers",
        type=int,
        metavar="N",
        help=f"also start N Ray worker nodes (0-{MAX_RAY_WORKERS}) dealt into RAGMESH_RAY_WORKER_GROUPS "
        "(default parse,embed); default RAGMESH_RAY_WORKERS, else 0",
    )
    up.set_defaults(func=lambda args: _guarded(args, _up))

    status = subparsers.add_parser("status", help="show which parts run and are healthy")
    status.add_argument("--json", action="store_true", help='print {"parts": [...]} as JSON')
    status.add_argument("--only", type=_part_list, metavar="PARTS", help=parts_help)
    status.set_defaults(func=lambda args: _guarded(args, _status))

    down = subparsers.add_parser("down", help="stop the local stack (keeps data)")
    down.add_argument("--purge", action="store_true", help="also delete the data of the stopped parts")
    down.add_argument("--only", type=_part_list, metavar="PARTS", help=parts_help)
    down.set_defaults(func=lambda args: _guarded(args, _down))

    envoy = subparsers.add_parser("envoy-config", help="render the Envoy edge config from the stack config")
    envoy.add_argument("--defaults", action="store_true", help="render the default config (envoy/envoy.yaml)")
    target = envoy.add_mutually_exclusive_group()
    target.add_argument("--output", type=Path, metavar="FILE", help="write to FILE instead of stdout")
    target.add_argument("--check", type=Path, metavar="FILE", help="exit 1 if FILE differs from the rendering")
    envoy.set_defaults(func=lambda args: _guarded(args, _envoy_config))
