"""Token ids -> text deltas for streaming, with OpenAI `stop` strings.

Incremental decoding keeps two offsets into the tokens (as vLLM's detokenizer): the new text is
decode(tokens[prefix:]) minus decode(tokens[prefix:read]), so a tokenizer that strips a leading space or merges
bytes across tokens still yields exactly the full decode; a delta ending in U+FFFD (a multi-byte character whose
bytes are not all generated yet) is held back. Text that could be the start of a stop string is held back too,
and a stop string ends the text just before it (OpenAI: the stop sequence is not returned).
"""

from __future__ import annotations

from collections.abc import Sequence


class TextStream:
    def __init__(self, tokenizer, stops: Sequence[str] = ()):
        self.tok = tokenizer
        self.stops = tuple(stops)
        self.tokens: list[int] = []
        self.prefix = self.read = 0  # token offsets: decoded-and-emitted window start, end of decoded tokens
        self.text = ""  # decoded text so far (cut at a stop string once one is found)
        self.sent = 0  # characters of `text` handed out
        self.stopped = False

    def _decode(self, ids: list[int]) -> str:
        return self.tok.decode(ids, skip_special_tokens=True)

    def push(self, token: int) -> str:
        """Add one generated token; returns the text that is now safe to send (maybe ""). After a stop string
        `stopped` is True and further tokens are ignored."""
        if self.stopped:
            return ""
        self.tokens.append(token)
        before = self._decode(self.tokens[self.prefix : self.read])
        after = self._decode(self.tokens[self.prefix :])
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self.text += after[len(before) :]
            self.prefix, self.read = self.read, len(self.tokens)
        return self._release(final=False)

    def flush(self) -> str:
        """The generation ended (stop token, length, cancel): everything still held back goes out, bytes that never
        formed a character as U+FFFD, and the start of a stop string that never completed as the plain text it is."""
        if not self.stopped and self.read < len(self.tokens):
            before = self._decode(self.tokens[self.prefix : self.read])
            self.text += self._decode(self.tokens[self.prefix :])[len(before) :]
            self.read = len(self.tokens)
        return self._release(final=True)

    def _release(self, final: bool) -> str:
        if self.stops and not self.stopped:
            longest = max(len(s) for s in self.stops)
            start = max(0, self.sent - longest)
            hits = [i for i in (self.text.find(s, start) for s in self.stops) if i >= 0]
            if hits:
                self.text, self.stopped = self.text[: min(hits)], True
        end = len(self.text)
        if self.stops and not self.stopped and not final:
            end -= self._partial_stop()
        out = self.text[self.sent : end]
        self.sent = max(self.sent, end)
        return out

    def _partial_stop(self) -> int:
        """Length of the longest tail of `text` that is a proper prefix of a stop string."""
        best = 0
        for s in self.stops:
            for k in range(min(len(s) - 1, len(self.text)), best, -1):
                if self.text.endswith(s[:k]):
                    best = k
                    break
        return best
