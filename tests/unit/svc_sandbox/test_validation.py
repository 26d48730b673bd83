"""Request validation: bounds, defaults, file names, and one violation per broken rule."""

from __future__ import annotations

import pytest

from mesh.errors import InvalidArgument
from svc_sandbox.domain import ExecutionRequest, ResourceLimits, resolve
from svc_sandbox.domain.settings import SandboxSettings
from svc_sandbox.domain.validation import VALIDATION_FAILED

CONFIG = SandboxSettings(
    max_wall_timeout_ms=10_000,
    default_wall_timeout_ms=2_000,
    max_code_bytes=100,
    max_stdin_bytes=10,
    max_input_files=2,
    max_input_file_bytes=5,
    max_input_total_bytes=8,
)


def _violations(request: ExecutionRequest) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as error:
        resolve(request, CONFIG)
    assert error.value.reason == VALIDATION_FAILED
    return {v.field: v.description for v in error.value.violations}


def test_defaults_fill_missing_limits() -> None:
    limits = resolve(ExecutionRequest(code="print(1)"), CONFIG)
    assert limits.wall_timeout_ms == 2_000
    assert limits.cpu_time_ms == CONFIG.default_cpu_time_ms
    assert limits.memory_bytes == CONFIG.default_memory_bytes
    assert limits.output_bytes == CONFIG.default_output_bytes
    assert limits.processes == CONFIG.max_processes
    assert limits.file_size_bytes == CONFIG.max_file_size_bytes


def test_requested_limits_within_bounds_are_kept() -> None:
    asked = ResourceLimits(
        wall_timeout_ms=10_000, cpu_time_ms=1500, memory_bytes=CONFIG.min_memory_bytes, output_bytes=1
    )
    limits = resolve(ExecutionRequest(code="x", limits=asked), CONFIG)
    assert (limits.wall_timeout_ms, limits.cpu_time_ms, limits.memory_bytes, limits.output_bytes) == (
        10_000,
        1500,
        CONFIG.min_memory_bytes,
        1,
    )
    assert limits.cpu_time_whole_s == 2  # RLIMIT_CPU counts whole seconds, rounded up


@pytest.mark.parametrize(
    ("limits", "field", "words"),
    [
        (ResourceLimits(wall_timeout_ms=10_001), "limits.wall_timeout_ms", "at most 10000 ms"),
        (ResourceLimits(wall_timeout_ms=0), "limits.wall_timeout_ms", "at least 1 ms"),
        (ResourceLimits(cpu_time_ms=CONFIG.max_cpu_time_ms + 1), "limits.cpu_time_ms", "configured maximum"),
        (ResourceLimits(memory_bytes=CONFIG.max_memory_bytes + 1), "limits.memory_bytes", "at most"),
        (ResourceLimits(memory_bytes=1024), "limits.memory_bytes", f"at least {CONFIG.min_memory_bytes}"),
        (ResourceLimits(output_bytes=CONFIG.max_output_bytes + 1), "limits.output_bytes", "at most"),
    ],
)
def test_limits_outside_the_bounds_name_field_and_bound(limits: ResourceLimits, field: str, words: str) -> None:
    found = _violations(ExecutionRequest(code="x", limits=limits))
    assert list(found) == [field]
    assert words in found[field]


@pytest.mark.parametrize("code", ["", "   \n"])
def test_empty_code_is_rejected(code: str) -> None:
    assert "code" in _violations(ExecutionRequest(code=code))


def test_oversized_code_and_stdin_are_rejected() -> None:
    found = _violations(ExecutionRequest(code="é" * 51, stdin=b"x" * 11))  # 102 bytes of UTF-8
    assert "102 bytes" in found["code"]
    assert "stdin" in found


def test_code_that_is_not_encodable_is_rejected() -> None:
    assert "code" in _violations(ExecutionRequest(code="\ud800"))


@pytest.mark.parametrize("name", ["../x", "a/b", "/etc", "..", ".", "", "main.py", "a b", "x\0y", "é", "n" * 129])
def test_bad_file_names_are_rejected(name: str) -> None:
    found = _violations(ExecutionRequest(code="x", files={name: b""}))
    assert list(found) == [f"files[{name!r}].name"]


@pytest.mark.parametrize("name", ["data.csv", ".hidden", "a-b_c.1", "n" * 128])
def test_plain_file_names_are_accepted(name: str) -> None:
    resolve(ExecutionRequest(code="x", files={name: b"1"}), CONFIG)


def test_file_count_and_sizes_are_bounded() -> None:
    found = _violations(ExecutionRequest(code="x", files={"a": b"123456", "b": b"1234", "c": b""}))
    assert "3 files" in found["files"] or "total" in found["files"]
    assert "files['a'].content" in found


def test_total_input_size_is_bounded() -> None:
    found = _violations(ExecutionRequest(code="x", files={"a": b"12345", "b": b"12345"}))
    assert "total 10 bytes" in found["files"]


def test_every_broken_rule_is_reported_at_once() -> None:
    request = ExecutionRequest(
        code="",
        stdin=b"x" * 11,
        files={"../x": b"123456"},
        limits=ResourceLimits(wall_timeout_ms=0, memory_bytes=1),
    )
    assert set(_violations(request)) == {
        "code",
        "stdin",
        "files['../x'].name",
        "files['../x'].content",
        "limits.wall_timeout_ms",
        "limits.memory_bytes",
    }


def test_request_files_cannot_be_changed_after_creation() -> None:
    files = {"a": b"1"}
    request = ExecutionRequest(code="x", files=files)
    files["b"] = b"2"
    assert dict(request.files) == {"a": b"1"}
    with pytest.raises(TypeError):
        request.files["c"] = b"3"  # type: ignore[index]
