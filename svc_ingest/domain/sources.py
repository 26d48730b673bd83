"""Sources: what a job reads from, and the files found in them.

A source is a local path, a ``file://`` URI or an ``s3://bucket/prefix`` URI.
Every file gets a canonical URI (``file:///abs/path`` or ``s3://bucket/key``);
the document id is derived from it, so the same file is the same document in
every job. ``sync`` removes documents whose URI lies under a source but that
the source no longer holds.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote, unquote, urlsplit

from svc_ingest.domain.formats import SUPPORTED_SUFFIXES

_HASH_BLOCK = 1024 * 1024


class SourceError(ValueError):
    """A source string that cannot be used (bad URI, missing path, outside the allowed roots)."""

    def __init__(self, message: str, *, reason: str = "INVALID_SOURCE", permission: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.permission = permission


@dataclass(frozen=True)
class Source:
    """A parsed source: a local directory or file, or an S3 bucket and key prefix."""

    raw: str
    kind: str
    """"file" or "s3"."""
    path: Path | None = None
    bucket: str = ""
    prefix: str = ""

    @property
    def uri(self) -> str:
        """The canonical URI of the source itself (file URIs of directories end without "/")."""
        if self.kind == "s3":
            return f"s3://{self.bucket}/{self.prefix}"
        assert self.path is not None
        return file_uri(self.path)

    def contains(self, uri: str) -> bool:
        """True when a document URI lies under this source (what ``sync`` may delete)."""
        own = self.uri
        if self.kind == "s3":
            return uri.startswith(own)
        return uri == own or uri.startswith(own.rstrip("/") + "/")


@dataclass(frozen=True)
class SourceFile:
    """One file found in a source."""

    uri: str
    name: str
    size: int
    local_path: Path | None = None
    """Where the bytes are on this machine (set for local files; S3 objects are staged later)."""
    etag: str = ""

    @property
    def suffix(self) -> str:
        """The lower-case file name ending ("" when none)."""
        return PurePosixPath(self.name).suffix.lower()

    @property
    def format_name(self) -> str:
        """The format label used in per-format counts: the ending without its dot, or "other"."""
        return self.suffix.lstrip(".") if self.suffix in SUPPORTED_SUFFIXES else "other"


def file_uri(path: Path) -> str:
    """``file://`` URI of an absolute path, percent-encoded.

    Encoded from the path's bytes, so a name that is not UTF-8 (kept by Python as surrogate
    escapes) gets its raw bytes percent-encoded instead of failing; UTF-8 names come out as before.
    """
    return "file://" + quote(os.fsencode(path.resolve()))


def parse_source(raw: str, allowed_roots: tuple[Path, ...] = ()) -> Source:
    """Parses a source string; local paths must exist (and lie under ``allowed_roots`` when set)."""
    text = raw.strip()
    if not text:
        raise SourceError("a source is empty")
    if text.startswith("s3://"):
        parts = urlsplit(text)
        bucket = parts.netloc
        if not bucket:
            raise SourceError(f"{raw!r}: an s3 URI needs a bucket (s3://bucket/prefix)")
        prefix = unquote(parts.path.lstrip("/"))
        if "\x00" in prefix:
            raise SourceError(f"{raw!r}: a NUL (%00) cannot be part of an object key")
        return Source(raw=raw, kind="s3", bucket=bucket, prefix=prefix)
    if "://" in text and not text.startswith("file://"):
        scheme = text.split("://", 1)[0]
        raise SourceError(f"{raw!r}: unsupported scheme {scheme}:// (use a local path, file:// or s3://)")
    if text.startswith("file://"):
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost"):
            raise SourceError(f"{raw!r}: file URIs must name a local path (file:///path)")
        text = unquote(parts.path)
    if "\x00" in text:
        raise SourceError(f"{raw!r}: a NUL (%00) cannot be part of a path")
    path = Path(text).expanduser()
    if not path.is_absolute():
        raise SourceError(f"{raw!r}: local paths must be absolute (the service does not share your directory)")
    path = path.resolve()
    if allowed_roots and not any(path == root or root in path.parents for root in allowed_roots):
        raise SourceError(
            f"{raw!r} is outside the directories this service may read", permission=True, reason="SOURCE_NOT_ALLOWED"
        )
    if not path.exists():
        raise SourceError(f"{raw!r} does not exist on the ingest service's machine", reason="SOURCE_NOT_FOUND")
    return Source(raw=raw, kind="file", path=path)


def walk_local(source: Source) -> Iterator[SourceFile]:
    """The files under a local source, in path order; hidden files and folders are skipped."""
    assert source.path is not None
    if source.path.is_file():
        yield _local_file(source.path)
        return
    for dirpath, dirnames, filenames in os.walk(source.path, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                yield _local_file(path)


def _local_file(path: Path) -> SourceFile:
    return SourceFile(uri=file_uri(path), name=path.name, size=path.stat().st_size, local_path=path)


def hash_file(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()
