"""Ray worker node parts: names, groups, launch, ordering, config checks and the alive-by-name probe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mesh.config import ConfigError
from mesh.stack import Supervisor
from mesh.stack.config import PART_NAMES, StackConfig, is_part_name, ray_worker_index
from mesh.stack.layout import StackLayout
from mesh.stack.parts import RayWorkerPart, build_parts
from mesh.stack.probes import _proto_varint_field, proto_submessages


def _config(tmp_path: Path, **values: object) -> StackConfig:
    return StackConfig(home=tmp_path / "home", tools_dir=tmp_path / "tools", **values)  # type: ignore[arg-type]


def test_workers_follow_the_head_and_are_dealt_into_groups(tmp_path: Path) -> None:
    config = _config(tmp_path, ray_workers=3)
    parts = build_parts(config, StackLayout(config.home))
    names = list(parts)
    assert names[names.index("ray") + 1 : names.index("ray") + 4] == ["ray_worker_1", "ray_worker_2", "ray_worker_3"]
    groups = [p.group for p in parts.values() if isinstance(p, RayWorkerPart)]
    assert groups == ["parse", "embed", "parse"]
    assert [n for n in names if n in PART_NAMES] == list(PART_NAMES)


def test_worker_launch_joins_the_head_with_its_group_resource_and_own_ports(tmp_path: Path) -> None:
    config = _config(tmp_path, ray_workers=2, ray_gcs_port=41380, ray_worker_port_base=41400)
    part = build_parts(config, StackLayout(config.home))["ray_worker_2"]
    launch = part.launch()
    argv = launch.argv
    assert argv[1:3] == ["start", "--block"]
    assert "--head" not in argv
    assert "--address=127.0.0.1:41380" in argv
    assert "--node-name=ray_worker_2" in argv
    assert "--num-cpus=0" in argv
    assert f"--resources={json.dumps({'embed': 2})}" in argv
    assert "--labels=ragmesh.io/group=embed" in argv
    assert "--dashboard-agent-listen-port=41404" in argv
    assert "--dashboard-agent-grpc-port=41405" in argv
    assert "--metrics-export-port=41406" in argv
    assert "--runtime-env-agent-port=41407" in argv
    assert f"--object-store-memory={100 * 1024 * 1024}" in argv
    temp = next(a for a in argv if a.startswith("--temp-dir="))
    assert temp.endswith("ray_worker_2") or "ray-worker-2" in temp
    assert launch.env["RAY_AUTH_MODE"] == "token"
    assert [p.port for p in part.ports()] == [41404, 41405, 41406, 41407]
    assert part.requires == ("ray",) and part.restart_with == ("ray",)


def test_up_starts_the_workers_with_the_head_and_only_selects_exactly(tmp_path: Path) -> None:
    supervisor = Supervisor(_config(tmp_path, ray_workers=2))
    plan = supervisor.plan()
    assert plan.index("ray") < plan.index("ray_worker_1") < plan.index("ray_worker_2") < plan.index("svc_inference")
    assert supervisor.plan(["ray_worker_2"]) == ["ray", "ray_worker_2"]
    assert supervisor.plan(["ray"]) == ["ray"]
    assert "ray_worker_1" not in Supervisor(_config(tmp_path)).plan()


def test_down_finds_workers_an_earlier_up_started(tmp_path: Path) -> None:
    config = _config(tmp_path)
    layout = StackLayout(config.home)
    layout.run_dir.mkdir(parents=True)
    layout.pid_file("ray_worker_3").write_text("{}")
    assert "ray_worker_3" in Supervisor(config).names


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"ray_workers": 9}, "RAGMESH_RAY_WORKERS"),
        ({"ray_workers": -1}, "RAGMESH_RAY_WORKERS"),
        ({"ray_workers": 1, "ray_worker_groups": ()}, "RAGMESH_RAY_WORKER_GROUPS"),
        ({"ray_worker_groups": ("parse", "CPU")}, "RAGMESH_RAY_WORKER_GROUPS"),
        ({"ray_worker_groups": ("a b",)}, "RAGMESH_RAY_WORKER_GROUPS"),
        ({"ray_worker_object_store_mb": 10}, "OBJECT_STORE_MB"),
        ({"ray_worker_slots": 0}, "RAGMESH_RAY_WORKER_SLOTS"),
    ],
)
def test_bad_worker_settings_are_refused(tmp_path: Path, values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _config(tmp_path, **values)


def test_worker_settings_from_the_environment(tmp_path: Path) -> None:
    config = StackConfig.from_env(
        {"RAGMESH_RAY_WORKERS": "4", "RAGMESH_RAY_WORKER_GROUPS": "parse,embed,graph"}, home=tmp_path
    )
    assert config.ray_worker_names == ("ray_worker_1", "ray_worker_2", "ray_worker_3", "ray_worker_4")
    assert [config.ray_worker_group(i) for i in range(1, 5)] == ["parse", "embed", "graph", "parse"]


def test_worker_part_names() -> None:
    assert ray_worker_index("ray_worker_12") == 12
    assert ray_worker_index("ray_worker_0") is None
    assert ray_worker_index("ray") is None
    assert is_part_name("ray_worker_8") and not is_part_name("ray_worker_9") and is_part_name("svc_agent")


def _node(name: str, state: int) -> bytes:
    encoded = name.encode()
    body = b"\x0a\x02id" + bytes([12 << 3 | 2, len(encoded)]) + encoded
    return body + (bytes([7 << 3, state]) if state else b"")


def test_node_list_is_read_by_name_and_state() -> None:
    nodes = [_node("ray_worker_1", 1), _node("ray_worker_1", 0), _node("head", 0)]
    reply = b"".join(b"\x12" + bytes([len(n)]) + n for n in nodes)
    found = proto_submessages(reply, 2)
    assert len(found) == 3
    assert [proto_submessages(n, 12)[0] for n in found] == [b"ray_worker_1", b"ray_worker_1", b"head"]
    assert [_proto_varint_field(n, 7) for n in found] == [1, 0, 0]
