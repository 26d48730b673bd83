from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from svc_inference.domain.stop import StopMatcher


def _run(pieces: list[str], stops: list[str]) -> tuple[str, bool]:
    matcher = StopMatcher(stops)
    out = "".join(matcher.push(p) for p in pieces)
    if not matcher.stopped:
        out += matcher.flush()
    return out, matcher.stopped


def test_stop_split_across_pieces_is_not_shown() -> None:
    matcher = StopMatcher(["<end_of_turn>"])
    assert matcher.push("Paris.<end") == "Paris."
    assert matcher.push("_of_turn> more") == ""
    assert matcher.stopped


def test_text_that_only_looked_like_a_stop_is_released() -> None:
    matcher = StopMatcher(["\n\n\n"])
    assert matcher.push("a\n\n") == "a"
    assert matcher.push("b") == "\n\nb"
    assert matcher.flush() == ""


def test_flush_returns_held_text_at_the_end() -> None:
    matcher = StopMatcher(["STOP"])
    assert matcher.push("go ST") == "go "
    assert matcher.flush() == "ST"


def test_a_longer_stop_that_starts_first_wins_over_a_shorter_one_completing_inside_it() -> None:
    # Found by the property test below: ">" completes first, but "\n>a" starts earlier.
    matcher = StopMatcher([">", "\n>a"])
    assert matcher.push("\n") == ""
    assert matcher.push(">") == ""
    assert not matcher.stopped
    assert matcher.push("a") == ""
    assert matcher.stopped


def test_a_shorter_stop_ends_the_answer_once_the_longer_one_cannot_complete() -> None:
    matcher = StopMatcher([">", "\n>a"])
    assert matcher.push("x\n>") == "x"
    assert matcher.push("b") == "\n"
    assert matcher.stopped


def test_flush_cuts_held_text_at_a_stop_it_holds() -> None:
    matcher = StopMatcher([">", "\n>a"])
    assert matcher.push("x\n>") == "x"
    assert matcher.flush() == "\n"
    assert matcher.stopped


@given(
    st.lists(st.text(alphabet="ab\n<>", max_size=6), max_size=12),
    st.lists(st.text(alphabet="ab\n<>", min_size=1, max_size=4), max_size=3),
)
def test_output_is_the_text_cut_at_the_first_stop(pieces: list[str], stops: list[str]) -> None:
    full = "".join(pieces)
    cuts = [full.find(s) for s in stops if s and full.find(s) != -1]
    expected = full[: min(cuts)] if cuts else full
    out, stopped = _run(pieces, stops)
    assert out == expected
    assert stopped == bool(cuts)
