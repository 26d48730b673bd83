"""The jaeger part and how tracing is switched on: what it runs, and that a stack without it runs untraced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mesh.cli import main
from mesh.stack.config import StackConfig
from mesh.stack.jaeger_config import jaeger_config, tail_sampling
from mesh.stack.layout import StackLayout
from mesh.stack.parts import EnvoyPart, JaegerPart, RayPart, build_parts
from mesh.stack.service_env import otlp_endpoint, service_env


def _go_home_with_jaeger(tmp_path: Path) -> Path:
    binary = tmp_path / "go" / "bin" / "jaeger"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\nexit 1\n")
    binary.chmod(0o755)
    return tmp_path / "go"


def test_jaeger_binds_only_its_configured_ports_on_the_stack_host(tmp_path: Path) -> None:
    config = StackConfig(
        home=tmp_path / "h",
        go_home=_go_home_with_jaeger(tmp_path),
        jaeger_otlp_grpc_port=41317,
        jaeger_query_port=41686,
        jaeger_query_grpc_port=41685,
    )
    part = JaegerPart(config, StackLayout(config.home))
    part.prepare(lambda _m: None)
    doc = yaml.safe_load(part.config_file.read_text())
    assert doc["receivers"] == {"otlp": {"protocols": {"grpc": {"endpoint": "127.0.0.1:41317"}}}}
    query = doc["extensions"]["jaeger_query"]
    assert (query["http"]["endpoint"], query["grpc"]["endpoint"]) == ("127.0.0.1:41686", "127.0.0.1:41685")
    assert list(doc["extensions"]["jaeger_storage"]["backends"].values()) == [{"memory": {"max_traces": 50_000}}]
    # Its own telemetry would bind fixed ports a second stack on the machine holds.
    assert doc["service"]["telemetry"]["metrics"] == {"level": "none"}
    assert doc["service"]["extensions"] == ["jaeger_storage", "jaeger_query"]
    assert part.launch().argv == [str(tmp_path / "go" / "bin" / "jaeger"), f"--config={part.config_file}"]
    assert [spec.port for spec in part.ports()] == [41317, 41686, 41685]
    assert part.optional


def test_tracing_is_on_only_when_jaeger_is_built_configured_and_wanted(tmp_path: Path) -> None:
    without = StackConfig(home=tmp_path / "h", go_home=tmp_path / "empty")
    assert otlp_endpoint(without) == ""
    go_home = _go_home_with_jaeger(tmp_path)
    on = StackConfig(home=tmp_path / "h", go_home=go_home, jaeger_otlp_grpc_port=41317)
    assert otlp_endpoint(on) == "127.0.0.1:41317"
    assert otlp_endpoint(StackConfig(home=tmp_path / "h", go_home=go_home, tracing=False)) == ""
    assert otlp_endpoint(StackConfig(home=tmp_path / "h", go_home=go_home, parts=("redis",))) == ""


def test_every_service_envoy_and_the_ray_workers_export_where_tracing_points(tmp_path: Path) -> None:
    config = StackConfig(home=tmp_path / "h", go_home=_go_home_with_jaeger(tmp_path), trace_sample_ratio=0.5)
    layout = StackLayout(config.home)
    env = service_env(config, layout, "svc_agent")
    # Services record every request; the ratio is the collector's (tail sampling), not the head's.
    assert (env["RAGMESH_OTEL_ENDPOINT"], env["RAGMESH_OTEL_SAMPLE_RATIO"]) == ("127.0.0.1:54317", "1.0")
    assert RayPart(config, layout).launch().env["RAGMESH_OTEL_ENDPOINT"] == "127.0.0.1:54317"
    assert "envoy.tracers.opentelemetry" in EnvoyPart(config, layout).config_text()

    untraced = StackConfig(home=tmp_path / "h", go_home=tmp_path / "empty")
    assert "RAGMESH_OTEL_ENDPOINT" not in service_env(untraced, layout, "svc_agent")
    assert "RAGMESH_OTEL_ENDPOINT" not in RayPart(untraced, layout).launch().env
    assert "tracing:" not in EnvoyPart(untraced, layout).config_text()


def test_jaeger_starts_before_the_parts_that_export_to_it(tmp_path: Path) -> None:
    parts = build_parts(StackConfig(home=tmp_path / "h"), StackLayout(tmp_path / "h"))
    for name in ("ray", "svc_agent", "svc_inference", "envoy"):
        assert "jaeger" in parts[name].after, name


def test_a_stack_without_jaeger_reports_tracing_off_and_stays_acceptable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RAGMESH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RAGMESH_GO_HOME", str(tmp_path / "empty"))
    monkeypatch.setenv("RAGMESH_PARTS", "jaeger")
    assert main(["status", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (jaeger,) = doc["parts"]
    assert (jaeger["state"], jaeger["healthy"]) == ("not installed", False)
    assert "tracing is off" in jaeger["detail"]
    assert doc["tracing"]["on"] is False
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "tracing: off (jaeger is not installed" in out


def test_up_skips_a_missing_jaeger_and_says_tracing_is_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RAGMESH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RAGMESH_GO_HOME", str(tmp_path / "empty"))
    assert main(["up", "--only", "jaeger"]) == 0
    out = capsys.readouterr().out
    assert "jaeger: not installed, skipped: tracing is off" in out
    assert "install-go-tools.sh jaeger" in out
    assert not (tmp_path / "home" / "run" / "jaeger.pid").exists()


def test_every_trace_is_kept_locally_with_no_tail_sampler() -> None:
    pipeline = jaeger_config(StackConfig())["service"]["pipelines"]["traces"]
    assert pipeline["processors"] == ["batch"]
    assert tail_sampling(StackConfig()) is None


def test_below_ratio_one_the_collector_keeps_failed_slow_and_a_share_of_the_rest() -> None:
    config = StackConfig(trace_sample_ratio=0.1, trace_keep_slower_than_ms=1500, trace_decision_wait_s=20)
    rendered = jaeger_config(config)
    assert rendered["service"]["pipelines"]["traces"]["processors"] == ["tail_sampling", "batch"]
    tail = rendered["processors"]["tail_sampling"]
    assert tail["decision_wait"] == "20s"
    policies = {p["type"]: p for p in tail["policies"]}
    assert policies["status_code"]["status_code"] == {"status_codes": ["ERROR"]}
    assert policies["latency"]["latency"] == {"threshold_ms": 1500}
    assert policies["probabilistic"]["probabilistic"] == {"sampling_percentage": 10.0}


@pytest.mark.parametrize(
    ("field", "value"),
    [("trace_sample_ratio", 1.5), ("trace_keep_slower_than_ms", 0), ("trace_decision_wait_s", 0.0)],
)
def test_sampling_settings_out_of_range_are_refused(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"RAGMESH_{field.upper()}"):
        StackConfig(**{field: value})
