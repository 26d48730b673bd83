"""Checks a request against the configured bounds and works out the limits it runs under.

Every broken rule becomes one ``FieldViolation`` (field path and the bound it broke), and
all of them are reported together in a single InvalidArgument, so a caller can fix a
request in one round trip. The proto declares the static rules too; these checks also
cover what depends on configuration, and keep the domain safe when called directly.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from mesh.errors import FieldViolation, InvalidArgument
from svc_sandbox.domain.model import CODE_FILE_NAME, EffectiveLimits, ExecutionRequest

if TYPE_CHECKING:
    from svc_sandbox.domain.settings import SandboxSettings

VALIDATION_FAILED = "VALIDATION_FAILED"
"""ErrorInfo reason of every InvalidArgument raised here (as in ``mesh.validation``)."""

MAX_FILE_NAME_CHARS = 128
"""Longest input file name."""

# Plain names only: no separators, no NUL, nothing a shell or a path join could reinterpret.
_FILE_NAME = re.compile(r"[A-Za-z0-9._-]+")


def _check_file_name(name: str) -> str | None:
    """Why ``name`` cannot be an input file name, or None when it can."""
    if not name:
        return "must not be empty"
    if len(name) > MAX_FILE_NAME_CHARS:
        return f"must be at most {MAX_FILE_NAME_CHARS} characters"
    if not _FILE_NAME.fullmatch(name):
        return "may hold only letters, digits, '.', '_' and '-' (no path separators)"
    if name in (".", ".."):
        return "must not be '.' or '..'"
    if name == CODE_FILE_NAME:
        return f"{CODE_FILE_NAME!r} is reserved for the code"
    return None


def _bounded(
    violations: list[FieldViolation],
    field: str,
    requested: int | None,
    default: int,
    low: int,
    high: int,
    unit: str,
) -> int:
    """The requested value or the default; records a violation when out of [low, high]."""
    if requested is None:
        return default
    if requested < low:
        violations.append(FieldViolation(field, f"must be at least {low} {unit}"))
    elif requested > high:
        violations.append(FieldViolation(field, f"must be at most {high} {unit} (the configured maximum)"))
    return requested


def resolve(request: ExecutionRequest, config: SandboxSettings) -> EffectiveLimits:
    """Validate ``request`` and return the limits it will run under.

    Raises InvalidArgument (reason ``VALIDATION_FAILED``) with one violation per broken
    rule: empty or oversized code, oversized stdin, bad or oversized input files, and
    limits outside the configured bounds.
    """
    violations: list[FieldViolation] = []

    if not request.code.strip():
        violations.append(FieldViolation("code", "must not be empty"))
    try:
        code_bytes = len(request.code.encode("utf-8"))
    except UnicodeEncodeError:
        violations.append(FieldViolation("code", "must be valid Unicode (lone surrogates are not)"))
        code_bytes = 0
    if code_bytes > config.max_code_bytes:
        violations.append(
            FieldViolation("code", f"is {code_bytes} bytes; must be at most {config.max_code_bytes} bytes")
        )

    if len(request.stdin) > config.max_stdin_bytes:
        violations.append(
            FieldViolation("stdin", f"is {len(request.stdin)} bytes; must be at most {config.max_stdin_bytes} bytes")
        )

    if len(request.files) > config.max_input_files:
        violations.append(
            FieldViolation("files", f"has {len(request.files)} files; at most {config.max_input_files} are allowed")
        )
    total = 0
    for name, content in request.files.items():
        problem = _check_file_name(name)
        if problem is not None:
            violations.append(FieldViolation(f"files[{name!r}].name", problem))
        total += len(content)
        if len(content) > config.max_input_file_bytes:
            violations.append(
                FieldViolation(
                    f"files[{name!r}].content",
                    f"is {len(content)} bytes; must be at most {config.max_input_file_bytes} bytes",
                )
            )
    if total > config.max_input_total_bytes:
        violations.append(
            FieldViolation("files", f"total {total} bytes; must be at most {config.max_input_total_bytes} bytes")
        )

    asked = request.limits
    limits = EffectiveLimits(
        wall_timeout_ms=_bounded(
            violations,
            "limits.wall_timeout_ms",
            asked.wall_timeout_ms,
            config.default_wall_timeout_ms,
            1,
            config.max_wall_timeout_ms,
            "ms",
        ),
        cpu_time_ms=_bounded(
            violations,
            "limits.cpu_time_ms",
            asked.cpu_time_ms,
            config.default_cpu_time_ms,
            1,
            config.max_cpu_time_ms,
            "ms",
        ),
        memory_bytes=_bounded(
            violations,
            "limits.memory_bytes",
            asked.memory_bytes,
            config.default_memory_bytes,
            config.min_memory_bytes,
            config.max_memory_bytes,
            "bytes",
        ),
        output_bytes=_bounded(
            violations,
            "limits.output_bytes",
            asked.output_bytes,
            config.default_output_bytes,
            1,
            config.max_output_bytes,
            "bytes",
        ),
        file_size_bytes=config.max_file_size_bytes,
        processes=config.max_processes,
        open_files=config.max_open_files,
    )

    if violations:
        summary = "; ".join(f"{v.field}: {v.description}" for v in violations[:5])
        raise InvalidArgument(f"invalid execution request: {summary}", reason=VALIDATION_FAILED, violations=violations)
    return limits
