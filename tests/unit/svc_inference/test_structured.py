from __future__ import annotations

import json

import pytest

from mesh.errors import InvalidArgument
from svc_inference.domain.llamacpp import strict_json_strings
from svc_inference.domain.structured import (
    LLAMACPP_UNENFORCEABLE,
    check_enforceable,
    parse_schema,
    validation_error,
)

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


def test_empty_text_means_no_schema() -> None:
    assert parse_schema("") is None
    assert parse_schema("  ") is None


def test_property_order_is_kept() -> None:
    schema = parse_schema(json.dumps({"type": "object", "properties": {"z": {}, "a": {}}}))
    assert schema is not None
    assert schema.text.index('"z"') < schema.text.index('"a"')


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"type": "strng"}', "not a valid JSON Schema"),
        ('{"type": "object", "required": "name"}', "not a valid JSON Schema"),
    ],
)
def test_invalid_schemas_name_the_problem(text: str, needle: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_schema(text)
    assert info.value.reason == "INVALID_JSON_SCHEMA"
    assert needle in info.value.message
    assert [v.field for v in info.value.violations] == ["json_schema"]


@pytest.mark.parametrize(
    ("schema", "keyword"),
    [
        ({"type": "integer", "minimum": 3}, "minimum"),
        ({"type": "object", "properties": {"tags": {"type": "array", "uniqueItems": True}}}, "uniqueItems"),
        ({"anyOf": [{"type": "string"}, {"not": {"type": "null"}}]}, "not"),
        ({"$defs": {"x": {"type": "number", "multipleOf": 2}}, "$ref": "#/$defs/x"}, "multipleOf"),
        ({"$ref": "https://example.org/schema.json"}, "$ref"),
        ({"type": "object", "required": ["a"]}, "required"),
    ],
)
def test_keywords_the_grammar_cannot_enforce_are_refused(schema: dict[str, object], keyword: str) -> None:
    parsed = parse_schema(json.dumps(schema))
    assert parsed is not None
    with pytest.raises(InvalidArgument) as info:
        check_enforceable(parsed, LLAMACPP_UNENFORCEABLE, "llamacpp")
    assert info.value.reason == "UNSUPPORTED_JSON_SCHEMA"
    assert info.value.metadata["keyword"] == keyword


def test_enforceable_schema_passes() -> None:
    parsed = parse_schema(json.dumps(PERSON))
    assert parsed is not None
    check_enforceable(parsed, LLAMACPP_UNENFORCEABLE, "llamacpp")


def test_output_validation() -> None:
    parsed = parse_schema(json.dumps(PERSON))
    assert parsed is not None
    assert validation_error(parsed, '{"name": "Ada", "age": 36}') is None
    assert "not JSON" in (validation_error(parsed, '{"name": ') or "")
    assert "age" in (validation_error(parsed, '{"name": "Ada"}') or "")


def test_grammar_strings_exclude_control_characters() -> None:
    grammar = 'root ::= "x"\nchar ::= [^"\\\\] | "\\\\" (["\\\\/bfnrt])\nspace ::= " "?'
    patched = strict_json_strings(grammar)
    assert "\\x00-\\x1F" in patched
    assert patched.splitlines()[0] == 'root ::= "x"' and patched.splitlines()[2] == 'space ::= " "?'
