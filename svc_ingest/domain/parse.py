"""Parsing: one file on disk in, a list of unstructured elements with title and links out.

Every format goes through unstructured, with the preparation each one needs to
keep its text:

- PDF: checked first with pypdf (encrypted, truncated, corrupt files fail with
  their own codes), partitioned with the ``fast`` strategy; pages that come out
  empty (unstructured skips "too complex" files whole) are read with pypdf's
  text layer, and pages with no usable text layer at all are rendered and read
  with Tesseract, turned upright first by Tesseract's orientation detection.
  ``hi_res`` runs only when configured.
- DOCX: Strict OOXML (which python-docx cannot open) is rewritten to the
  transitional namespaces first; text in text boxes, footnotes, endnotes and
  comments, which the docx partitioner does not visit, is added after the body.
- HTML: decoded by BOM, meta charset, UTF-8 or detection; scripts, styles,
  navigation and form controls removed and forms unwrapped (unstructured skips
  whatever sits in a ``<form>``, and ASP.NET pages wrap everything in one).
- Markdown: front matter becomes metadata, Hugo shortcodes are resolved.
- Text: encoding detected (UTF-16/32 with or without BOM, legacy code pages);
  XML saved as .txt is reduced to its text.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import FrameType
from typing import Any

from lxml import etree
from lxml import html as lxml_html
from unstructured.documents.elements import Element, ElementMetadata, NarrativeText, Title

from svc_ingest.domain import offline_nlp
from svc_ingest.domain.failures import FailureCode, FileFailure
from svc_ingest.domain.formats import DocumentFormat, check_content, format_for_name
from svc_ingest.domain.guards import ExpansionLimits, check_archive, check_file_name, check_html, check_pdf_streams
from svc_ingest.domain.hugo import split_front_matter, strip_shortcodes
from svc_ingest.domain.textcodec import decode_bytes

log = logging.getLogger(__name__)
# pypdf logs every repaired cross-reference entry at WARNING; the file still parses.
logging.getLogger("pypdf").setLevel(logging.ERROR)

# unstructured prints a sales notice on import and warns about every missing language
# argument; neither helps an operator.
os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")


@dataclass(frozen=True)
class ParseOptions:
    """How files are parsed; filled from the service config."""

    pdf_strategy: str = "fast"
    """unstructured strategy for PDFs: "fast" (text layer + OCR of empty pages) or "hi_res"."""
    ocr: bool = True
    """OCR pages that have no text layer."""
    ocr_languages: tuple[str, ...] = ("eng",)
    """Tesseract languages (ISO 639-2/T codes installed on the machine)."""
    ocr_dpi: int = 300
    """Resolution pages are rendered at for OCR."""
    ocr_max_pixels: int = 4200
    """Longest side, in pixels, of a rendered page (posters are scaled down to this)."""
    max_ocr_pages: int = 100
    """Most pages of one document to OCR; later empty pages are skipped."""
    max_pages: int = 5000
    """Most pages a PDF may have."""
    max_file_bytes: int = 32 * 1024 * 1024
    """Largest file accepted, in bytes."""
    timeout_s: float = 600.0
    """Longest time one file may take to parse; 0 disables the limit."""
    limits: ExpansionLimits = field(default_factory=ExpansionLimits)
    """How far a file may expand while parsed (decompression, nesting)."""


@dataclass
class ParsedDocument:
    """The result of parsing one file."""

    document_type: DocumentFormat
    title: str
    elements: list[Element]
    links: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    ocr_pages: int = 0
    encoding: str = ""

    @property
    def text_chars(self) -> int:
        """Characters of text extracted."""
        return sum(len(e.text) for e in self.elements if e.text)


def parse_file(path: Path, name: str, options: ParseOptions | None = None) -> ParsedDocument:
    """Parses the file at ``path``; ``name`` is its source name (its ending picks the format).

    Raises FileFailure with a code and a reason when the file cannot be ingested.
    """
    opts = options or ParseOptions()
    offline_nlp.install()
    check_file_name(name)
    fmt = format_for_name(name)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise FileFailure(FailureCode.READ_ERROR, f"cannot read the file: {exc.strerror or exc}") from exc
    if size == 0:
        raise FileFailure(FailureCode.EMPTY_FILE, "the file is empty (0 bytes)")
    if size > opts.max_file_bytes:
        raise FileFailure(
            FailureCode.FILE_TOO_LARGE,
            f"the file has {size:,} bytes; the limit is {opts.max_file_bytes:,}",
        )
    check_content(path, fmt)
    with _time_limit(opts.timeout_s):
        try:
            doc = _PARSERS[fmt](path, name, opts)
        except FileFailure:
            raise
        except _ParseTimeout as exc:
            raise FileFailure(
                FailureCode.PARSE_TIMEOUT, f"parsing took longer than {opts.timeout_s:g} s and was stopped"
            ) from exc
        except MemoryError as exc:
            raise FileFailure(FailureCode.PARSER_ERROR, "the parser ran out of memory on this file") from exc
        except Exception as exc:
            log.warning("parser error on %s", name, exc_info=True)
            raise FileFailure(FailureCode.PARSER_ERROR, f"{type(exc).__name__}: {str(exc)[:300]}") from exc
    doc.elements = [e for e in doc.elements if e.text and e.text.strip()]
    if not doc.elements:
        raise FileFailure(FailureCode.NO_TEXT, "no text could be extracted (the document is blank or only images)")
    if not doc.title:
        doc.title = _first_title(doc.elements) or PurePosixPath(name).stem
    return doc


# --------------------------------------------------------------------------- time limit


class _ParseTimeout(Exception):
    """Raised inside a parser when its time is up."""


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    # A signal timer interrupts pure-Python parsers (pdfminer, lxml callbacks); it is only
    # available in the main thread, which is where Ray runs task code.
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def _expire(signum: int, frame: FrameType | None) -> None:
        raise _ParseTimeout()

    previous = signal.signal(signal.SIGALRM, _expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --------------------------------------------------------------------------- text


def _parse_text(path: Path, name: str, opts: ParseOptions) -> ParsedDocument:
    from unstructured.partition.text import partition_text

    decoded = decode_bytes(path.read_bytes())
    text = decoded.text
    stripped = text.lstrip()
    if stripped.startswith(("<?xml", "<!DOCTYPE")) and "<" in stripped[:200]:
        text = _xml_text(text)
    elements = partition_text(text=text, languages=["eng"])
    return ParsedDocument(DocumentFormat.TEXT, "", elements, encoding=decoded.encoding)


_XML_BLOCKS = frozenset({"p", "title", "sec", "abstract", "caption", "td", "th", "li", "para", "article-title"})


def _xml_text(text: str) -> str:
    """The readable text of an XML document (JATS and the like), one block per paragraph."""
    parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True, huge_tree=False)
    root = etree.fromstring(text.encode("utf-8"), parser)
    if root is None:
        return text
    parts: list[str] = []
    for el in root.iter():
        tag = el.tag if isinstance(el.tag, str) else ""
        local = tag.rsplit("}", 1)[-1]
        if local in _XML_BLOCKS:
            block = " ".join("".join(el.itertext()).split())
            if block:
                parts.append(block)
    return "\n\n".join(parts) if parts else " ".join("".join(root.itertext()).split())


# --------------------------------------------------------------------------- markdown

_MD_LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_MD_REF_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)


def _parse_markdown(path: Path, name: str, opts: ParseOptions) -> ParsedDocument:
    from unstructured.partition.md import partition_md

    decoded = decode_bytes(path.read_bytes())
    source = split_front_matter(decoded.text)
    body = strip_shortcodes(source.body)
    links = [*_MD_LINK.findall(body), *_MD_REF_LINK.findall(body)]
    if not body.strip() and source.front_matter.get("description"):
        # A section index page: its front matter is all it says, so its description is its text.
        body = f"# {source.title}\n\n{source.front_matter['description']}\n" if source.title else ""
        body = body or str(source.front_matter["description"])
    elements = partition_md(text=body, languages=["eng"]) if body.strip() else []
    metadata = {k: str(v) for k, v in source.front_matter.items() if isinstance(v, (str, int, float)) and k != "title"}
    return ParsedDocument(
        DocumentFormat.MARKDOWN,
        source.title,
        elements,
        links=_unique(links),
        metadata=metadata,
        encoding=decoded.encoding,
    )


# --------------------------------------------------------------------------- html

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_HTML_DROP = ("script", "style", "noscript", "template", "svg", "iframe", "object", "embed", "nav", "canvas")
_HTML_CONTROLS = ("input", "select", "button", "textarea", "option")


def _decode_html(data: bytes) -> tuple[str, str]:
    if not data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")) and b"\x00" not in data[:1024]:
        match = _META_CHARSET.search(data[:4096])
        if match is not None:
            declared = match.group(1).decode("ascii", "replace").lower()
            # A page declared ISO-8859-1 is in practice windows-1252 (WHATWG encoding spec).
            declared = "cp1252" if declared in ("iso-8859-1", "latin-1", "latin1", "us-ascii", "ascii") else declared
            try:
                return data.decode(declared), declared
            except (LookupError, UnicodeDecodeError):
                pass
    decoded = decode_bytes(data)
    return decoded.text, decoded.encoding


def _parse_html(path: Path, name: str, opts: ParseOptions) -> ParsedDocument:
    from unstructured.partition.html import partition_html

    text, encoding = _decode_html(path.read_bytes())
    if not text.strip():
        raise FileFailure(FailureCode.NO_TEXT, "the HTML document is empty")
    # lxml rejects str input that carries an XML encoding declaration.
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text)
    check_html(text, opts.limits)
    root = lxml_html.document_fromstring(text)
    title_el = root.find(".//title")
    title = " ".join(title_el.text_content().split()) if title_el is not None else ""
    links = [href for href in root.xpath("//a/@href") if isinstance(href, str)]
    for el in root.xpath("|".join(f"//{tag}" for tag in _HTML_DROP)):
        el.drop_tree()
    for el in root.xpath("|".join(f"//{tag}" for tag in _HTML_CONTROLS)):
        el.drop_tree()
    for form in root.xpath("//form"):
        form.drop_tag()
    for head in root.xpath("//head"):
        head.drop_tree()
    cleaned = lxml_html.tostring(root, encoding="unicode")
    elements = partition_html(text=cleaned, languages=["eng"])
    return ParsedDocument(DocumentFormat.HTML, title, elements, links=_unique(links), encoding=encoding)


# --------------------------------------------------------------------------- docx

_STRICT_NAMESPACES: tuple[tuple[bytes, bytes], ...] = tuple(
    (strict.encode(), transitional.encode())
    for strict, transitional in (
        (
            "http://purl.oclc.org/ooxml/wordprocessingml/main",
            "http://schemas.openxmlformats.org/wordprocessingml/2006/main",
        ),
        (
            "http://purl.oclc.org/ooxml/officeDocument/relationships",
            "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
        ),
        ("http://purl.oclc.org/ooxml/drawingml/main", "http://schemas.openxmlformats.org/drawingml/2006/main"),
        (
            "http://purl.oclc.org/ooxml/drawingml/wordprocessingDrawing",
            "http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing",
        ),
        ("http://purl.oclc.org/ooxml/drawingml/picture", "http://schemas.openxmlformats.org/drawingml/2006/picture"),
        ("http://purl.oclc.org/ooxml/drawingml/chart", "http://schemas.openxmlformats.org/drawingml/2006/chart"),
        (
            "http://purl.oclc.org/ooxml/officeDocument/math",
            "http://schemas.openxmlformats.org/officeDocument/2006/math",
        ),
        (
            "http://purl.oclc.org/ooxml/officeDocument/extendedProperties",
            "http://schemas.openxmlformats.org/officeDocument/2006/extended-properties",
        ),
        (
            "http://purl.oclc.org/ooxml/officeDocument/customProperties",
            "http://schemas.openxmlformats.org/officeDocument/2006/custom-properties",
        ),
        (
            "http://purl.oclc.org/ooxml/officeDocument/docPropsVTypes",
            "http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes",
        ),
        (
            "http://purl.oclc.org/ooxml/officeDocument/sharedTypes",
            "http://schemas.openxmlformats.org/officeDocument/2006/sharedTypes",
        ),
    )
)
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_EXTRA_DOCX_PARTS = (
    ("word/footnotes.xml", "Footnotes"),
    ("word/endnotes.xml", "Endnotes"),
    ("word/comments.xml", "Comments"),
)
_MAX_DOCX_PART_BYTES = 64 * 1024 * 1024


def _is_strict_ooxml(archive: zipfile.ZipFile) -> bool:
    try:
        rels = archive.read("_rels/.rels")
    except KeyError:
        return False
    return b"purl.oclc.org/ooxml" in rels


def _transitional_copy(archive: zipfile.ZipFile, target: Path) -> None:
    """Writes ``archive`` to ``target`` with Strict OOXML namespaces mapped to the transitional ones."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as out:
        for info in archive.infolist():
            data = archive.read(info)
            if info.filename.endswith((".xml", ".rels")):
                for strict, transitional in _STRICT_NAMESPACES:
                    data = data.replace(strict, transitional)
            out.writestr(info.filename, data)


def _parse_docx(path: Path, name: str, opts: ParseOptions) -> ParsedDocument:
    from unstructured.partition.docx import partition_docx

    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "EncryptedPackage" in names:
                raise FileFailure(FailureCode.ENCRYPTED_DOCX, "the document is password-protected")
            if "[Content_Types].xml" not in names:
                raise FileFailure(FailureCode.CORRUPT_DOCX, "the zip is not a Word document (no [Content_Types].xml)")
            # Decompresses every member once within the limits (and checks their CRCs).
            check_archive(archive, opts.limits)
            with tempfile.TemporaryDirectory(prefix="ragmesh-docx-") as tmp:
                source = path
                if _is_strict_ooxml(archive):
                    source = Path(tmp) / "transitional.docx"
                    _transitional_copy(archive, source)
                with zipfile.ZipFile(source) as readable:
                    extras = _docx_extra_text(readable)
                    title = _docx_title(readable)
                    links = _docx_links(readable)
                elements = partition_docx(filename=str(source), languages=["eng"])
    except zipfile.BadZipFile as exc:
        raise FileFailure(FailureCode.CORRUPT_DOCX, f"the zip archive is damaged: {exc}") from exc
    except KeyError as exc:
        raise FileFailure(FailureCode.CORRUPT_DOCX, f"a required part is missing: {exc}") from exc
    title = title or _first_title(elements)
    body_text = "\n".join(e.text for e in elements)
    for heading, paragraphs in extras:
        fresh = [p for p in paragraphs if p not in body_text]
        if fresh:
            elements.append(Title(text=heading))
            elements.extend(NarrativeText(text=p) for p in fresh)
    return ParsedDocument(DocumentFormat.DOCX, title, elements, links=links)


def _xml_part(archive: zipfile.ZipFile, part: str) -> Any | None:
    try:
        info = archive.getinfo(part)
    except KeyError:
        return None
    if info.file_size > _MAX_DOCX_PART_BYTES:
        return None
    parser = etree.XMLParser(resolve_entities=False, no_network=True, recover=True)
    return etree.fromstring(archive.read(info), parser)


def _paragraph_texts(nodes: Any) -> list[str]:
    out = []
    for p in nodes:
        text = "".join(t.text or "" for t in p.iter(f"{_W}t"))
        if text.strip():
            out.append(" ".join(text.split()))
    return out


def _docx_extra_text(archive: zipfile.ZipFile) -> list[tuple[str, list[str]]]:
    extras: list[tuple[str, list[str]]] = []
    document = _xml_part(archive, "word/document.xml")
    if document is not None:
        boxes = [p for box in document.iter(f"{_W}txbxContent") for p in box.iter(f"{_W}p")]
        extras.append(("Text boxes", _paragraph_texts(boxes)))
    for part, heading in _EXTRA_DOCX_PARTS:
        root = _xml_part(archive, part)
        if root is not None:
            extras.append((heading, _paragraph_texts(root.iter(f"{_W}p"))))
    return extras


def _docx_title(archive: zipfile.ZipFile) -> str:
    core = _xml_part(archive, "docProps/core.xml")
    if core is None:
        return ""
    for el in core.iter("{http://purl.org/dc/elements/1.1/}title"):
        return " ".join((el.text or "").split())
    return ""


def _docx_links(archive: zipfile.ZipFile) -> list[str]:
    rels = _xml_part(archive, "word/_rels/document.xml.rels")
    if rels is None:
        return []
    links = [
        rel.get("Target", "") for rel in rels if str(rel.get("Type", "")).endswith("/hyperlink") and rel.get("Target")
    ]
    return _unique(links)


# --------------------------------------------------------------------------- pdf

_CID = re.compile(r"\(cid:\d+\)")
# A page needs at least this much text to count as having a text layer.
_MIN_PAGE_CHARS = 16


def _parse_pdf(path: Path, name: str, opts: ParseOptions) -> ParsedDocument:
    from unstructured.partition.pdf import partition_pdf

    check = _check_pdf(path, opts)
    if opts.pdf_strategy == "hi_res":
        elements = partition_pdf(filename=str(path), strategy="hi_res", languages=list(opts.ocr_languages))
        return ParsedDocument(DocumentFormat.PDF, check.title, elements, links=check.links)
    elements = partition_pdf(filename=str(path), strategy="fast", languages=list(opts.ocr_languages))
    by_page: dict[int, list[Element]] = {}
    for element in elements:
        by_page.setdefault(element.metadata.page_number or 1, []).append(element)
    pages: list[list[Element]] = []
    ocr_pages = 0
    ocr_candidates: list[int] = []
    for index in range(check.page_count):
        page_elements = by_page.get(index + 1, [])
        if _usable(" ".join(e.text for e in page_elements)):
            pages.append(page_elements)
            continue
        fallback = _pypdf_page_text(path, index)
        if _usable(fallback):
            pages.append(_text_elements(fallback, index + 1))
            continue
        pages.append([])
        ocr_candidates.append(index)
    if opts.ocr:
        for index in ocr_candidates[: opts.max_ocr_pages]:
            pages[index] = _ocr_page(path, index, opts)
            ocr_pages += 1
    flat = [e for page in pages for e in page]
    return ParsedDocument(DocumentFormat.PDF, check.title, flat, links=check.links, ocr_pages=ocr_pages)


@dataclass(frozen=True)
class _PdfCheck:
    page_count: int
    title: str
    links: list[str]


def _check_pdf(path: Path, opts: ParseOptions) -> _PdfCheck:
    from pypdf import PdfReader
    from pypdf.errors import LimitReachedError, PdfReadError

    with path.open("rb") as fh:
        fh.seek(max(0, path.stat().st_size - 2048))
        tail = fh.read()
    if b"%%EOF" not in tail:
        raise FileFailure(FailureCode.TRUNCATED_PDF, "the PDF is truncated (it does not end with %%EOF)")
    try:
        reader = PdfReader(str(path), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise FileFailure(FailureCode.ENCRYPTED_PDF, "the PDF is encrypted and needs a password")
        page_count = len(reader.pages)
        # Before any parser inflates a stream in full (pdfminer has no limit of its own).
        check_pdf_streams(reader, opts.limits)
    except FileFailure:
        raise
    except LimitReachedError as exc:
        raise FileFailure(
            FailureCode.FILE_TOO_LARGE_DECOMPRESSED, f"the PDF expands past pypdf's limits: {str(exc)[:200]}"
        ) from exc
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        if "password" in str(exc).lower() or "decrypt" in str(exc).lower():
            raise FileFailure(FailureCode.ENCRYPTED_PDF, "the PDF is encrypted and needs a password") from exc
        raise FileFailure(FailureCode.CORRUPT_PDF, f"the PDF cannot be read: {str(exc)[:200]}") from exc
    if page_count == 0:
        raise FileFailure(FailureCode.CORRUPT_PDF, "the PDF has no pages")
    if page_count > opts.max_pages:
        raise FileFailure(FailureCode.TOO_MANY_PAGES, f"the PDF has {page_count} pages; the limit is {opts.max_pages}")
    title = ""
    with contextlib.suppress(Exception):
        meta = reader.metadata
        meta_title = meta.get("/Title") if meta else None
        title = " ".join(str(meta_title or "").split())
    if title.lower().startswith(("microsoft word - ", "untitled")) or title.lower().endswith((".doc", ".docx", ".pdf")):
        title = ""
    links: list[str] = []
    with contextlib.suppress(Exception):
        for page in reader.pages:
            for annot in page.get("/Annots") or []:
                action = annot.get_object().get("/A")
                uri = action.get_object().get("/URI") if action is not None else None
                if uri:
                    links.append(str(uri))
    return _PdfCheck(page_count=page_count, title=title, links=_unique(links))


def _usable(text: str) -> bool:
    """True when ``text`` looks like a real text layer (not empty, not unmapped glyph ids)."""
    cleaned = _CID.sub("", text)
    meaningful = sum(ch.isalnum() for ch in cleaned)
    if meaningful < _MIN_PAGE_CHARS:
        return False
    return cleaned.count("\ufffd") < 0.1 * len(cleaned)


def _pypdf_page_text(path: Path, index: int) -> str:
    from pypdf import PdfReader

    try:
        reader = PdfReader(str(path), strict=False)
        if reader.is_encrypted:
            reader.decrypt("")
        return reader.pages[index].extract_text() or ""
    except Exception:  # noqa: BLE001 - the page just has no readable text layer
        return ""


def _text_elements(text: str, page_number: int) -> list[Element]:
    from unstructured.partition.text import partition_text

    elements = partition_text(text=text, languages=["eng"])
    for element in elements:
        element.metadata.page_number = page_number
    return elements


def _ocr_page(path: Path, index: int, opts: ParseOptions) -> list[Element]:
    import pypdfium2
    from unstructured.partition.image import partition_image

    pdf = pypdfium2.PdfDocument(str(path))
    try:
        page = pdf[index]
        width, height = page.get_size()
        scale = min(opts.ocr_dpi / 72.0, opts.ocr_max_pixels / max(width, height, 1.0))
        image = page.render(scale=scale, grayscale=True).to_pil()
    finally:
        pdf.close()
    image = _upright(image, opts)
    with tempfile.NamedTemporaryFile(suffix=".png", prefix="ragmesh-ocr-") as tmp:
        image.save(tmp.name, format="PNG")
        elements = partition_image(filename=tmp.name, strategy="ocr_only", languages=list(opts.ocr_languages))
    for element in elements:
        element.metadata = element.metadata or ElementMetadata()
        element.metadata.page_number = index + 1
    return list(elements)


def _upright(image: Any, opts: ParseOptions) -> Any:
    """Rotates a page image upright using Tesseract's orientation detection (OSD)."""
    import unstructured_pytesseract as tesseract

    try:
        osd = tesseract.image_to_osd(image, output_type=tesseract.Output.DICT, config="--psm 0", timeout=60)
    except Exception:  # noqa: BLE001 - OSD fails on pages with too little text; keep the page as is
        return image
    rotate = int(osd.get("rotate", 0) or 0)
    if rotate % 360 == 0 or float(osd.get("orientation_conf", 0.0) or 0.0) < 1.0:
        return image
    # OSD reports the clockwise rotation that makes the page upright; PIL rotates counter-clockwise.
    return image.rotate(-rotate, expand=True)


# --------------------------------------------------------------------------- helpers


def _first_title(elements: list[Element]) -> str:
    """The first heading that reads like a title (mostly letters, not a row of dates or numbers)."""
    for element in elements[:50]:
        text = " ".join(element.text.split())
        if element.category != "Title" or not 2 < len(text) <= 200:
            continue
        letters = sum(ch.isalpha() for ch in text)
        if letters >= 0.6 * len(text.replace(" ", "")):
            return text
    return ""


def _unique(items: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        item = item.strip()
        if item and item not in seen:
            seen[item] = None
    return list(seen)


_PARSERS = {
    DocumentFormat.PDF: _parse_pdf,
    DocumentFormat.DOCX: _parse_docx,
    DocumentFormat.HTML: _parse_html,
    DocumentFormat.MARKDOWN: _parse_markdown,
    DocumentFormat.TEXT: _parse_text,
}

__all__ = ["ParseOptions", "ParsedDocument", "parse_file"]
