"""Hypothesis strategies for request bodies, built from the proto descriptors.

``messages(descriptor)`` walks a message descriptor and draws messages of it:
each field set or left unset, with values of its type that are valid-shaped
(ordinary strings, numbers in range, defined enum numbers) or not (empty,
oversized and path-like strings, type boundaries, NaN and infinities, unknown
enum numbers, repeated fields far over any limit), nested messages down to a
bounded depth. ``request_bodies(descriptor)`` turns them into wire bytes and
mixes in bytes that are not that message at all: random bytes, a valid
encoding cut short, a byte of it flipped, unknown fields appended.

Nothing here knows a service: the e2e fuzz test and ``ragmesh bench fuzz``
send the bytes to every public RPC through the edge.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from google.protobuf import descriptor as _descriptor
from google.protobuf import message_factory
from google.protobuf.message import DecodeError, Message
from hypothesis import strategies as st

FieldDescriptor = _descriptor.FieldDescriptor

# Sizes over every limit the protos declare (the largest string limit is 64 KiB),
# yet small enough for thousands of requests on a laptop.
OVERSIZED_LENGTHS = (257, 4097, 65537, 70000)
OVERSIZED_ITEMS = (101, 1025)
# Strings that have tripped parsers elsewhere: paths, control characters, odd Unicode.
AWKWARD_STRINGS = (
    "",
    " ",
    "../../etc/passwd",
    "..",
    "/",
    "\x00",
    "\r\n",
    "%00",
    "'; DROP TABLE documents; --",
    "{{7*7}}",
    "\u202e\u0000\ufeff",
    "😀" * 8,
    "a" * 64,
)
_INT_RANGES: dict[int, tuple[int, int]] = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


def message_class(descriptor: _descriptor.Descriptor) -> type[Message]:
    """The generated Python class of ``descriptor``."""
    return message_factory.GetMessageClass(descriptor)


def _integers(field_type: int) -> st.SearchStrategy[int]:
    low, high = _INT_RANGES[field_type]
    edges = sorted({low, high, 0, 1, -1 if low < 0 else 2, high // 2})
    return st.one_of(st.sampled_from(edges), st.integers(min_value=low, max_value=high))


def _strings() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=40),
        st.sampled_from(AWKWARD_STRINGS),
        st.sampled_from(OVERSIZED_LENGTHS).map(lambda n: "x" * n),
    )


def _bytes() -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=64), st.sampled_from(OVERSIZED_LENGTHS).map(lambda n: b"\x00" * n))


def _enums(field: FieldDescriptor) -> st.SearchStrategy[int]:
    defined = [v.number for v in field.enum_type.values]
    # proto3 enums are open: numbers the enum does not define decode as they are.
    unknown = st.integers(min_value=-(2**31), max_value=2**31 - 1).filter(lambda n: n not in defined)
    return st.one_of(st.sampled_from(defined), unknown)


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind in _INT_RANGES:
        return _integers(kind)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == FieldDescriptor.TYPE_DOUBLE:
        return st.one_of(st.sampled_from((math.nan, math.inf, -math.inf, -0.0, 1e308)), st.floats())
    if kind == FieldDescriptor.TYPE_FLOAT:
        return st.one_of(st.sampled_from((math.nan, math.inf, -math.inf)), st.floats(width=32))
    if kind == FieldDescriptor.TYPE_STRING:
        return _strings()
    if kind == FieldDescriptor.TYPE_BYTES:
        return _bytes()
    if kind == FieldDescriptor.TYPE_ENUM:
        return _enums(field)
    raise ValueError(f"{field.full_name}: no strategy for field type {kind}")


def _oversized_default(field: FieldDescriptor) -> Any:
    """One cheap element for a repeated field blown far past its item limit."""
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return message_class(field.message_type)()
    if field.type == FieldDescriptor.TYPE_STRING:
        return "x"
    if field.type == FieldDescriptor.TYPE_BYTES:
        return b"x"
    if field.type == FieldDescriptor.TYPE_BOOL:
        return True
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return 1.0
    if field.type == FieldDescriptor.TYPE_ENUM:
        return field.enum_type.values[-1].number
    return 1


class Fuzzer:
    """Strategies for the messages of one descriptor pool.

    ``overrides`` maps a field's full name (``ragmesh.ingest.v1.CreateIngestJobRequest.sources``)
    to the strategy of one of its values, for fields whose values must stay harmless.
    ``max_depth`` bounds nesting: below it, message fields stay unset.
    """

    def __init__(self, overrides: Mapping[str, st.SearchStrategy[Any]] | None = None, max_depth: int = 4) -> None:
        self.overrides = dict(overrides or {})
        self.max_depth = max_depth

    def value(self, field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
        """One value of ``field`` (one element when repeated)."""
        if field.full_name in self.overrides:
            return self.overrides[field.full_name]
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            return self.message(field.message_type, depth + 1)
        return _scalar(field)

    def message(self, descriptor: _descriptor.Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
        """Messages of ``descriptor``, each field set or not."""
        return _message(self, descriptor, depth)

    def body(self, descriptor: _descriptor.Descriptor) -> st.SearchStrategy[bytes]:
        """Wire bytes for a request of ``descriptor``: encodings of drawn messages and bytes that are not."""
        encoded = self.message(descriptor).map(lambda m: m.SerializeToString())
        return st.one_of(
            encoded,
            encoded,
            st.binary(max_size=256),
            st.tuples(encoded, st.integers(min_value=0)).map(_truncated),
            st.tuples(encoded, st.integers(min_value=0), st.integers(min_value=1, max_value=255)).map(_flipped),
            st.tuples(encoded, _unknown_fields()).map(lambda pair: pair[0] + pair[1]),
        )


@st.composite
def _message(draw: st.DrawFn, fuzzer: Fuzzer, descriptor: _descriptor.Descriptor, depth: int) -> Message:
    message = message_class(descriptor)()
    for field in descriptor.fields:
        is_message = field.type == FieldDescriptor.TYPE_MESSAGE
        if is_message and depth >= fuzzer.max_depth:
            continue
        if not draw(st.booleans()):
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            _set_map(draw, fuzzer, message, field, depth)
        elif field.is_repeated:
            _set_repeated(draw, fuzzer, message, field, depth)
        elif is_message:
            getattr(message, field.name).CopyFrom(draw(fuzzer.value(field, depth)))
        else:
            setattr(message, field.name, draw(fuzzer.value(field, depth)))
    return message


def _set_repeated(draw: st.DrawFn, fuzzer: Fuzzer, message: Message, field: FieldDescriptor, depth: int) -> None:
    target = getattr(message, field.name)
    if field.full_name not in fuzzer.overrides and draw(st.integers(min_value=0, max_value=9)) == 0:
        values = [_oversized_default(field)] * draw(st.sampled_from(OVERSIZED_ITEMS))
    else:
        values = draw(st.lists(fuzzer.value(field, depth), max_size=4))
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        for value in values:
            target.add().CopyFrom(value)
    else:
        target.extend(values)


def _set_map(draw: st.DrawFn, fuzzer: Fuzzer, message: Message, field: FieldDescriptor, depth: int) -> None:
    entry = field.message_type
    key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
    target = getattr(message, field.name)
    pairs = draw(st.lists(st.tuples(fuzzer.value(key_field, depth), fuzzer.value(value_field, depth)), max_size=4))
    for key, value in pairs:
        if value_field.type == FieldDescriptor.TYPE_MESSAGE:
            target[key].CopyFrom(value)
        else:
            target[key] = value


def _truncated(pair: tuple[bytes, int]) -> bytes:
    encoded, cut = pair
    return encoded[: cut % (len(encoded) + 1)]


def _flipped(triple: tuple[bytes, int, int]) -> bytes:
    encoded, at, mask = triple
    if not encoded:
        return bytes([mask])
    index = at % len(encoded)
    return encoded[:index] + bytes([encoded[index] ^ mask]) + encoded[index + 1 :]


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


@st.composite
def _unknown_fields(draw: st.DrawFn) -> bytes:
    """Well-formed fields with numbers no ragmesh message uses (decoders keep them as unknown)."""
    number = draw(st.integers(min_value=1000, max_value=2**29 - 1))
    if draw(st.booleans()):
        return _varint(number << 3) + _varint(draw(st.integers(min_value=0, max_value=2**64 - 1)))
    payload = draw(st.binary(max_size=32))
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def decode(descriptor: _descriptor.Descriptor, body: bytes) -> Message | None:
    """``body`` decoded as ``descriptor``'s message, or None where it does not decode."""
    try:
        return message_class(descriptor).FromString(body)
    except DecodeError:
        return None


def local_path_is_under(raw: str, root: str) -> bool:
    """Whether an ingest source string, read as the ingest service reads local paths, stays under ``root``.

    Non-local sources (other schemes, relative paths) are refused by the service before
    it reads anything; s3 sources are not harmless here (they would be listed), so False.
    """
    text = raw.strip()
    if text.startswith("s3://"):
        return False
    if "://" in text and not text.startswith("file://"):
        return True
    if text.startswith("file://"):
        text = unquote(urlsplit(text).path)
    if text.startswith("~"):
        return False
    if not text.startswith("/"):
        return True
    parts = PurePosixPath(text).parts
    if ".." in parts:
        return False
    return PurePosixPath(text).is_relative_to(root)
