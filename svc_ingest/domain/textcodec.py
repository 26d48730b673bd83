"""Turning the bytes of a text file into text: BOMs, UTF-16/32 without BOMs, legacy code pages.

Order matters: a UTF-32 LE BOM starts with the UTF-16 LE BOM, so UTF-32 is
tried first; strict UTF-8 comes before statistical detection because valid
UTF-8 is almost never an accident; BOM-less UTF-16/32 is recognised by its
zero bytes before charset detection, which handles neither well. Binary
content fails with NOT_TEXT instead of turning into mojibake chunks.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

import charset_normalizer

from svc_ingest.domain.failures import FailureCode, FileFailure

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Share of C0 control characters (other than tab, newline, CR, FF) above which text is binary.
_MAX_CONTROL_SHARE = 0.01
_SAMPLE_BYTES = 64 * 1024


@dataclass(frozen=True)
class DecodedText:
    """Text with the encoding it was read in."""

    text: str
    encoding: str


def decode_bytes(data: bytes) -> DecodedText:
    """Decodes ``data``; raises FileFailure(NOT_TEXT) when it is not text in any encoding we know."""
    if not data:
        raise FileFailure(FailureCode.EMPTY_FILE, "the file is empty (0 bytes)")
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return _checked(data[len(bom) :].decode(encoding, errors="replace"), encoding)
    wide = _bomless_wide_encoding(data[:_SAMPLE_BYTES])
    if wide is not None:
        return _checked(data.decode(wide, errors="replace"), wide)
    if b"\x00" not in data[:_SAMPLE_BYTES]:
        try:
            return _checked(data.decode("utf-8"), "utf-8")
        except UnicodeDecodeError:
            pass
    legacy = _legacy_encoding(data[: 4 * _SAMPLE_BYTES])
    if legacy is None:
        raise FileFailure(FailureCode.NOT_TEXT, "the content is binary, not text in any known encoding")
    return _checked(data.decode(legacy, errors="replace"), legacy)


# Among code pages that decode a sample equally cleanly, the Western ones are by far the most
# common in document estates; charset detection alone ranks them no higher than Central
# European or Baltic pages that happen to map the same bytes to other accented letters.
_PREFERRED = ("cp1252", "iso8859_15", "latin_1")
_TIE = 0.01


def _legacy_encoding(sample: bytes) -> str | None:
    matches = list(charset_normalizer.from_bytes(sample))
    if not matches:
        return None
    best = min(m.chaos for m in matches)
    tied = {m.encoding for m in matches if m.chaos <= best + _TIE}
    for name in _PREFERRED:
        if name in tied:
            return name
    return str(min(matches, key=lambda m: m.chaos).encoding)


def _bomless_wide_encoding(sample: bytes) -> str | None:
    """UTF-32 or UTF-16 without a BOM, recognised by where the zero bytes sit in ASCII-heavy text."""
    if len(sample) < 8:
        return None
    sample = sample[: len(sample) - len(sample) % 4]
    quads = [sample[i : i + 4] for i in range(0, len(sample), 4)]
    if sum(q[1:] == b"\x00\x00\x00" for q in quads) > 0.6 * len(quads):
        return "utf-32-le"
    if sum(q[:3] == b"\x00\x00\x00" for q in quads) > 0.6 * len(quads):
        return "utf-32-be"
    pairs = [sample[i : i + 2] for i in range(0, len(sample), 2)]
    if sum(p[1] == 0 and p[0] != 0 for p in pairs) > 0.4 * len(pairs):
        return "utf-16-le"
    if sum(p[0] == 0 and p[1] != 0 for p in pairs) > 0.4 * len(pairs):
        return "utf-16-be"
    return None


def _checked(text: str, encoding: str) -> DecodedText:
    sample = text[:_SAMPLE_BYTES]
    if sample:
        controls = sum(1 for ch in sample if ch < " " and ch not in "\t\n\r\f\v")
        if controls / len(sample) > _MAX_CONTROL_SHARE:
            raise FileFailure(
                FailureCode.NOT_TEXT,
                f"the content is binary, not text ({controls} control characters in the first {len(sample)})",
            )
        if sample.count("\ufffd") / len(sample) > _MAX_CONTROL_SHARE:
            raise FileFailure(FailureCode.NOT_TEXT, f"the content does not decode as {encoding}")
    return DecodedText(text=text.replace("\r\n", "\n").replace("\r", "\n"), encoding=encoding)
