"""Sandbox domain: isolated execution of untrusted Python (plain Python, no gRPC).

Public API (see ``sandbox.py`` for how the servicer uses it):

* ``Sandbox`` — ``await Sandbox.start(config)``, ``await sandbox.execute(request, tenant=...)``,
  ``sandbox.stream_execute(request, tenant=...)``;
* values — ``ExecutionRequest``, ``ResourceLimits``, ``ExecutionResult``, ``StopReason``,
  ``OutputChunk``, ``OutputStream``, ``ExecutionEvent``, ``EffectiveLimits``;
* fair use — ``Admission`` and its ResourceExhausted reasons;
* isolation — ``IsolationMode``, ``Isolation``, ``decide_isolation`` and the startup reasons;
* ``run_benchmark`` — empty-execution latency against a bare interpreter.
"""

from svc_sandbox.domain.admission import (
    SANDBOX_QUEUE_FULL,
    SANDBOX_QUEUE_TIMEOUT,
    TENANT_CONCURRENCY_LIMIT,
    Admission,
    AdmissionStats,
)
from svc_sandbox.domain.bench import run_benchmark
from svc_sandbox.domain.isolation import (
    BWRAP_APT_PACKAGE,
    BWRAP_MISSING,
    PYTHON_MISSING,
    SELF_TEST_FAILED,
    Isolation,
    IsolationMode,
    decide_isolation,
)
from svc_sandbox.domain.model import (
    EffectiveLimits,
    ExecutionEvent,
    ExecutionRequest,
    ExecutionResult,
    OutputChunk,
    OutputStream,
    ResourceLimits,
    StopReason,
)
from svc_sandbox.domain.sandbox import ProcessRunner, Runner, Sandbox
from svc_sandbox.domain.validation import VALIDATION_FAILED, resolve

__all__ = [
    "BWRAP_APT_PACKAGE",
    "BWRAP_MISSING",
    "PYTHON_MISSING",
    "SANDBOX_QUEUE_FULL",
    "SANDBOX_QUEUE_TIMEOUT",
    "SELF_TEST_FAILED",
    "TENANT_CONCURRENCY_LIMIT",
    "VALIDATION_FAILED",
    "Admission",
    "AdmissionStats",
    "EffectiveLimits",
    "ExecutionEvent",
    "ExecutionRequest",
    "ExecutionResult",
    "Isolation",
    "IsolationMode",
    "OutputChunk",
    "OutputStream",
    "ProcessRunner",
    "ResourceLimits",
    "Runner",
    "Sandbox",
    "StopReason",
    "decide_isolation",
    "resolve",
    "run_benchmark",
]
