"""Stop sequences over a stream of text pieces.

Text that might be the start of a stop sequence is held back until the next
piece shows whether it is, so a streamed answer never shows part of a stop
sequence and never loses text that only looked like one. The answer ends at the
earliest place any stop sequence starts: a short stop that completes while a
longer one that starts before it may still complete waits for the text that
decides between them (stops ">" and "\n>a" over "\n", ">", "a" end the
answer before the newline, not after it).
"""

from __future__ import annotations

from collections.abc import Sequence


class StopMatcher:
    """Feeds text pieces through; reports what may be emitted and whether a stop sequence was hit."""

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = tuple(s for s in dict.fromkeys(stops) if s)
        self._pending = ""
        self.stopped = False

    def push(self, piece: str) -> str:
        """Adds ``piece``; returns the text that is now safe to emit (everything before a stop, once hit)."""
        if self.stopped:
            return ""
        text = self._pending + piece
        first = self._first_stop(text)
        # Where the earliest stop that has begun but not yet completed starts (the end of the text if none has).
        unsettled = len(text) - self._held_suffix(text)
        if first != -1 and first <= unsettled:
            self.stopped = True
            self._pending = ""
            return text[:first]
        self._pending = text[unsettled:]
        return text[:unsettled]

    def flush(self) -> str:
        """The held-back text when the stream ends, cut at a stop sequence it holds (then ``stopped``)."""
        out, self._pending = self._pending, ""
        if self.stopped:
            return ""
        first = self._first_stop(out)
        if first != -1:
            self.stopped = True
            return out[:first]
        return out

    def _first_stop(self, text: str) -> int:
        # Where the earliest complete stop sequence in text starts; -1 when none is there.
        first = -1
        for stop in self._stops:
            at = text.find(stop)
            if at != -1 and (first == -1 or at < first):
                first = at
        return first

    def _held_suffix(self, text: str) -> int:
        # Longest suffix of text that is a proper prefix of some stop sequence.
        best = 0
        for stop in self._stops:
            for n in range(min(len(stop) - 1, len(text)), best, -1):
                if text.endswith(stop[:n]):
                    best = n
                    break
        return best
