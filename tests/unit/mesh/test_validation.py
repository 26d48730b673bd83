"""Limits read from the protovalidate rules in the descriptors, so clients never copy the numbers."""

from __future__ import annotations

import pytest

from mesh.validation import max_items, max_len, max_value
from ragmesh.inference.v1 import inference_service_pb2 as ipb
from ragmesh.retrieval.v1 import index_service_pb2 as xpb
from ragmesh.retrieval.v1 import retrieval_service_pb2 as rpb


def test_limits_come_from_the_contracts_rules() -> None:
    # The numbers the contracts' comments document.
    assert max_items(ipb.EmbedRequest, "texts") == 256
    assert max_len(ipb.EmbedRequest, "texts") == 32_768
    assert max_len(ipb.RerankRequest, "query") == 4096
    assert max_value(rpb.SearchRequest, "top_k") == 50
    assert max_len(rpb.SearchRequest, "query") == 2000
    assert max_items(xpb.DeleteDocumentsRequest, "doc_ids") == 1000


def test_a_limit_the_contract_does_not_declare_is_an_error_not_a_guess() -> None:
    with pytest.raises(LookupError, match=r"declares no repeated\.max_items"):
        max_items(ipb.EmbedRequest, "model")
    with pytest.raises(LookupError, match="declares no integer"):
        max_value(rpb.SearchRequest, "query")
    with pytest.raises(LookupError, match="has no field"):
        max_len(rpb.SearchRequest, "no_such_field")
