"""Formats by name, checked against content."""

from __future__ import annotations

from pathlib import Path

import pytest

from svc_ingest.domain.failures import FailureCode, FileFailure
from svc_ingest.domain.formats import DocumentFormat, check_content, format_for_name


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.pdf", DocumentFormat.PDF),
        ("A.PDF", DocumentFormat.PDF),
        ("b.docx", DocumentFormat.DOCX),
        ("c.htm", DocumentFormat.HTML),
        ("d.html", DocumentFormat.HTML),
        ("e.md", DocumentFormat.MARKDOWN),
        ("f.txt", DocumentFormat.TEXT),
    ],
)
def test_supported_names(name: str, fmt: DocumentFormat) -> None:
    assert format_for_name(name) is fmt


@pytest.mark.parametrize("name", ["a.exe", "b.png", "README", "c.doc"])
def test_unsupported_names(name: str) -> None:
    with pytest.raises(FileFailure) as caught:
        format_for_name(name)
    assert caught.value.code is FailureCode.UNSUPPORTED_TYPE


@pytest.mark.parametrize(
    ("data", "fmt", "code"),
    [
        (b"", DocumentFormat.TEXT, FailureCode.EMPTY_FILE),
        (b"\x00\x01binary", DocumentFormat.PDF, FailureCode.NOT_A_PDF),
        (b"plain text", DocumentFormat.DOCX, FailureCode.NOT_A_ZIP),
        (b"\xd0\xcf\x11\xe0" + b"\x00" * 512, DocumentFormat.DOCX, FailureCode.ENCRYPTED_DOCX),
    ],
)
def test_content_must_match_the_name(tmp_path: Path, data: bytes, fmt: DocumentFormat, code: FailureCode) -> None:
    path = tmp_path / "file"
    path.write_bytes(data)
    with pytest.raises(FileFailure) as caught:
        check_content(path, fmt)
    assert caught.value.code is code


def test_pdf_header_may_follow_junk(tmp_path: Path) -> None:
    path = tmp_path / "x.pdf"
    path.write_bytes(b"junk\n" * 10 + b"%PDF-1.7\n")
    check_content(path, DocumentFormat.PDF)
