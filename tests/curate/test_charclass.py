import sys

import pytest

from jpcurate import script_ratios


def test_script_ratios_known_values():
    r = script_ratios("日本語のテキスト abc")
    # 日本語 (3 kanji), の (1 hiragana), テキスト (4 katakana), abc (3 latin): 11 non-space characters
    assert r["kanji"] == pytest.approx(3 / 11)
    assert r["hiragana"] == pytest.approx(1 / 11)
    assert r["katakana"] == pytest.approx(4 / 11)
    assert r["latin"] == pytest.approx(3 / 11)


def test_script_ratios_blank_text_is_all_zero():
    assert set(script_ratios("  \n\t").values()) == {0.0}


def test_hangul_is_not_japanese():
    assert script_ratios("안녕하세요")["hangul"] == 1.0


def test_import_jpcurate_leaves_torch_out():
    import subprocess

    code = "import sys, jpcurate, jpcurate.cli; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def _reference_script(ch: str) -> str:
    """The original per-character classifier (kept here as the oracle for the vectorised table)."""
    cp = ord(ch)
    if 0x3041 <= cp <= 0x309F:
        return "hiragana"
    if 0x30A0 <= cp <= 0x30FF and ch not in "・゠ヶ" or 0x31F0 <= cp <= 0x31FF or 0xFF66 <= cp <= 0xFF9F:
        return "katakana"
    if (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0xF900 <= cp <= 0xFAFF or 0x20000 <= cp <= 0x3134F
            or ch in "々〆〇ヶ"):
        return "kanji"
    if (0x41 <= cp <= 0x5A) or (0x61 <= cp <= 0x7A) or (0xFF21 <= cp <= 0xFF3A) or (0xFF41 <= cp <= 0xFF5A) or (
            0xC0 <= cp <= 0x24F and cp not in (0xD7, 0xF7)):
        return "latin"
    if 0xAC00 <= cp <= 0xD7AF or 0x1100 <= cp <= 0x11FF or 0x3130 <= cp <= 0x318F:
        return "hangul"
    if 0x30 <= cp <= 0x39 or 0xFF10 <= cp <= 0xFF19:
        return "digit"
    return "other"


def test_vectorised_ratios_match_a_per_character_reference():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from jpcurate.text.charclass import C, class_counts

    alphabet = st.characters(codec="utf-8") | st.sampled_from(list("あアｱ漢々〆ヶ・ー가A１ＡéЖ😀\u3000 \n"))

    @settings(max_examples=300, deadline=None)
    @given(st.text(alphabet=alphabet, max_size=50))
    def check(text):
        counts = class_counts(text)
        nonspace = [ch for ch in text if not _is_space(ch)]
        want = {s: 0 for s in ("hiragana", "katakana", "kanji", "latin", "hangul", "digit")}
        for ch in nonspace:
            s = _reference_script(ch)
            if s in want:
                want[s] += 1
        got = {s: int(counts[C[s]]) for s in want}
        assert got == want, text

    check()


def _is_space(ch: str) -> bool:
    return ch in " \t\n\r\x0b\x0c\u3000\u00a0\u2028\u2029\u200b\ufeff" or 0x2000 <= ord(ch) <= 0x200A
