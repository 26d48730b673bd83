"""Text-extraction report: parses every file under some folders and counts what came out.

``python -m svc_ingest.extraction_report ../shared/corpus/noise --json out.json``
prints the share of files that yielded text, the counts per format, and every
file that failed with its code and reason. Files are parsed in worker
processes (one file at a time each, recycled every few files) so a file that
crashes or exhausts a parser cannot take the report with it. This is the
quality gate for parsing; it measures no speed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from svc_ingest.domain.failures import FailureCode, FileFailure
from svc_ingest.domain.formats import SUPPORTED_SUFFIXES
from svc_ingest.domain.parse import ParseOptions, parse_file

# Files that describe a corpus rather than belong to it.
_SKIP_NAMES = frozenset({"README.md", "ATTRIBUTION.md", "LICENSE", "questions.jsonl"})


@dataclass(frozen=True)
class FileResult:
    """What parsing one file produced."""

    path: str
    format: str
    ok: bool
    chars: int = 0
    ocr_pages: int = 0
    code: str = ""
    reason: str = ""
    seconds: float = 0.0


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    return suffix.lstrip(".") if suffix in SUPPORTED_SUFFIXES else "other"


def parse_one(path_text: str) -> FileResult:
    """Parses one file and reports the outcome; never raises."""
    path = Path(path_text)
    started = time.perf_counter()
    fmt = _format_of(path)
    try:
        doc = parse_file(path, path.name, ParseOptions(timeout_s=300))
    except FileFailure as failure:
        return FileResult(
            path_text,
            fmt,
            False,
            code=failure.code.value,
            reason=failure.reason,
            seconds=round(time.perf_counter() - started, 2),
        )
    except Exception as exc:  # noqa: BLE001 - the report must list every file
        return FileResult(
            path_text,
            fmt,
            False,
            code=FailureCode.PARSER_ERROR.value,
            reason=repr(exc)[:300],
            seconds=round(time.perf_counter() - started, 2),
        )
    return FileResult(
        path_text,
        fmt,
        True,
        chars=doc.text_chars,
        ocr_pages=doc.ocr_pages,
        seconds=round(time.perf_counter() - started, 2),
    )


def discover(roots: Sequence[Path]) -> list[Path]:
    """Every file under ``roots`` (files given directly are kept), sorted."""
    files: list[Path] = []
    for root in roots:
        if root.is_file():
            files.append(root)
            continue
        files.extend(p for p in root.rglob("*") if p.is_file() and p.name not in _SKIP_NAMES)
    return sorted(files)


def report(files: Sequence[Path], workers: int) -> dict[str, object]:
    """Parses ``files`` in ``workers`` processes and summarises the outcome."""
    results: list[FileResult] = []
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, maxtasksperchild=16) as pool:
        for result in pool.imap_unordered(parse_one, [str(f) for f in files]):
            results.append(result)
            mark = "ok " if result.ok else "ERR"
            print(f"{mark} {result.seconds:7.2f}s {result.path} {result.code}", file=sys.stderr, flush=True)
    results.sort(key=lambda r: r.path)
    per_format: dict[str, dict[str, int]] = {}
    for r in results:
        entry = per_format.setdefault(r.format, {"files": 0, "extracted": 0, "failed": 0})
        entry["files"] += 1
        entry["extracted" if r.ok else "failed"] += 1
    extracted = sum(r.ok for r in results)
    return {
        "files": len(results),
        "extracted": extracted,
        "extraction_rate": round(extracted / len(results), 4) if results else 0.0,
        "ocr_pages": sum(r.ocr_pages for r in results),
        "chars": sum(r.chars for r in results),
        "per_format": per_format,
        "failures_by_code": dict(Counter(r.code for r in results if not r.ok)),
        "failures": [{"path": r.path, "code": r.code, "reason": r.reason} for r in results if not r.ok],
        "results": [asdict(r) for r in results],
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path, help="files or folders to parse")
    parser.add_argument("--workers", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    parser.add_argument("--json", type=Path, default=None, help="write the full report here")
    args = parser.parse_args(argv)
    summary = report(discover(args.paths), args.workers)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2))
    printable = {k: v for k, v in summary.items() if k != "results"}
    print(json.dumps(printable, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
