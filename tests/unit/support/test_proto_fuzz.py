"""The descriptor-driven request strategies draw what the fuzzer promises."""

from __future__ import annotations

import pytest
from google.protobuf import struct_pb2
from google.protobuf.message import Message
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from ragmesh.ingest.v1 import ingest_service_pb2
from ragmesh.retrieval.v1 import retrieval_service_pb2
from tests.support import proto_fuzz

SEARCH = retrieval_service_pb2.SearchRequest.DESCRIPTOR
CREATE_JOB = ingest_service_pb2.CreateIngestJobRequest.DESCRIPTOR
REQUESTS = [
    method.input_type
    for module in (retrieval_service_pb2, ingest_service_pb2)
    for service in module.DESCRIPTOR.services_by_name.values()
    for method in service.methods
]
FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)


@pytest.mark.parametrize("descriptor", REQUESTS, ids=[d.name for d in REQUESTS])
@FAST
@given(data=st.data())
def test_every_request_message_draws_and_round_trips(descriptor, data) -> None:  # type: ignore[no-untyped-def]
    message = data.draw(proto_fuzz.Fuzzer().message(descriptor))
    assert message.DESCRIPTOR is descriptor
    again = proto_fuzz.decode(descriptor, message.SerializeToString())
    assert again is not None
    assert again.SerializeToString(deterministic=True) == message.SerializeToString(deterministic=True)


def _depth(message: Message) -> int:
    deepest = 0
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        values = value if field.is_repeated else [value]
        if field.message_type.GetOptions().map_entry:
            values = [v for v in value.values() if isinstance(v, Message)]
        for child in values:
            deepest = max(deepest, 1 + _depth(child))
    return deepest


@FAST
@given(message=proto_fuzz.Fuzzer(max_depth=3).message(struct_pb2.Struct.DESCRIPTOR))
def test_recursive_messages_stop_at_the_depth_bound(message: Message) -> None:
    # Struct -> map<string, Value> -> Value -> Struct ...: only the bound stops it.
    assert _depth(message) <= 3


def test_deep_nesting_is_reached() -> None:
    deep = find(proto_fuzz.Fuzzer(max_depth=3).message(struct_pb2.Struct.DESCRIPTOR), lambda m: _depth(m) >= 3)
    assert _depth(deep) == 3


def test_unknown_enum_numbers_are_drawn() -> None:
    defined = {v.number for v in SEARCH.fields_by_name["legs"].enum_type.values}
    found = find(proto_fuzz.Fuzzer().message(SEARCH), lambda m: any(leg not in defined for leg in m.legs))
    assert any(leg not in defined for leg in found.legs)  # type: ignore[attr-defined]


def test_oversized_strings_and_repeated_fields_are_drawn() -> None:
    fuzzer = proto_fuzz.Fuzzer()
    long_query = find(fuzzer.message(SEARCH), lambda m: len(m.query) > 4096)
    assert len(long_query.query) > 4096  # type: ignore[attr-defined]
    many_sources = find(fuzzer.message(CREATE_JOB), lambda m: len(m.sources) > 100)
    assert len(many_sources.sources) > 100  # type: ignore[attr-defined]


def test_bodies_include_undecodable_bytes_and_unknown_fields() -> None:
    bodies = proto_fuzz.Fuzzer().body(SEARCH)
    broken = find(bodies, lambda b: proto_fuzz.decode(SEARCH, b) is None)
    assert proto_fuzz.decode(SEARCH, broken) is None

    def has_unknown_fields(body: bytes) -> bool:
        decoded = proto_fuzz.decode(SEARCH, body)
        return decoded is not None and decoded.ByteSize() < len(body) and decoded.SerializeToString() != body

    assert has_unknown_fields(find(bodies, has_unknown_fields))


def test_overrides_replace_a_fields_values() -> None:
    root = "/nonexistent-fuzz-root"
    fuzzer = proto_fuzz.Fuzzer({CREATE_JOB.fields_by_name["sources"].full_name: st.just(root + "/a")})
    message = find(fuzzer.message(CREATE_JOB), lambda m: len(m.sources) > 0)
    assert set(message.sources) == {root + "/a"}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("raw", "harmless"),
    [
        ("/fuzz-root/a/b", True),
        ("  file:///fuzz-root/x%20y", True),
        ("relative/path", True),
        ("ftp://example/x", True),
        ("/", False),
        ("~", False),
        ("~/docs", False),
        ("/fuzz-root/../etc", False),
        ("file:///fuzz-root/%2e%2e/etc", False),
        ("file://host/fuzz-root/a", True),
        ("s3://bucket/prefix", False),
        ("/etc/passwd", False),
    ],
)
def test_local_path_is_under(raw: str, harmless: bool) -> None:
    assert proto_fuzz.local_path_is_under(raw, "/fuzz-root") is harmless
