"""ListDocuments paging: opaque tokens that resume a listing after (source_uri, doc_id)."""

from __future__ import annotations

import base64

from mesh.errors import FieldViolation, InvalidArgument


def page_token(source_uri: str, doc_id: str) -> str:
    """An opaque token that resumes a listing after (source_uri, doc_id)."""
    return base64.urlsafe_b64encode(f"{source_uri}\x00{doc_id}".encode()).decode()


def parse_page_token(token: str) -> tuple[str, str]:
    """Inverse of ``page_token``; raises ValueError for a token it did not make."""
    raw = base64.urlsafe_b64decode(token.encode()).decode()
    uri, sep, doc_id = raw.partition("\x00")
    if not sep or "\x00" in doc_id:
        raise ValueError("not a page token")
    return uri, doc_id


def resume_after(token: str) -> tuple[str, str]:
    """The key a listing resumes after: ("", "") for the first page; INVALID_ARGUMENT for a foreign token."""
    if not token:
        return "", ""
    try:
        return parse_page_token(token)
    except ValueError as exc:
        raise InvalidArgument(
            "page_token is not one this service issued",
            reason="INVALID_PAGE_TOKEN",
            violations=[FieldViolation("page_token", "not a token from a previous ListDocuments response")],
        ) from exc
