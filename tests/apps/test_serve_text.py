"""jpmoe.serve.textstream: streamed deltas add up to the full decode (multi-byte characters split over byte
tokens are held back, never sent as U+FFFD), and OpenAI stop strings cut the text before them, across tokens."""

from jpmoe.serve.textstream import TextStream


class ByteTokenizer:
    """One token per UTF-8 byte: a character of three bytes spans three tokens, as with SentencePiece's byte
    fallback."""

    def decode(self, ids, skip_special_tokens=True):
        return bytes(ids).decode("utf-8", errors="replace")


def push_all(stream: TextStream, text: str) -> list[str]:
    out = []
    for b in text.encode():
        out.append(stream.push(b))
        if stream.stopped:
            break
    out.append(stream.flush())
    return out


def test_deltas_add_up_and_never_split_a_character():
    text = "梅雨は、6月から7月𠮷"
    deltas = push_all(TextStream(ByteTokenizer()), text)
    assert "".join(deltas) == text and not any("\ufffd" in d for d in deltas)
    assert "梅" in deltas  # sent as soon as its last byte arrived, not at the end


def test_stop_string_across_tokens_is_cut_and_held_back():
    s = TextStream(ByteTokenizer(), stops=("北海道", "@@"))
    deltas = push_all(s, "梅雨は北海道にない")
    assert "".join(deltas) == "梅雨は" and s.stopped
    assert not any("北" in d for d in deltas)  # the start of a possible stop string was never sent
    s = TextStream(ByteTokenizer(), stops=("北海X",))
    assert "".join(push_all(s, "梅雨は北海道")) == "梅雨は北海道" and not s.stopped  # a near miss is plain text


def test_the_stop_string_completed_first_wins():
    s = TextStream(ByteTokenizer(), stops=("cd", "bcde"))
    assert "".join(push_all(s, "abcdef")) == "ab"
