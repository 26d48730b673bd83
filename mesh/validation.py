"""Request validation from the protovalidate rules declared in the protos."""

from __future__ import annotations

from typing import Any

import protovalidate
from google.protobuf.message import Message

from mesh.errors import FieldViolation, InvalidArgument

_validator = protovalidate.Validator()


def _field_path(violation: Any) -> str:
    parts: list[str] = []
    field = getattr(violation, "field", None)
    for element in getattr(field, "elements", None) or ():
        name = element.field_name
        subscript = getattr(element, "subscript", None)
        if subscript is not None and getattr(subscript, "value", None) is not None:
            value = subscript.value
            name += f"[{value!r}]" if isinstance(value, str) else f"[{value}]"
        parts.append(name)
    return ".".join(parts)


def violations(message: Message) -> list[FieldViolation]:
    """Every rule ``message`` breaks, as field violations (empty when valid)."""
    found = _validator.collect_violations(message)
    out = []
    for v in found:
        proto = v.proto
        path = _field_path(proto)
        out.append(FieldViolation(field=path or "(message)", description=f"{proto.message} [{proto.rule_id}]"))
    return out


def validate(message: Message) -> None:
    """Raises InvalidArgument with one BadRequest violation per broken rule."""
    broken = violations(message)
    if broken:
        summary = "; ".join(f"{v.field}: {v.description}" for v in broken[:5])
        raise InvalidArgument(
            f"invalid {message.DESCRIPTOR.name}: {summary}",
            reason="VALIDATION_FAILED",
            violations=broken,
        )
