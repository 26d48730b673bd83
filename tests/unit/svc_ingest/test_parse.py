"""Parsing the sample corpus's formats with unstructured (no network; OCR uses the local Tesseract)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from svc_ingest.domain.failures import FailureCode, FileFailure
from svc_ingest.domain.formats import DocumentFormat
from svc_ingest.domain.parse import ParseOptions, parse_file

SAMPLES = Path(__file__).resolve().parents[3] / "samples"


def _parse(relative: str) -> tuple[str, object]:
    doc = parse_file(SAMPLES / relative, Path(relative).name)
    return "\n".join(e.text for e in doc.elements), doc


def test_markdown_front_matter_title_and_no_shortcodes() -> None:
    text, doc = _parse("k8s/concepts/workloads/pods/_index.md")
    assert doc.title == "Pods"  # type: ignore[attr-defined]
    assert doc.document_type is DocumentFormat.MARKDOWN  # type: ignore[attr-defined]
    assert "{{" not in text and "reviewers:" not in text
    assert "smallest deployable units of computing" in text
    assert any(link.startswith("/docs/") for link in doc.links)  # type: ignore[attr-defined]


def test_windows_1252_html_and_its_title() -> None:
    text, doc = _parse("noise/unstructured-fake-html-cp1252.html")
    assert doc.document_type is DocumentFormat.HTML  # type: ignore[attr-defined]
    assert "\ufffd" not in text
    assert text.strip()


def test_html_without_script_style_and_with_form_content(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(
        "<html><head><title>Docket</title><style>p{color:red}</style></head><body>"
        "<script>var secret = 1;</script><form action='/x'><div><p>Opinion of the Court is announced.</p>"
        "<input value='Search'/></div></form></body></html>"
    )
    doc = parse_file(page, "page.html")
    text = "\n".join(e.text for e in doc.elements)
    assert doc.title == "Docket"
    assert "Opinion of the Court" in text
    assert "secret" not in text and "color" not in text


def test_strict_ooxml_docx() -> None:
    text, doc = _parse("noise/mammoth-strict-format.docx")
    assert doc.document_type is DocumentFormat.DOCX  # type: ignore[attr-defined]
    assert text.strip()


def test_utf16_text_without_bom() -> None:
    text, _ = _parse("noise/unstructured-fake-text-utf-16-be.txt")
    assert "This is a test document" in text


def test_pdf_text_layer() -> None:
    text, doc = _parse("noise/unstructured-fake-memo.pdf")
    assert doc.document_type is DocumentFormat.PDF  # type: ignore[attr-defined]
    assert doc.ocr_pages == 0  # type: ignore[attr-defined]
    assert len(text) > 100


@pytest.mark.slow
def test_scanned_pdf_is_read_with_ocr() -> None:
    text, doc = _parse("noise/docling-ocr_test.pdf")
    assert doc.ocr_pages == 1  # type: ignore[attr-defined]
    assert "Docling" in text


def test_ocr_off_leaves_a_scanned_pdf_without_text() -> None:
    with pytest.raises(FileFailure) as caught:
        parse_file(SAMPLES / "noise/docling-ocr_test.pdf", "scan.pdf", ParseOptions(ocr=False))
    assert caught.value.code is FailureCode.NO_TEXT


def test_size_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    shutil.copyfile(SAMPLES / "noise/gutenberg-pg18131-princess-winsome.txt", big)
    with pytest.raises(FileFailure) as caught:
        parse_file(big, "big.txt", ParseOptions(max_file_bytes=1000))
    assert caught.value.code is FailureCode.FILE_TOO_LARGE


def test_index_page_with_only_front_matter_uses_its_description(tmp_path: Path) -> None:
    page = tmp_path / "_index.md"
    page.write_text('---\ntitle: "Storage"\ndescription: >\n  Ways to provide storage to Pods.\n---\n')
    doc = parse_file(page, "_index.md")
    assert doc.title == "Storage"
    assert "Ways to provide storage to Pods." in "\n".join(e.text for e in doc.elements)
