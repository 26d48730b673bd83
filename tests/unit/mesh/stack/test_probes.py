from __future__ import annotations

import pytest

from mesh.stack.probes import count_proto_field


def test_count_proto_field_reads_top_level_fields() -> None:
    # field 1: varint 150; field 2: "ab" (twice); field 3: fixed64; field 4: fixed32
    message = b"\x08\x96\x01" + b"\x12\x02ab" + b"\x19" + b"\x00" * 8 + b"\x12\x02cd" + b"\x25" + b"\x00" * 4
    assert count_proto_field(message, 2) == 2
    assert count_proto_field(message, 1) == 1
    assert count_proto_field(message, 9) == 0
    assert count_proto_field(b"", 2) == 0


def test_count_proto_field_rejects_groups() -> None:
    with pytest.raises(ValueError, match="wire type"):
        count_proto_field(b"\x13", 2)
