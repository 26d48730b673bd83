"""This process's own credential: the service token it presents on internal calls.

The platform hands each service a token in a file (``ragmesh up`` mints one
per service under the stack's secrets folder; on Kubernetes it is a mounted
secret) and names the file in ``RAGMESH_AUTH_SERVICE_TOKEN_FILE``. The file is
re-read when it changes, so a re-minted token needs no restart.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

ENV_VAR = "RAGMESH_AUTH_SERVICE_TOKEN_FILE"

_lock = threading.Lock()
_state: dict[str, object] = {}


def set_service_token_file(path: Path | None) -> None:
    """Points this process at its token file (None: back to the environment variable)."""
    with _lock:
        _state.clear()
        if path is not None:
            _state["path"] = path


def _path() -> Path | None:
    configured = _state.get("path")
    if isinstance(configured, Path):
        return configured
    raw = os.environ.get(ENV_VAR, "")
    return Path(raw) if raw else None


def service_token() -> str | None:
    """The current service token, or None when this process has none."""
    with _lock:
        path = _path()
        if path is None:
            return None
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            return None
        if _state.get("mtime") != mtime or _state.get("file") != path:
            _state["token"] = path.read_text().strip()
            _state["mtime"] = mtime
            _state["file"] = path
        token = _state.get("token")
        return token if isinstance(token, str) and token else None
