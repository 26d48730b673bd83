"""Resolving hyperlinks between documents into LINKS_TO edges.

A link is matched against the documents of the same job by path: relative
links against the linking document's own location, site-absolute links
(``/docs/concepts/workloads/pods/``) by their longest path suffix that names
exactly one document, the way a static site maps ``pods/`` to ``pods.md`` or
``pods/_index.md``. External links (another host, mailto:, anchors) are not
edges.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

_INDEX_STEMS = frozenset({"_index", "index", "readme"})
_DOC_SUFFIXES = frozenset({".md", ".markdown", ".html", ".htm", ".xhtml", ".pdf", ".docx", ".txt"})
# Suffixes shorter than this many path segments are too ambiguous to link by.
_MIN_SUFFIX_SEGMENTS = 2


def _doc_key(path: str) -> tuple[str, ...]:
    """Path segments of a document with its extension and index file name removed."""
    pure = PurePosixPath(path)
    parts = list(pure.parts)
    if pure.suffix.lower() in _DOC_SUFFIXES:
        parts[-1] = pure.stem
    if parts and parts[-1].lower() in _INDEX_STEMS:
        parts.pop()
    return tuple(p for p in parts if p not in ("/", ""))


def _uri_path(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.scheme == "s3":
        return "/" + parts.netloc + unquote(parts.path)
    return unquote(parts.path)


class LinkResolver:
    """Maps link targets found in a document to the ids of documents of the same job."""

    def __init__(self, documents: Iterable[tuple[str, str]]) -> None:
        """``documents`` are (source URI, doc id) pairs."""
        self._by_path: dict[str, str] = {}
        self._by_suffix: dict[tuple[str, ...], set[str]] = {}
        for uri, doc_id in documents:
            path = _uri_path(uri)
            self._by_path[path] = doc_id
            key = _doc_key(path)
            for start in range(len(key)):
                self._by_suffix.setdefault(key[start:], set()).add(doc_id)

    def resolve(self, source_uri: str, links: Iterable[str]) -> list[str]:
        """Doc ids the links of the document at ``source_uri`` point to (itself excluded), deduplicated."""
        own_path = _uri_path(source_uri)
        own_id = self._by_path.get(own_path)
        found: dict[str, None] = {}
        for link in links:
            doc_id = self._resolve_one(own_path, link)
            if doc_id is not None and doc_id != own_id:
                found[doc_id] = None
        return list(found)

    def _resolve_one(self, own_path: str, link: str) -> str | None:
        try:
            parts = urlsplit(link.strip())
        except ValueError:  # not a URL at all, e.g. a template placeholder "http://[site:url]/"
            return None
        if parts.scheme not in ("", "file") or (parts.netloc and parts.scheme != "file"):
            return None
        target = unquote(parts.path)
        if not target:
            return None
        if not target.startswith("/"):
            joined = posixpath.normpath(posixpath.join(posixpath.dirname(own_path), target))
            exact = self._by_path.get(joined)
            if exact is not None:
                return exact
            # Static-site relative links are relative to the page's URL, which for "a/b.md" is "a/b/".
            target = posixpath.normpath(posixpath.join(own_path.rsplit(".", 1)[0], target))
        exact = self._by_path.get(target)
        if exact is not None:
            return exact
        key = _doc_key(target)
        for start in range(len(key)):
            suffix = key[start:]
            if len(suffix) < _MIN_SUFFIX_SEGMENTS and start > 0:
                break
            ids = self._by_suffix.get(suffix)
            if ids is not None and len(ids) == 1:
                return next(iter(ids))
        return None
