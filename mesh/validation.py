"""Request validation from the protovalidate rules declared in the protos, and the limits those rules set.

Clients that must keep a request within another service's contract (batch sizes,
text lengths, top_k) read the limit from the rule in the descriptor
(``max_items``, ``max_len``, ``max_value``) instead of copying the number, so a
contract change moves every caller with it. A rule that is not there raises
LookupError at import time of the caller, not a wrong limit later.
"""

from __future__ import annotations

from typing import Any

import protovalidate
from buf.validate import validate_pb2
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


def _rules(message: type[Message], field: str) -> validate_pb2.FieldRules:
    descriptor = message.DESCRIPTOR.fields_by_name.get(field)
    if descriptor is None:
        raise LookupError(f"{message.DESCRIPTOR.full_name} has no field {field!r}")
    # The generated stubs type the extension as a plain FieldDescriptor, which Extensions[] does not take.
    options: Any = descriptor.GetOptions()
    rules: validate_pb2.FieldRules = options.Extensions[validate_pb2.field]
    return rules


def _missing(message: type[Message], field: str, rule: str) -> LookupError:
    return LookupError(f"{message.DESCRIPTOR.full_name}.{field} declares no {rule} rule")


def max_items(message: type[Message], field: str) -> int:
    """The most elements the repeated ``field`` of ``message`` may hold (its ``repeated.max_items``)."""
    rules = _rules(message, field)
    if not rules.repeated.HasField("max_items"):
        raise _missing(message, field, "repeated.max_items")
    return int(rules.repeated.max_items)


def max_len(message: type[Message], field: str) -> int:
    """The longest ``field`` of ``message`` may be, in characters; for a repeated string, each element's."""
    rules = _rules(message, field)
    string = rules.repeated.items.string if rules.HasField("repeated") else rules.string
    if not string.HasField("max_len"):
        raise _missing(message, field, "string.max_len")
    return int(string.max_len)


def max_value(message: type[Message], field: str) -> int:
    """The largest value the integer ``field`` of ``message`` may take (its ``lte``, or ``lt`` - 1)."""
    rules = _rules(message, field)
    kind = rules.WhichOneof("type")
    numeric = getattr(rules, kind) if kind in ("int32", "int64", "uint32", "uint64", "sint32", "sint64") else None
    if numeric is not None:
        bound = numeric.WhichOneof("less_than")
        if bound == "lte":
            return int(numeric.lte)
        if bound == "lt":
            return int(numeric.lt) - 1
    raise _missing(message, field, "integer lte/lt")
