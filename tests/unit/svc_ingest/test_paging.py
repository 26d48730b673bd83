"""ListDocuments page tokens."""

from __future__ import annotations

import base64

import pytest

from svc_ingest.jobs import paging


def test_page_tokens_round_trip_and_reject_garbage() -> None:
    token = paging.page_token("file:///a b.md", "d1")
    assert paging.parse_page_token(token) == ("file:///a b.md", "d1")
    two_nuls = base64.urlsafe_b64encode(b"file:///a.md\x00d\x001").decode()  # text columns cannot hold NUL
    for garbage in ("bogus!", "YWJj", "_w==", two_nuls):
        with pytest.raises(ValueError):
            paging.parse_page_token(garbage)
