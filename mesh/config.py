"""Configuration base: frozen dataclasses filled from the environment in one place.

Each service declares ``@dataclass(frozen=True) class Config(EnvConfig)`` with a
docstring per field and units in field names (``timeout_s``); ``Config.from_env()``
reads ``<PREFIX>_<FIELD_NAME_UPPER>`` for every field and converts it to the
field's type. Nothing else in a service reads ``os.environ``.

A field whose type is a plain frozen dataclass (a domain's settings) is nested:
its own fields are read under the same prefix, as if declared on the config
itself, so each setting is declared once (in the domain) and keeps its flat
variable name (``RAGMESH_AGENT_DEFAULT_TOP_K`` fills ``config.settings.default_top_k``).
Names must not repeat across the nesting.
"""

from __future__ import annotations

import dataclasses
import enum
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
    if isinstance(typ, type) and issubclass(typ, enum.Enum):
        allowed = [str(member.value) for member in typ]
        for member in typ:
            if str(member.value) == raw.strip():
                return member
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, not {raw!r}")
    if typ is str:
        return raw
    raise ConfigError(f"{name}: unsupported config type {typ!r}")


def _nested(typ: Any) -> bool:
    """Whether a field of this type is a nested settings dataclass (read flat, under the same prefix)."""
    return isinstance(typ, type) and dataclasses.is_dataclass(typ)


def _settings_fields(cls: type) -> list[tuple[str, Any]]:
    """(name, type) of every setting of ``cls``, nested settings flattened; names must be unique."""
    hints = typing.get_type_hints(cls)
    out: list[tuple[str, Any]] = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        typ = hints[f.name]
        out.extend(_settings_fields(typ) if _nested(typ) else [(f.name, typ)])
    names = [name for name, _ in out]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise TypeError(f"{cls.__name__}: settings declared twice across its nesting: {', '.join(repeated)}")
    return out


def _build(cls: type[T], flat: dict[str, Any], direct: dict[str, Any], base: Any = None) -> T:
    """``cls`` from flat setting values over ``base`` (or the fields' defaults).

    A nested settings object is built from the same flat values, over its field's default.
    """
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if not f.init:
            continue
        if f.name in direct:
            values[f.name] = direct[f.name]
        elif _nested(hints[f.name]):
            if base is not None:
                inner = getattr(base, f.name)
            elif f.default is not dataclasses.MISSING:
                inner = f.default
            elif f.default_factory is not dataclasses.MISSING:
                inner = f.default_factory()
            else:
                inner = None
            values[f.name] = _build(hints[f.name], flat, {}, inner)
        elif f.name in flat:
            values[f.name] = flat[f.name]
    if base is not None:
        return dataclasses.replace(base, **values)  # type: ignore[no-any-return]
    return cls(**values)


def _flat_values(obj: Any) -> dict[str, Any]:
    """Every setting of ``obj`` by its flat name (nested settings opened up)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            out.update(_flat_values(value))
        else:
            out[f.name] = value
    return out


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """Base for service configs; subclasses set ``env_prefix``."""

    env_prefix: ClassVar[str] = "RAGMESH"

    @classmethod
    def env_names(cls) -> list[str]:
        """The environment variables this config reads, nested settings included."""
        return [f"{cls.env_prefix}_{name.upper()}" for name, _ in _settings_fields(cls)]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        """Build the config from ``environ`` (default ``os.environ``), then apply overrides.

        An override names a setting (nested ones by their own name) or a nested settings object whole.
        """
        env = os.environ if environ is None else environ
        flat: dict[str, Any] = {}
        for name, typ in _settings_fields(cls):
            key = f"{cls.env_prefix}_{name.upper()}"
            if key in env:
                flat[name] = _convert(env[key], typ, key)
        top = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = set(overrides) - top - {name for name, _ in _settings_fields(cls)}
        if unknown:
            raise TypeError(f"{cls.__name__}: no such settings: {', '.join(sorted(unknown))}")
        direct = {k: v for k, v in overrides.items() if k in top}
        flat.update({k: v for k, v in overrides.items() if k not in top})
        return _build(cls, flat, direct)

    def env_vars(self) -> dict[str, str]:
        """The environment variables that reproduce this config (for child processes)."""
        out: dict[str, str] = {}
        for name, value in _flat_values(self).items():
            if value is None:
                continue
            if isinstance(value, (tuple, list)):
                text = ",".join(str(v) for v in value)
            elif isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, enum.Enum):
                text = str(value.value)
            else:
                text = str(value)
            out[f"{self.env_prefix}_{name.upper()}"] = text
        return out
