"""Search filters from the wire: an ingested_after no clock can show is INVALID_ARGUMENT, not INTERNAL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from mesh.errors import InvalidArgument
from ragmesh.retrieval.v1 import retrieval_service_pb2 as rpb
from svc_retrieval.convert import filter_from_proto


def test_a_valid_timestamp_and_an_unset_one() -> None:
    assert filter_from_proto(rpb.SearchFilter()).ingested_after is None
    flt = rpb.SearchFilter(ingested_after=Timestamp(seconds=1_700_000_000))
    assert filter_from_proto(flt).ingested_after == datetime.fromtimestamp(1_700_000_000, UTC)


@pytest.mark.parametrize(
    "stamp",
    [
        Timestamp(seconds=9223372036854775807),  # what the fuzzer sent
        Timestamp(seconds=-747325320485),
        Timestamp(seconds=0, nanos=1_073_741_823),
        Timestamp(seconds=0, nanos=-1),
    ],
)
def test_an_impossible_timestamp_is_invalid_argument(stamp: Timestamp) -> None:
    with pytest.raises(InvalidArgument) as info:
        filter_from_proto(rpb.SearchFilter(ingested_after=stamp))
    assert info.value.reason == "INVALID_TIMESTAMP"
    assert [v.field for v in info.value.violations] == ["filter.ingested_after"]
