from jpcurate.document import Document
from jpcurate.steps.urlrules import UrlFilter


def test_domain_suffix_patterns_tld_and_missing_url(tmp_path):
    bl = tmp_path / "bl.txt"
    bl.write_text("bad.example\nre:/ads/\n")
    f = UrlFilter(blocklist=str(bl), tld_allow=("jp", "com"))
    assert f.check("https://a.b.bad.example/x")[1] == "a.b.bad.example matches block list entry bad.example"
    assert f.check("https://notbad.example/") is not None  # .example is not allowed by the TLD list
    assert f.check("https://good.jp/ads/1")[0] == "url.pattern"
    assert f.check("https://good.ru/")[0] == "url.tld"
    assert f.check("https://good.jp/page") is None
    d = Document("x", "本文")
    assert f.apply(d) is None and d.values["url_present"] is False


def test_pickle_roundtrip_rebuilds_compiled_state():
    import pickle

    f = pickle.loads(pickle.dumps(UrlFilter(extra_domains=("wikipedia.org",))))
    assert f.check("https://ja.wikipedia.org/wiki/x")[0] == "url.blocked_domain"
