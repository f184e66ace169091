import pytest

from jpcurate.document import Document
from jpcurate.steps.pii import MaskPII, luhn_ok, mask_pii


@pytest.mark.parametrize("text, kind", [
    ("連絡は taro.yamada+news@example.co.jp まで", "email"),
    ("電話 03-1234-5678 へ", "phone"),
    ("フリーダイヤル 0120-123-456", "phone"),
    ("携帯 090-1234-5678", "phone"),
    ("携帯09012345678です", "phone"),
    ("Tel: +81-3-1234-5678", "phone"),
    ("03(1234)5678", "phone"),
    ("サーバー 192.168.10.255 に接続", "ip"),
    ("IPv6 2001:0db8:85a3:0000:0000:8a2e:0370:7334", "ip"),
    ("カード番号 4111 1111 1111 1111", "card"),
    ("カード番号 5500-0000-0000-0004", "card"),
])
def test_each_kind_is_masked(text, kind):
    masked, counts = mask_pii(text)
    assert counts[kind] == 1 and f"[{kind.upper()}]" in masked


@pytest.mark.parametrize("text", [
    "2024-01-15 に開催", "価格は1,234円", "〒123-4567", "バージョン 1.2.3.4.5", "4111 1111 1111 1112",
    "第12345678901234号", "ISBNなし 1234",
])
def test_non_pii_is_left_alone(text):
    assert mask_pii(text) == (text, {"email": 0, "card": 0, "phone": 0, "ip": 0})


def test_luhn():
    assert luhn_ok("4111111111111111") and luhn_ok("79927398713") and not luhn_ok("79927398710")


def test_step_counts_go_to_the_statistics():
    from jpcurate.pipeline import run_pipeline

    docs = [Document("a", "a@example.com と b@example.org"), Document("b", "03-1234-5678")]
    kept, _, stats = run_pipeline([MaskPII()], docs)
    assert kept[0].text == "[EMAIL] と [EMAIL]"
    assert stats.sums["n_pii_email"] == 2 and stats.sums["n_pii_phone"] == 1
