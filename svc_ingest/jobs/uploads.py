"""Receiving an upload: consecutive pieces of small files, written to a staging folder within the upload limits."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from mesh.errors import FieldViolation, InvalidArgument, ResourceExhausted
from svc_ingest.config import Config
from svc_ingest.domain.guards import unsafe_name_problem
from svc_ingest.domain.model import JobOptions
from svc_ingest.domain.sources import SourceFile

UPLOAD_SCHEME = "upload://"


@dataclass(frozen=True)
class UploadPiece:
    """One message of an upload: a piece of a file, and the job's options as requested (first piece counts)."""

    filename: str
    data: bytes
    options: JobOptions


async def receive(pieces: AsyncIterator[UploadPiece], staged: Path, cfg: Config) -> tuple[list[SourceFile], JobOptions]:
    """Writes the upload's files under ``staged``; returns them and the options the first piece carried."""
    files: list[SourceFile] = []
    options: JobOptions | None = None
    current: str | None = None
    handle = None
    size = 0
    total = 0
    try:
        async for piece in pieces:
            if options is None:
                options = piece.options
            if piece.filename != current:
                if handle is not None:
                    handle.close()
                    files.append(_uploaded(staged, current, size))
                if any(f.name == piece.filename for f in files):
                    raise InvalidArgument(
                        f"file {piece.filename!r} appears twice in the upload",
                        reason="DUPLICATE_UPLOAD",
                        violations=[FieldViolation("filename", "each file's pieces must be consecutive")],
                    )
                if len(files) + 1 > cfg.max_upload_files:
                    raise ResourceExhausted(
                        f"an upload may carry at most {cfg.max_upload_files} files", reason="UPLOAD_TOO_MANY_FILES"
                    )
                current = piece.filename
                # A name that is not one plain file name ("..", control characters) is never
                # used as a path: its bytes are counted and dropped, and the job reports the
                # file as UNSAFE_FILENAME. Path separators are refused by the contract itself.
                target = Path(os.devnull) if unsafe_name_problem(current) else staged / current
                handle = target.open("wb")
                size = 0
            size += len(piece.data)
            total += len(piece.data)
            if size > cfg.max_upload_file_bytes:
                raise ResourceExhausted(
                    f"{current!r} is larger than {cfg.max_upload_file_bytes:,} bytes; use CreateIngestJob "
                    "with a path or an s3:// source for large files",
                    reason="UPLOAD_FILE_TOO_LARGE",
                )
            if total > cfg.max_upload_bytes:
                raise ResourceExhausted(
                    f"an upload may carry at most {cfg.max_upload_bytes:,} bytes", reason="UPLOAD_TOO_LARGE"
                )
            assert handle is not None
            handle.write(piece.data)
    finally:
        if handle is not None and not handle.closed:
            handle.close()
    if current is not None:
        files.append(_uploaded(staged, current, size))
    if not files:
        raise InvalidArgument(
            "the upload carried no file",
            reason="EMPTY_UPLOAD",
            violations=[FieldViolation("filename", "send at least one message")],
        )
    assert options is not None  # set by the first piece
    return files, options


def _uploaded(staged: Path, name: str | None, size: int) -> SourceFile:
    assert name is not None
    local = None if unsafe_name_problem(name) else staged / name
    return SourceFile(uri=UPLOAD_SCHEME + name, name=name, size=size, local_path=local)
