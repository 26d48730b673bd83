"""Decoding text files: BOMs, BOM-less UTF-16/32, legacy code pages, binary content."""

from __future__ import annotations

import codecs

import pytest

from svc_ingest.domain.failures import FailureCode, FileFailure
from svc_ingest.domain.textcodec import decode_bytes

TEXT = "Crème brûlée: the kitchen opens at nine.\nSecond line of a note.\n"


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (TEXT.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + TEXT.encode("utf-8"), "utf-8"),
        (TEXT.encode("utf-16"), "utf-16-le"),
        (TEXT.encode("utf-16-be"), "utf-16-be"),
        (TEXT.encode("utf-16-le"), "utf-16-le"),
        (TEXT.encode("utf-32"), "utf-32-le"),
        (TEXT.encode("utf-32-be"), "utf-32-be"),
    ],
)
def test_unicode_encodings_round_trip(data: bytes, encoding: str) -> None:
    decoded = decode_bytes(data)
    assert decoded.text == TEXT
    assert decoded.encoding == encoding


def test_legacy_code_page_is_detected() -> None:
    text = "Le café est fermé le lundi. Crème brûlée à volonté, s'il vous plaît, évidemment.\n" * 5
    decoded = decode_bytes(text.encode("cp1252"))
    assert decoded.text == text


def test_crlf_becomes_lf() -> None:
    assert decode_bytes(b"one\r\ntwo\rthree\n").text == "one\ntwo\nthree\n"


def test_binary_content_is_not_text() -> None:
    with pytest.raises(FileFailure) as caught:
        decode_bytes(bytes(range(32)) * 200)
    assert caught.value.code is FailureCode.NOT_TEXT


def test_empty_input_is_an_empty_file() -> None:
    with pytest.raises(FileFailure) as caught:
        decode_bytes(b"")
    assert caught.value.code is FailureCode.EMPTY_FILE
