"""Reading sources: local folders are walked and hashed in place, S3 objects are streamed to a staging folder."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from svc_ingest.clients.s3 import S3Error, S3Reader
from svc_ingest.domain.model import doc_id_for
from svc_ingest.domain.ports import FileUnreadable, SourceUnavailable
from svc_ingest.domain.sources import Source, SourceFile, hash_file, walk_local


class SourceFiles:
    """The SourceReader of svc_ingest: local paths and S3 prefixes (blocking work runs in threads)."""

    def __init__(self, s3: Callable[[], S3Reader]) -> None:
        self._s3 = s3

    async def list(self, source: Source) -> list[SourceFile]:
        """Every file under ``source``; an S3 prefix that cannot be listed is SourceUnavailable."""
        if source.kind != "s3":
            return await asyncio.to_thread(_walking, source)
        reader = self._s3()
        try:
            return await asyncio.to_thread(_listing, reader, source)
        except S3Error as exc:
            raise SourceUnavailable(str(exc)) from exc

    async def stage(self, file: SourceFile, staging: Path) -> tuple[Path, str]:
        """A local file's own path, or an S3 object downloaded under ``staging``; with the SHA-256 of its bytes."""
        try:
            if file.local_path is not None:
                digest = await asyncio.to_thread(hash_file, file.local_path)
                return file.local_path, digest
            target = staging / doc_id_for(file.uri) / file.name
            reader = self._s3()
            digest = await asyncio.to_thread(reader.download, file, target)
        except (OSError, S3Error) as exc:
            raise FileUnreadable(str(exc)) from exc
        return target, digest


def _listing(reader: S3Reader, source: Source) -> list[SourceFile]:
    return list(reader.list(source))


def _walking(source: Source) -> list[SourceFile]:
    return list(walk_local(source))
