"""Ray and Ray Serve failures as the mesh's domain errors.

- A domain error raised inside a replica (bad input the model found) comes back
  wrapped in RayTaskError: the original is unwrapped, so INVALID_ARGUMENT stays
  INVALID_ARGUMENT.
- The caller-side queue of a deployment being full (max_queued_requests) is
  RESOURCE_EXHAUSTED.
- A replica that died, or none being available, is UNAVAILABLE (the one
  retryable code); Serve's controller replaces the replica meanwhile.
- Anything else raised by model code is a bug: INTERNAL.
"""

from __future__ import annotations

import logging

from mesh.errors import Cancelled, Code, MeshError, ResourceExhausted, Unavailable

log = logging.getLogger(__name__)


def to_mesh_error(exc: BaseException, model: str) -> BaseException:
    """The domain error for ``exc``, raised while calling ``model``'s deployment."""
    from ray import exceptions as ray_errors
    from ray.serve import exceptions as serve_errors

    if isinstance(exc, ray_errors.RayTaskError):
        cause = exc.cause
        if isinstance(cause, MeshError):
            return _plain(cause)
        if isinstance(cause, ray_errors.RayError):
            return to_mesh_error(cause, model)
        log.error("model %s raised %s: %s", model, type(cause).__name__, cause)
        return MeshError(
            f"model {model} failed: {type(cause).__name__}: {cause}",
            reason="MODEL_ERROR",
            metadata={"model": model},
            code=Code.INTERNAL,
        )
    if isinstance(exc, MeshError):
        return exc
    if isinstance(exc, serve_errors.BackPressureError):
        return ResourceExhausted(
            f"model {model} is busy: its queue is full; retry later",
            reason="QUEUE_FULL",
            metadata={"model": model},
        )
    if isinstance(exc, (serve_errors.RequestCancelledError, ray_errors.TaskCancelledError)):
        return Cancelled(f"the request to model {model} was cancelled", metadata={"model": model})
    if isinstance(
        exc,
        (
            ray_errors.RayActorError,
            ray_errors.WorkerCrashedError,
            ray_errors.NodeDiedError,
            ray_errors.LocalRayletDiedError,
            ray_errors.ObjectLostError,
            serve_errors.DeploymentUnavailableError,
            serve_errors.ReplicaUnavailableError,
        ),
    ):
        return Unavailable(
            f"model {model} is unavailable: its replica stopped ({type(exc).__name__}); Ray Serve is replacing it",
            reason="BACKEND_UNAVAILABLE",
            metadata={"model": model},
        )
    if isinstance(exc, ray_errors.RayError):
        return Unavailable(
            f"model {model} is unavailable: {type(exc).__name__}",
            reason="BACKEND_UNAVAILABLE",
            metadata={"model": model},
        )
    return exc


def _plain(error: MeshError) -> MeshError:
    # Ray may hand back a class that inherits from both RayTaskError and the error's own class,
    # with Ray's traceback text as its message; rebuild the plain domain error.
    if type(error).__module__.startswith("ray"):
        plain = MeshError.__new__(MeshError)
        MeshError.__init__(
            plain, error.message, error.reason, dict(error.metadata), tuple(error.violations), error.code
        )
        return plain
    return error
