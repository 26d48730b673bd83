"""Why a file could not be ingested: one exception type with a stable code.

A failure belongs to one file and never stops a job; the job reports it with
the file's path (``FileError`` in the contract) and ends PARTIAL_SUCCESS.
"""

from __future__ import annotations

import enum
import re


class FailureCode(enum.StrEnum):
    """Machine-readable reasons a file was not ingested (UPPER_SNAKE, stable for clients)."""

    EMPTY_FILE = "EMPTY_FILE"
    FILE_TOO_LARGE = "FILE_TOO_LARGE"
    FILE_TOO_LARGE_DECOMPRESSED = "FILE_TOO_LARGE_DECOMPRESSED"
    DOCUMENT_TOO_DEEP = "DOCUMENT_TOO_DEEP"
    TOO_MANY_ELEMENTS = "TOO_MANY_ELEMENTS"
    UNSAFE_FILENAME = "UNSAFE_FILENAME"
    UNSUPPORTED_TYPE = "UNSUPPORTED_TYPE"
    NOT_A_PDF = "NOT_A_PDF"
    ENCRYPTED_PDF = "ENCRYPTED_PDF"
    TRUNCATED_PDF = "TRUNCATED_PDF"
    CORRUPT_PDF = "CORRUPT_PDF"
    TOO_MANY_PAGES = "TOO_MANY_PAGES"
    NOT_A_ZIP = "NOT_A_ZIP"
    CORRUPT_DOCX = "CORRUPT_DOCX"
    ENCRYPTED_DOCX = "ENCRYPTED_DOCX"
    NOT_TEXT = "NOT_TEXT"
    NO_TEXT = "NO_TEXT"
    PARSE_TIMEOUT = "PARSE_TIMEOUT"
    PARSER_ERROR = "PARSER_ERROR"
    READ_ERROR = "READ_ERROR"
    EMBED_FAILED = "EMBED_FAILED"
    INDEX_FAILED = "INDEX_FAILED"
    PREPARE_FAILED = "PREPARE_FAILED"


class FileFailure(Exception):
    """A file that cannot be ingested, with a code and a reason for people."""

    def __init__(self, code: FailureCode, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


def root_cause(exc: BaseException) -> BaseException:
    """The exception underneath Ray's wrappers (RayTaskError, UserCodeException keep it as ``cause``)."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "cause", None) or exc.__cause__
        if not isinstance(inner, BaseException):
            break
        exc = inner
    return exc


#: An exception line of a printed traceback: "module.Type: message".
_EXCEPTION_LINE = re.compile(
    r"^(?P<type>[A-Za-z_][\w.]*(?:Error|Exception|Exceeded|Exhausted|Unavailable|Denied|Invalid\w*|NotFound|Timeout))"
    r": (?P<message>.+)$"
)


def _under_ray(text: str) -> str | None:
    """The innermost error a Ray wrapper printed that is not Ray's own ("UDF failed to process a data block").

    Ray Data raises UserCodeException from the stage's error; the driver gets it without the
    ``__cause__`` (lost in pickling), but the wrapper's text still prints the chain.
    """
    found = None
    for line in text.splitlines():
        match = _EXCEPTION_LINE.match(line.strip())
        if match and not match["type"].startswith("ray."):
            found = f"{match['type'].rsplit('.', 1)[-1]}: {match['message'].strip()}"
    return found


def describe(exc: BaseException) -> str:
    """What went wrong, in one line a caller may read: no traceback, no file path of this host."""
    printed = str(exc)
    exc = root_cause(exc)
    if type(exc).__name__ == "UserCodeException":
        inner = _under_ray(printed)
        if inner:
            return inner[:500]
    details = getattr(exc, "details", None)
    code = getattr(exc, "code", None)
    if callable(details) and callable(code):
        return f"{code().name}: {details()}"[:500]
    lines = str(exc).strip().splitlines()
    # Ray's wrappers print a traceback into their message; its last line names the error.
    message = lines[-1].strip() if lines and "Traceback" in str(exc) else (lines[0].strip() if lines else "")
    return f"{type(exc).__name__}: {message}"[:500]
