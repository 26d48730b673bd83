"""Stop sequences over a stream of text pieces.

Text that might be the start of a stop sequence is held back until the next
piece shows whether it is, so a streamed answer never shows part of a stop
sequence and never loses text that only looked like one.
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
        first = -1
        for stop in self._stops:
            at = text.find(stop)
            if at != -1 and (first == -1 or at < first):
                first = at
        if first != -1:
            self.stopped = True
            self._pending = ""
            return text[:first]
        hold = self._held_suffix(text)
        self._pending = text[len(text) - hold :] if hold else ""
        return text[: len(text) - hold]

    def flush(self) -> str:
        """The held-back text, when the stream ends without a stop sequence."""
        out, self._pending = self._pending, ""
        return "" if self.stopped else out

    def _held_suffix(self, text: str) -> int:
        # Longest suffix of text that is a proper prefix of some stop sequence.
        best = 0
        for stop in self._stops:
            for n in range(min(len(stop) - 1, len(text)), best, -1):
                if text.endswith(stop[:n]):
                    best = n
                    break
        return best
