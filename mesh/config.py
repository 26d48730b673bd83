"""Configuration base: frozen dataclasses filled from the environment in one place.

Each service declares ``@dataclass(frozen=True) class Config(EnvConfig)`` with a
docstring per field and units in field names (``timeout_s``); ``Config.from_env()``
reads ``<PREFIX>_<FIELD_NAME_UPPER>`` for every field and converts it to the
field's type. Nothing else in a service reads ``os.environ``.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value from the environment could not be used."""


def _convert(raw: str, typ: Any, name: str) -> Any:
    origin = typing.get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if raw == "":
            return None
        return _convert(raw, args[0], name)
    if origin in (tuple, list):
        (inner, *_) = typing.get_args(typ) or (str,)
        items = [_convert(item.strip(), inner, name) for item in raw.split(",") if item.strip()]
        return tuple(items) if origin is tuple else items
    if typ is bool:
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{name}: expected a boolean, got {raw!r}")
    if typ in (int, float):
        try:
            return typ(raw)
        except ValueError as exc:
            raise ConfigError(f"{name}: expected {typ.__name__}, got {raw!r}") from exc
    if typ is Path:
        return Path(raw).expanduser()
    if typ is str:
        return raw
    raise ConfigError(f"{name}: unsupported config type {typ!r}")


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """Base for service configs; subclasses set ``env_prefix``."""

    env_prefix: ClassVar[str] = "RAGMESH"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        """Build the config from ``environ`` (default ``os.environ``), then apply overrides."""
        env = os.environ if environ is None else environ
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            key = f"{cls.env_prefix}_{f.name.upper()}"
            if key in env:
                values[f.name] = _convert(env[key], hints[f.name], key)
        values.update(overrides)
        return cls(**values)

    def env_vars(self) -> dict[str, str]:
        """The environment variables that reproduce this config (for child processes)."""
        out: dict[str, str] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if isinstance(value, (tuple, list)):
                text = ",".join(str(v) for v in value)
            elif isinstance(value, bool):
                text = "true" if value else "false"
            else:
                text = str(value)
            out[f"{self.env_prefix}_{f.name.upper()}"] = text
        return out
