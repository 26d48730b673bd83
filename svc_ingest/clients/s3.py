"""S3 sources: listing a bucket prefix and staging objects on local disk.

boto3 is blocking, so callers run these methods in a thread. Objects are
streamed to disk in parts (never held whole in memory) and hashed on the way.
The endpoint is configurable, which is how tests reach a local S3-compatible
server and how MinIO or other S3 implementations are used.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from svc_ingest.domain.sources import Source, SourceFile

_PART_BYTES = 1024 * 1024


class S3Error(RuntimeError):
    """An S3 source could not be listed or read."""


class S3Reader:
    """Lists and downloads objects of S3 sources."""

    def __init__(self, *, endpoint_url: str = "", region: str = "", timeout_s: float = 30.0) -> None:
        import boto3
        from botocore.config import Config as BotoConfig

        config = BotoConfig(
            connect_timeout=timeout_s, read_timeout=timeout_s, retries={"max_attempts": 5, "mode": "standard"}
        )
        self._client: Any = boto3.client(
            "s3", endpoint_url=endpoint_url or None, region_name=region or None, config=config
        )

    def list(self, source: Source) -> Iterator[SourceFile]:
        """Objects under the source's prefix, in key order ("folders" and empty keys skipped)."""
        from botocore.exceptions import BotoCoreError, ClientError

        paginator = self._client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=source.bucket, Prefix=source.prefix):
                for obj in page.get("Contents", []):
                    key = obj["Key"]
                    if key.endswith("/"):
                        continue
                    name = PurePosixPath(key).name
                    if name.startswith("."):
                        continue
                    yield SourceFile(
                        uri=f"s3://{source.bucket}/{key}",
                        name=name,
                        size=int(obj.get("Size", 0)),
                        etag=str(obj.get("ETag", "")).strip('"'),
                    )
        except (BotoCoreError, ClientError) as exc:
            raise S3Error(f"cannot list {source.uri}: {exc}") from exc

    def download(self, file: SourceFile, target: Path) -> str:
        """Streams the object to ``target`` and returns the SHA-256 (hex) of its bytes."""
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, _, key = file.uri.removeprefix("s3://").partition("/")
        digest = hashlib.sha256()
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            body = self._client.get_object(Bucket=bucket, Key=key)["Body"]
            with target.open("wb") as out:
                for part in body.iter_chunks(_PART_BYTES):
                    digest.update(part)
                    out.write(part)
        except (BotoCoreError, ClientError) as exc:
            raise S3Error(f"cannot read {file.uri}: {exc}") from exc
        return digest.hexdigest()
