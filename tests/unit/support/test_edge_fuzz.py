"""The fuzzer's leak check: internal names in an error are a leak, the caller's own words quoted back are not."""

from __future__ import annotations

from tests.support.edge_fuzz import Outcome


def test_an_exception_name_or_a_path_in_an_error_is_a_leak() -> None:
    assert Outcome("INVALID_ARGUMENT", "Unexpected <class 'DecodeError'>").leak == "<class '"
    assert Outcome("INVALID_ARGUMENT", "bad value: KeyError in handler").leak == "KeyError"
    assert Outcome("INTERNAL", "at /app/svc.py line 3", sent=b"x").problem is not None


def test_the_callers_own_input_quoted_back_is_not_a_leak() -> None:
    echoed = Outcome("NOT_FOUND", "session list[FileError] not found", sent=b"\n\x0flist[FileError]")
    assert echoed.leak is None and echoed.problem is None
    # Only what the caller sent is excused: another name in the same error still counts.
    mixed = Outcome("NOT_FOUND", "session list[FileError] not found (ValueError)", sent=b"list[FileError]")
    assert mixed.leak == "ValueError"
