"""Guards against files built to exhaust a parser: decompression bombs, deep nesting, unsafe names.

Each check runs before the parser that would be hurt, reads the file in bounded
pieces and stops as soon as a limit is passed, so the check itself never holds
more than a block of the expanded content:

- DOCX: every zip member is decompressed once, streaming, counting the bytes
  that come out (the zip's declared sizes are checked first, then the actual
  ones, so a member that lies about its size is caught too); this pass also
  verifies the CRCs, as ``ZipFile.testzip`` did.
- PDF: every non-image stream whose filters are FlateDecode is inflated
  through a chain of bounded decompressors; images are checked by their
  declared dimensions (only the OCR renderer decodes them).
- HTML: a pull parser reads the page in blocks and stops at the first element
  deeper than the limit (libxml2 itself stops reading at 256 levels and would
  drop the rest of the page without a word) or past the element limit.
- File names: control characters, path separators and ``.``/``..`` are refused
  before a name reaches a path, a log line or a job report.
"""

from __future__ import annotations

import contextlib
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from svc_ingest.domain.failures import FailureCode, FileFailure

_BLOCK = 1024 * 1024
_HTML_BLOCK = 64 * 1024
# More chained filters than any real writer produces; a longer chain is itself a sign of a bomb.
_MAX_FILTERS = 8
_FLATE = frozenset({"/FlateDecode", "/Fl"})


@dataclass(frozen=True)
class ExpansionLimits:
    """How far a file may expand while it is parsed; filled from the service config."""

    max_decompressed_bytes: int = 256 * 1024 * 1024
    """Most bytes one compressed part (a DOCX zip member, one PDF stream) may decompress to."""
    max_total_decompressed_bytes: int = 1024 * 1024 * 1024
    """Most bytes all the compressed parts of one document may decompress to together (PDF images aside)."""
    max_xml_part_bytes: int = 64 * 1024 * 1024
    """Largest XML part of a DOCX once decompressed (its parsed tree takes several times this)."""
    max_archive_members: int = 10_000
    """Most members a DOCX zip may have."""
    max_html_depth: int = 192
    """Deepest element nesting an HTML page may have (libxml2 drops content past 256 levels)."""
    max_html_elements: int = 500_000
    """Most elements an HTML page may have."""


def _too_large(what: str, limit: int) -> FileFailure:
    return FileFailure(
        FailureCode.FILE_TOO_LARGE_DECOMPRESSED, f"{what} decompresses to more than the limit of {limit:,} bytes"
    )


# --------------------------------------------------------------------------- zip (DOCX)


def check_archive(archive: zipfile.ZipFile, limits: ExpansionLimits) -> None:
    """Raises FILE_TOO_LARGE_DECOMPRESSED (or CORRUPT_DOCX) unless every member expands within the limits."""
    infos = archive.infolist()
    if len(infos) > limits.max_archive_members:
        raise FileFailure(
            FailureCode.FILE_TOO_LARGE_DECOMPRESSED,
            f"the archive has {len(infos):,} members; the limit is {limits.max_archive_members:,}",
        )
    declared = 0
    for info in infos:
        _check_member_size(info, info.file_size, limits)
        declared += info.file_size
    if declared > limits.max_total_decompressed_bytes:
        raise FileFailure(
            FailureCode.FILE_TOO_LARGE_DECOMPRESSED,
            f"the archive declares {declared:,} bytes uncompressed; "
            f"the limit is {limits.max_total_decompressed_bytes:,}",
        )
    total = 0
    for info in infos:
        actual = 0
        try:
            # zipfile stops at the declared size and checks the CRC at the end; counting here
            # bounds the work even if a member's header and data disagree.
            with archive.open(info) as member:
                while block := member.read(_BLOCK):
                    actual += len(block)
                    total += len(block)
                    _check_member_size(info, actual, limits)
                    if total > limits.max_total_decompressed_bytes:
                        raise _too_large("the archive", limits.max_total_decompressed_bytes)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
            raise FileFailure(FailureCode.CORRUPT_DOCX, f"the zip member {info.filename!r} is corrupt: {exc}") from exc


def _check_member_size(info: zipfile.ZipInfo, size: int, limits: ExpansionLimits) -> None:
    if info.filename.endswith((".xml", ".rels")) and size > limits.max_xml_part_bytes:
        raise _too_large(f"the XML part {info.filename!r}", limits.max_xml_part_bytes)
    if size > limits.max_decompressed_bytes:
        raise _too_large(f"the zip member {info.filename!r}", limits.max_decompressed_bytes)


# --------------------------------------------------------------------------- pdf


def check_pdf_streams(reader: Any, limits: ExpansionLimits) -> None:
    """Raises FILE_TOO_LARGE_DECOMPRESSED when a stream of the pypdf ``reader`` expands past the limits."""
    from pypdf.errors import LimitReachedError
    from pypdf.generic import ArrayObject, IndirectObject, StreamObject

    total = 0
    for number, generation in _object_ids(reader):
        try:
            obj = reader.get_object(IndirectObject(number, generation, reader))
        except LimitReachedError:
            raise
        except Exception:  # noqa: BLE001 - an unreadable object is the parsers' business, not a bomb
            continue
        if not isinstance(obj, StreamObject):
            continue
        filters = obj.get("/Filter")
        names = [str(f) for f in filters] if isinstance(filters, ArrayObject) else [str(filters)] if filters else []
        if obj.get("/Subtype") == "/Image":
            _check_image(obj, number, limits)
            continue
        flate = 0
        for name in names:
            if name not in _FLATE:
                break
            flate += 1
        if flate == 0:
            continue
        if flate > _MAX_FILTERS:
            raise FileFailure(
                FailureCode.FILE_TOO_LARGE_DECOMPRESSED,
                f"stream {number} is compressed {flate} times over; at most {_MAX_FILTERS} filters are read",
            )
        size = inflated_size(bytes(obj._data), flate, limits.max_decompressed_bytes)
        if size > limits.max_decompressed_bytes:
            raise _too_large(f"stream {number} of the PDF", limits.max_decompressed_bytes)
        total += size
        if total > limits.max_total_decompressed_bytes:
            raise _too_large("the PDF's streams", limits.max_total_decompressed_bytes)


def _object_ids(reader: Any) -> Iterator[tuple[int, int]]:
    for generation, objects in sorted(reader.xref.items()):
        for number in sorted(objects):
            yield number, generation


def _check_image(obj: Any, number: int, limits: ExpansionLimits) -> None:
    try:
        width = int(obj.get("/Width", 0))
        height = int(obj.get("/Height", 0))
        bits = int(obj.get("/BitsPerComponent", 8) or 8)
    except (TypeError, ValueError):
        return
    # Four components is the most a colour space has (CMYK); the renderer holds the decoded image.
    if width * height * 4 * bits // 8 > limits.max_decompressed_bytes:
        raise FileFailure(
            FailureCode.FILE_TOO_LARGE_DECOMPRESSED,
            f"image {number} of the PDF is {width:,} x {height:,} pixels; decoded it would pass "
            f"{limits.max_decompressed_bytes:,} bytes",
        )


def inflated_size(data: bytes, layers: int, limit: int) -> int:
    """Bytes ``data`` inflates to through ``layers`` nested zlib streams, counting no further than ``limit`` + 1.

    Each layer streams into the next in blocks, so memory stays at a few blocks whatever the
    ratio. A damaged stream counts what came out before the damage (what a lenient reader gets).
    """
    decoders = [zlib.decompressobj() for _ in range(layers)]
    out = [0]

    def push(level: int, chunk: bytes) -> None:
        if level == layers:
            out[0] += len(chunk)
            if out[0] > limit:
                raise _Over()
            return
        decoder = decoders[level]
        pending = chunk
        while True:
            if decoder.eof:
                return
            piece = decoder.decompress(pending, _BLOCK)
            pending = decoder.unconsumed_tail
            if piece:
                push(level + 1, piece)
            elif not pending:
                return

    try:
        for start in range(0, len(data), _BLOCK):
            push(0, data[start : start + _BLOCK])
    except _Over:
        return limit + 1
    except zlib.error:
        pass
    return out[0]


class _Over(Exception):
    """The count passed its limit."""


# --------------------------------------------------------------------------- html


def check_html(text: str, limits: ExpansionLimits) -> None:
    """Raises DOCUMENT_TOO_DEEP or TOO_MANY_ELEMENTS; stops reading at the first element past a limit."""
    from lxml import etree

    parser = etree.HTMLPullParser(events=("start", "end"), no_network=True, remove_comments=True)
    depth = 0
    elements = 0
    for start in range(0, len(text), _HTML_BLOCK):
        parser.feed(text[start : start + _HTML_BLOCK])
        for event, element in parser.read_events():
            if event == "end":
                depth -= 1
                # Finished subtrees are not needed; dropping them keeps the scan small on wide pages.
                element.clear()
                continue
            depth += 1
            elements += 1
            if depth > limits.max_html_depth:
                raise FileFailure(
                    FailureCode.DOCUMENT_TOO_DEEP,
                    f"the HTML nests elements more than {limits.max_html_depth} levels deep",
                )
            if elements > limits.max_html_elements:
                raise FileFailure(
                    FailureCode.TOO_MANY_ELEMENTS,
                    f"the HTML has more than {limits.max_html_elements:,} elements",
                )
    # Closing raises on some broken pages that the real parse recovers from.
    with contextlib.suppress(etree.LxmlError):
        parser.close()


# --------------------------------------------------------------------------- file names


def check_file_name(name: str) -> None:
    """Raises UNSAFE_FILENAME for names that are not one plain file name."""
    problem = unsafe_name_problem(name)
    if problem:
        raise FileFailure(FailureCode.UNSAFE_FILENAME, f"the file name {shown_name(name)} {problem}")


def unsafe_name_problem(name: str) -> str:
    """Why ``name`` is not a safe file name, or "" when it is."""
    if name in ("", ".", ".."):
        return "is not a file name"
    if "/" in name or "\\" in name:
        return "contains a path separator"
    for ch in name:
        if unicodedata.category(ch) == "Cc":
            return f"contains the control character U+{ord(ch):04X}"
        if 0xD800 <= ord(ch) <= 0xDFFF:
            return "is not valid UTF-8"
    return ""


def shown_name(name: str) -> str:
    """``name`` quoted with its control characters escaped, safe for a log line or a report."""
    return ascii(name) if unsafe_name_problem(name) else repr(name)


def shown_uri(uri: str) -> str:
    """``uri`` with control characters and undecodable bytes percent-encoded (URIs of unsafe names)."""
    out: list[str] = []
    for ch in uri:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, kept by surrogateescape
            out.append(f"%{code - 0xDC00:02X}")
        elif unicodedata.category(ch) in ("Cc", "Cs"):
            out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass")))
        else:
            out.append(ch)
    return "".join(out)


__all__ = [
    "ExpansionLimits",
    "check_archive",
    "check_file_name",
    "check_html",
    "check_pdf_streams",
    "inflated_size",
    "shown_name",
    "shown_uri",
    "unsafe_name_problem",
]
