"""Which parser a file goes to: by its name, then checked against its first bytes.

The extension picks the format; the content must agree, so a binary named
``.pdf`` or a ``.docx`` that is not a zip fails with a precise reason instead of
reaching a parser that would fail obscurely (or hang).
"""

from __future__ import annotations

import enum
import zipfile
from pathlib import Path, PurePosixPath

from svc_ingest.domain.failures import FailureCode, FileFailure


class DocumentFormat(enum.StrEnum):
    """Formats the pipeline parses; the value is the contract's ``document_type``."""

    PDF = "pdf"
    DOCX = "docx"
    HTML = "html"
    MARKDOWN = "markdown"
    TEXT = "txt"


_BY_SUFFIX: dict[str, DocumentFormat] = {
    ".pdf": DocumentFormat.PDF,
    ".docx": DocumentFormat.DOCX,
    ".html": DocumentFormat.HTML,
    ".htm": DocumentFormat.HTML,
    ".xhtml": DocumentFormat.HTML,
    ".md": DocumentFormat.MARKDOWN,
    ".markdown": DocumentFormat.MARKDOWN,
    ".txt": DocumentFormat.TEXT,
    ".text": DocumentFormat.TEXT,
}

SUPPORTED_SUFFIXES = frozenset(_BY_SUFFIX)
"""File name endings the pipeline accepts (lower case)."""

# The PDF header may follow up to 1 KiB of leading junk (PDF 1.7, annex H.3).
_PDF_HEADER_WINDOW = 1024


def format_for_name(name: str) -> DocumentFormat:
    """The format a file name announces; UNSUPPORTED_TYPE when the ending is not one we parse."""
    suffix = PurePosixPath(name).suffix.lower()
    fmt = _BY_SUFFIX.get(suffix)
    if fmt is None:
        shown = suffix or "(no extension)"
        raise FileFailure(
            FailureCode.UNSUPPORTED_TYPE,
            f"unsupported file type {shown}; supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}",
        )
    return fmt


def check_content(path: Path, fmt: DocumentFormat) -> None:
    """Raises a FileFailure when the bytes of ``path`` cannot be a file of ``fmt``."""
    with path.open("rb") as fh:
        head = fh.read(_PDF_HEADER_WINDOW)
    if not head:
        raise FileFailure(FailureCode.EMPTY_FILE, "the file is empty (0 bytes)")
    if fmt is DocumentFormat.PDF and b"%PDF-" not in head:
        raise FileFailure(FailureCode.NOT_A_PDF, "named .pdf but the content has no PDF header (%PDF-)")
    if fmt is DocumentFormat.DOCX:
        if head.startswith(b"\xd0\xcf\x11\xe0"):
            # An OLE compound file named .docx: a password-protected Word file or an old .doc.
            raise FileFailure(
                FailureCode.ENCRYPTED_DOCX,
                "named .docx but it is an OLE compound file (an encrypted Word document or a legacy .doc)",
            )
        if not head.startswith(b"PK") or not zipfile.is_zipfile(path):
            raise FileFailure(FailureCode.NOT_A_ZIP, "named .docx but the content is not a zip archive")
