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
