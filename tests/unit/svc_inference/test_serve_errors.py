from __future__ import annotations

import pickle

from ray import exceptions as ray_errors
from ray.serve import exceptions as serve_errors

from mesh.errors import Cancelled, Code, FieldViolation, InvalidArgument, MeshError, ResourceExhausted, Unavailable
from svc_inference.serve.errors import to_mesh_error


def test_domain_errors_survive_pickling_with_their_details() -> None:
    error = InvalidArgument(
        "too long", reason="TEXT_TOO_LONG", metadata={"max_tokens": "256"}, violations=[FieldViolation("texts[0]", "x")]
    )
    back = pickle.loads(pickle.dumps(error))
    assert (back.code, back.reason, dict(back.metadata), list(back.violations)) == (
        Code.INVALID_ARGUMENT,
        "TEXT_TOO_LONG",
        {"max_tokens": "256"},
        [FieldViolation("texts[0]", "x")],
    )


def test_a_domain_error_from_a_replica_is_unwrapped() -> None:
    cause = InvalidArgument("bad", reason="PROMPT_TOO_LONG")
    wrapped = ray_errors.RayTaskError("generate", "Traceback ...", cause)
    assert to_mesh_error(wrapped, "m") is cause
    assert to_mesh_error(wrapped.as_instanceof_cause(), "m") is cause


def test_a_full_queue_is_resource_exhausted() -> None:
    mapped = to_mesh_error(serve_errors.BackPressureError(num_queued_requests=1, max_queued_requests=1), "m")
    assert isinstance(mapped, ResourceExhausted) and mapped.reason == "QUEUE_FULL"


def test_a_dead_replica_is_unavailable() -> None:
    mapped = to_mesh_error(ray_errors.ActorDiedError(), "m")
    assert isinstance(mapped, Unavailable) and mapped.reason == "BACKEND_UNAVAILABLE"
    assert isinstance(to_mesh_error(serve_errors.ReplicaUnavailableError("replica-1"), "m"), Unavailable)


def test_a_bug_in_model_code_is_internal() -> None:
    wrapped = ray_errors.RayTaskError("embed", "Traceback ...", ZeroDivisionError("boom"))
    mapped = to_mesh_error(wrapped, "m")
    assert isinstance(mapped, MeshError) and mapped.code is Code.INTERNAL and mapped.reason == "MODEL_ERROR"


def test_cancellation_is_cancelled() -> None:
    assert isinstance(to_mesh_error(serve_errors.RequestCancelledError("req"), "m"), Cancelled)


def test_other_exceptions_pass_through() -> None:
    error = KeyError("x")
    assert to_mesh_error(error, "m") is error
