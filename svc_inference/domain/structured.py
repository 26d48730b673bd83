"""JSON Schema handling for schema-constrained generation.

A request's schema is parsed and checked against its metaschema before any
model time is spent; keywords a backend's constrained decoder cannot enforce
are refused up front (rather than producing output that parses but does not
validate); and the finished output is validated once more against the schema.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import jsonschema.exceptions
import jsonschema.validators

from mesh.errors import FieldViolation, InvalidArgument

FIELD = "json_schema"

# Keywords llama.cpp's JSON-Schema-to-GBNF converter ignores: output constrained by the
# grammar would parse but could break them, so schemas using them are refused.
LLAMACPP_UNENFORCEABLE = frozenset(
    {
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "uniqueItems",
        "minProperties",
        "maxProperties",
        "not",
        "if",
        "then",
        "else",
        "dependentRequired",
        "dependentSchemas",
        "dependencies",
        "patternProperties",
        "propertyNames",
        "contains",
        "minContains",
        "maxContains",
        "unevaluatedProperties",
        "unevaluatedItems",
    }
)

# Keywords whose value is a map of names to subschemas, or a list of subschemas.
_SCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties", "dependentSchemas")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_VALUES = (
    "items",
    "additionalProperties",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
)


@dataclasses.dataclass(frozen=True, eq=False)
class JsonSchema:
    """A parsed, metaschema-valid JSON Schema."""

    document: dict[str, Any]
    text: str
    """The schema as compact JSON in its own key order (property order is the order output is generated in)."""


def parse_schema(text: str) -> JsonSchema | None:
    """Parses ``text``; None when it is empty. Raises INVALID_ARGUMENT naming what is wrong."""
    if not text.strip():
        return None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _invalid(f"json_schema is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(document, dict):
        raise _invalid("json_schema must be a JSON object (a schema), not " + type(document).__name__)
    validator_class = jsonschema.validators.validator_for(document, default=jsonschema.Draft202012Validator)
    try:
        validator_class.check_schema(document)
    except jsonschema.exceptions.SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "(root)"
        raise _invalid(f"json_schema is not a valid JSON Schema at {where}: {exc.message}") from None
    return JsonSchema(document=document, text=json.dumps(document, separators=(",", ":")))


def check_enforceable(schema: JsonSchema, unenforceable: frozenset[str], backend: str) -> None:
    """Refuses schemas that use a keyword ``backend`` cannot enforce while generating."""
    for path, node in _subschemas(schema.document, "#"):
        used = sorted(k for k in node if k in unenforceable)
        if used:
            raise InvalidArgument(
                f"json_schema uses {used[0]!r} at {path}, which the {backend} backend cannot enforce while "
                f"generating; unsupported keywords: {', '.join(sorted(unenforceable))}",
                reason="UNSUPPORTED_JSON_SCHEMA",
                metadata={"keyword": used[0], "path": path, "backend": backend},
                violations=[FieldViolation(FIELD, f"keyword {used[0]!r} at {path} is not supported")],
            )
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            raise InvalidArgument(
                f"json_schema refers to {ref!r} at {path}; only local references (#/...) are allowed",
                reason="UNSUPPORTED_JSON_SCHEMA",
                metadata={"keyword": "$ref", "path": path, "backend": backend},
                violations=[FieldViolation(FIELD, "only local $ref (#/...) is supported")],
            )
        required = node.get("required")
        properties = node.get("properties")
        if isinstance(required, list):
            missing = [r for r in required if not isinstance(properties, dict) or r not in properties]
            if missing:
                raise InvalidArgument(
                    f"json_schema requires {missing[0]!r} at {path} but does not declare it in properties; "
                    "constrained generation can only produce declared properties",
                    reason="UNSUPPORTED_JSON_SCHEMA",
                    metadata={"keyword": "required", "path": path, "backend": backend},
                    violations=[FieldViolation(FIELD, f"required property {missing[0]!r} is not in properties")],
                )


def validation_error(schema: JsonSchema, output: str) -> str | None:
    """Why ``output`` does not parse or match ``schema``; None when it does."""
    try:
        instance = json.loads(output)
    except json.JSONDecodeError as exc:
        return f"output is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    validator_class = jsonschema.validators.validator_for(schema.document, default=jsonschema.Draft202012Validator)
    error = jsonschema.exceptions.best_match(validator_class(schema.document).iter_errors(instance))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"output does not match the schema at {where}: {error.message}"


def _subschemas(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if not isinstance(node, dict):
        return
    yield path, node
    for key in _SCHEMA_MAPS:
        children = node.get(key)
        if isinstance(children, dict):
            for name, child in children.items():
                yield from _subschemas(child, f"{path}/{key}/{name}")
    for key in _SCHEMA_LISTS:
        children = node.get(key)
        if isinstance(children, list):
            for i, child in enumerate(children):
                yield from _subschemas(child, f"{path}/{key}/{i}")
    for key in _SCHEMA_VALUES:
        child = node.get(key)
        if isinstance(child, dict):
            yield from _subschemas(child, f"{path}/{key}")
        elif isinstance(child, list):
            for i, item in enumerate(child):
                yield from _subschemas(item, f"{path}/{key}/{i}")


def _invalid(message: str) -> InvalidArgument:
    return InvalidArgument(message, reason="INVALID_JSON_SCHEMA", violations=[FieldViolation(FIELD, message)])
