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
