"""Source strings: what parse_source accepts and the clear errors it gives for the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from svc_ingest.domain.sources import SourceError, parse_source


def test_local_paths_and_file_uris(tmp_path: Path) -> None:
    (tmp_path / "a b").mkdir()
    assert parse_source(str(tmp_path / "a b")).path == (tmp_path / "a b").resolve()
    assert parse_source(f"file://{tmp_path}/a%20b").path == (tmp_path / "a b").resolve()
    s3 = parse_source("s3://bucket/docs/%C3%A9t%C3%A9")
    assert (s3.kind, s3.bucket, s3.prefix) == ("s3", "bucket", "docs/été")


@pytest.mark.parametrize(
    "raw",
    [
        "file:///tmp/a%00b",  # a NUL hidden in percent-encoding (the fuzzer's INTERNAL: embedded null byte)
        "/tmp/a\x00b",
        "s3://bucket/a%00b",
        "relative/path",
        "http://example.invalid/x",
        "file://host/tmp",
        "s3:///no-bucket",
        "   ",
    ],
)
def test_unusable_sources_are_source_errors(raw: str) -> None:
    with pytest.raises(SourceError) as info:
        parse_source(raw)
    assert info.value.reason == "INVALID_SOURCE"


def test_missing_and_outside_the_roots(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as info:
        parse_source(str(tmp_path / "nope"))
    assert info.value.reason == "SOURCE_NOT_FOUND"
    with pytest.raises(SourceError) as info:
        parse_source(str(tmp_path), allowed_roots=(tmp_path / "inside",))
    assert (info.value.reason, info.value.permission) == ("SOURCE_NOT_ALLOWED", True)
