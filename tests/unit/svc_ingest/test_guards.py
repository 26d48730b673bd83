"""Files built to attack the parsers fail with their own reason, and parsing them keeps memory bounded.

Each hostile file is parsed in a forked child whose peak resident memory is reset
just before the parse (``/proc/self/clear_refs``), so the growth measured is the
parse's own; the child also runs under an address-space limit, so a guard that
regresses fails the test with a MemoryError instead of exhausting the machine.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import resource
import zlib
from pathlib import Path
from typing import Any

import pytest

from svc_ingest.domain.failures import FailureCode, FileFailure
from svc_ingest.domain.guards import (
    ExpansionLimits,
    check_file_name,
    inflated_size,
    shown_name,
    shown_uri,
    unsafe_name_problem,
)
from svc_ingest.domain.parse import ParseOptions, parse_file
from svc_ingest.domain.sources import Source, file_uri, walk_local
from tests.fixtures.hostile.attacks import deep_html, lying_docx, pdf_bomb, wide_html, zip_bomb_docx

MiB = 1024 * 1024
# What a guarded parse of any of these files may add to the parser's resident memory. Unguarded,
# the DOCX bomb needs its 1 GiB document.xml in memory and pdfminer inflates the PDF's 4 GiB.
PARSE_GROWTH_BOUND = 160 * MiB
# Room the child process may map beyond what it has at the fork (a regression dies here).
_CHILD_HEADROOM = 3 * 1024 * MiB


def _status(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    assert match is not None, field
    return int(match.group(1)) * 1024


def _child(conn: Any, path: str, name: str, options: ParseOptions | None) -> None:
    size = _status("VmSize")
    resource.setrlimit(resource.RLIMIT_AS, (size + _CHILD_HEADROOM, resource.RLIM_INFINITY))
    Path("/proc/self/clear_refs").write_text("5")  # resets the peak (VmHWM) to the current RSS
    before = _status("VmRSS")
    try:
        parse_file(Path(path), name, options)
        outcome = ("", "")
    except FileFailure as failure:
        outcome = (failure.code.value, failure.reason)
    except BaseException as exc:  # noqa: BLE001 - reported to the test, which fails on it
        outcome = ("UNEXPECTED", f"{type(exc).__name__}: {exc}")
    conn.send((*outcome, _status("VmHWM") - before))
    conn.close()


def parse_measured(path: Path, name: str | None = None, options: ParseOptions | None = None) -> tuple[str, str, int]:
    """(failure code or "", reason, growth of peak RSS in bytes) of parsing ``path`` in a forked child."""
    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(sender, str(path), name or path.name, options))
    process.start()
    sender.close()
    try:
        assert receiver.poll(300), "the parse did not finish in 300 s"
        code, reason, growth = receiver.recv()
    finally:
        process.join(30)
    return str(code), str(reason), int(growth)


@pytest.fixture(scope="module", autouse=True)
def _parsers_imported(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Imports every parser before forking, so the children measure parsing, not imports."""
    import unstructured.partition.docx
    import unstructured.partition.html
    import unstructured.partition.pdf
    import unstructured.partition.text  # noqa: F401

    folder = tmp_path_factory.mktemp("warm")
    (folder / "warm.html").write_text("<html><body><p>Warm the HTML parser with a short paragraph.</p></body></html>")
    parse_file(folder / "warm.html", "warm.html")


def test_zip_bomb_docx_is_refused_from_its_declared_size(tmp_path: Path) -> None:
    inflated = zip_bomb_docx(tmp_path / "bomb.docx")
    assert inflated > 1000 * MiB and (tmp_path / "bomb.docx").stat().st_size < 8 * MiB

    code, reason, growth = parse_measured(tmp_path / "bomb.docx")

    assert code == FailureCode.FILE_TOO_LARGE_DECOMPRESSED, reason
    assert "word/document.xml" in reason
    assert growth < PARSE_GROWTH_BOUND, growth


def test_zip_member_counted_while_streaming_when_under_its_declared_limit(tmp_path: Path) -> None:
    # 96 MiB declared and real: under the XML part limit of this test, over the member limit only once inflated.
    zip_bomb_docx(tmp_path / "bomb.docx", 96 * MiB)
    limits = ExpansionLimits(max_decompressed_bytes=200 * MiB, max_total_decompressed_bytes=64 * MiB)

    code, reason, growth = parse_measured(tmp_path / "bomb.docx", options=ParseOptions(limits=limits))

    assert code == FailureCode.FILE_TOO_LARGE_DECOMPRESSED, reason
    assert growth < PARSE_GROWTH_BOUND, growth


def test_docx_whose_headers_lie_about_the_size_is_corrupt_not_inflated(tmp_path: Path) -> None:
    real = lying_docx(tmp_path / "lying.docx")
    assert real > 500 * MiB

    code, reason, growth = parse_measured(tmp_path / "lying.docx")

    assert code == FailureCode.CORRUPT_DOCX, reason
    assert growth < PARSE_GROWTH_BOUND, growth


def test_pdf_decompression_bomb_is_refused_before_any_parser_inflates_it(tmp_path: Path) -> None:
    inflated = pdf_bomb(tmp_path / "bomb.pdf")
    assert inflated >= 4096 * MiB and (tmp_path / "bomb.pdf").stat().st_size < 64 * 1024

    code, reason, growth = parse_measured(tmp_path / "bomb.pdf")

    assert code == FailureCode.FILE_TOO_LARGE_DECOMPRESSED, reason
    assert "stream 4" in reason
    assert growth < PARSE_GROWTH_BOUND, growth


def test_deeply_nested_html_is_refused_early(tmp_path: Path) -> None:
    deep_html(tmp_path / "deep.html", 16 * MiB)

    code, reason, growth = parse_measured(tmp_path / "deep.html")

    assert code == FailureCode.DOCUMENT_TOO_DEEP, reason
    assert growth < PARSE_GROWTH_BOUND, growth


def test_fifty_megabytes_of_nested_tags_with_the_file_limit_raised(tmp_path: Path) -> None:
    deep_html(tmp_path / "deep.html")
    assert (tmp_path / "deep.html").stat().st_size >= 50 * MiB

    code, reason, growth = parse_measured(tmp_path / "deep.html", options=ParseOptions(max_file_bytes=64 * MiB))

    assert code == FailureCode.DOCUMENT_TOO_DEEP, reason
    # The page is read once into memory (as every HTML page is); the nesting adds nothing on top.
    assert growth < PARSE_GROWTH_BOUND + 2 * 50 * MiB, growth


def test_fifty_megabytes_of_html_are_too_large_at_the_default_limit(tmp_path: Path) -> None:
    deep_html(tmp_path / "deep.html")
    with pytest.raises(FileFailure) as caught:
        parse_file(tmp_path / "deep.html", "deep.html")
    assert caught.value.code is FailureCode.FILE_TOO_LARGE


def test_html_with_too_many_elements(tmp_path: Path) -> None:
    wide_html(tmp_path / "wide.html", 5000)
    limits = ExpansionLimits(max_html_elements=1000)

    code, reason, _ = parse_measured(tmp_path / "wide.html", options=ParseOptions(limits=limits))

    assert code == FailureCode.TOO_MANY_ELEMENTS, reason


def test_html_within_the_limits_still_parses(tmp_path: Path) -> None:
    page = tmp_path / "nested.html"
    page.write_text(
        "<html><body>" + "<div>" * 60 + "<p>Sixty levels down, the text is still read.</p>" + "</body></html>"
    )
    doc = parse_file(page, "nested.html")
    assert "Sixty levels down" in " ".join(e.text for e in doc.elements)


def test_inflated_size_counts_nested_layers_and_stops_at_the_limit() -> None:
    payload = bytes(10 * MiB)
    twice = zlib.compress(zlib.compress(payload))
    assert inflated_size(twice, 2, 20 * MiB) == 10 * MiB
    assert inflated_size(twice, 2, 4 * MiB) == 4 * MiB + 1
    assert inflated_size(zlib.compress(payload)[:1000], 1, 20 * MiB) < 10 * MiB  # damaged: what came out


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("../escape.md", "path separator"),
        ("..\\escape.md", "path separator"),
        ("..", "not a file name"),
        ("bell\x07.txt", "U+0007"),
        ("new\nline.md", "U+000A"),
        ("esc\x1b[31mred.md", "U+001B"),
        ("c1\x85.md", "U+0085"),
        ("bad\udcff.md", "not valid UTF-8"),
    ],
)
def test_unsafe_file_names(name: str, problem: str) -> None:
    assert problem in unsafe_name_problem(name)
    with pytest.raises(FileFailure) as caught:
        check_file_name(name)
    assert caught.value.code is FailureCode.UNSAFE_FILENAME
    assert all(ch.isprintable() for ch in caught.value.reason)


def test_safe_file_names_pass() -> None:
    for name in ("report.pdf", "Crème brûlée.md", "..hidden-dots.txt", "日本語.html", "a b (1).docx"):
        assert unsafe_name_problem(name) == ""
    assert shown_name("report.pdf") == "'report.pdf'"


def test_unsafe_file_name_is_refused_by_the_parser(tmp_path: Path) -> None:
    path = tmp_path / "esc\x1b.md"
    path.write_text("# Title\n\nA perfectly good markdown body that must not be read.\n")
    with pytest.raises(FileFailure) as caught:
        parse_file(path, path.name)
    assert caught.value.code is FailureCode.UNSAFE_FILENAME


def test_shown_uri_escapes_control_characters_and_raw_bytes() -> None:
    assert shown_uri("upload://new\nline\x1b.md") == "upload://new%0Aline%1B.md"
    assert shown_uri("s3://b/bad\udcff.md") == "s3://b/bad%FF.md"
    assert shown_uri("file:///docs/ok.md") == "file:///docs/ok.md"


def test_folder_with_a_name_that_is_not_utf8_is_listed(tmp_path: Path) -> None:
    raw = os.fsencode(tmp_path) + b"/bad\xff\x01.md"
    with open(raw, "wb") as out:
        out.write(b"# Bad name\n")
    (tmp_path / "good.md").write_text("# Good\n")
    source = Source(raw=str(tmp_path), kind="file", path=tmp_path)

    files = {f.name: f for f in walk_local(source)}

    assert set(files) == {"bad\udcff\x01.md", "good.md"}
    assert files["bad\udcff\x01.md"].uri.endswith("/bad%FF%01.md")
    assert files["good.md"].uri == file_uri(tmp_path / "good.md") == "file://" + str(tmp_path) + "/good.md"
