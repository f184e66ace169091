# ruff: noqa: E501 - vocabulary pools and templates read better one per line than wrapped
"""Generated web junk for the quality set: `generate(seed)` -> [{"kind", "text", "source", "license"}].

Each kind imitates one thing web crawls hold (several templates per kind, random vocabulary, lengths of
150-3,000 characters, so that no single surface trait gives the kind away). Word salad shuffles real sentences from
the UD GSD *dev* split (the split the naturalness model may see); everything else is built from the pools below.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

N_PER_KIND = 40
NOUNS = ("ホテル", "旅行", "温泉", "格安", "ダイエット", "脱毛", "転職", "求人", "不動産", "賃貸", "保険", "ローン",
         "車買取", "引越し", "英会話", "プログラミング", "投資", "副業", "美容", "サプリ", "育毛", "婚活", "ウォーター"
         "サーバー", "葬儀", "結婚式", "ペット", "カード", "クレジット", "スマホ", "格安SIM", "パソコン", "カメラ",
         "東京", "大阪", "名古屋", "福岡", "札幌", "京都", "横浜", "神戸", "沖縄", "北海道")
MODS = ("おすすめ", "比較", "ランキング", "口コミ", "評判", "最安値", "安い", "人気", "2024", "最新", "無料", "即日",
        "初心者", "完全ガイド", "まとめ", "料金", "相場", "メリット", "デメリット", "選び方", "ブログ", "体験談")
ADS = ("今すぐ購入", "送料無料", "ポイント10倍", "期間限定", "残りわずか", "詳細はこちら>>", "公式サイトはこちら",
       "今なら半額", "先着100名様", "カートに入れる", "無料お試し", "初回限定980円", "定期便なら最大50%OFF",
       "★★★★★", "楽天ランキング1位獲得", "Amazonで見る", "Yahoo!ショッピングで見る", "クーポン配布中", "PR")
NAV = ("ホーム", "トップページ", "会社概要", "お問い合わせ", "プライバシーポリシー", "サイトマップ", "採用情報",
       "よくある質問", "ログイン", "新規会員登録", "カート", "マイページ", "ニュース", "ブログ", "アクセス",
       "利用規約", "特定商取引法に基づく表記", "English", "検索", "メニュー", "閉じる", "ページトップへ", "戻る")
TAGS = ("カフェ", "ランチ", "ディナー", "スイーツ", "ラーメン", "寿司", "焼肉", "居酒屋", "パン", "和食", "イタリアン",
        "子育て", "育児", "节约", "インテリア", "DIY", "ガーデニング", "釣り", "キャンプ", "登山", "ゴルフ", "野球",
        "サッカー", "アニメ", "漫画", "映画", "音楽", "ライブ", "写真", "カメラ", "旅行", "温泉", "ドライブ", "猫",
        "犬", "ハンドメイド", "ファッション", "コスメ", "ネイル", "ヘアアレンジ", "筋トレ", "ダイエット")
HOSTILE = ("死ね", "消えろ", "出ていけ", "ゴミ", "クズ", "国に帰れ", "害虫", "駆除しろ", "うざい", "キモい")
SLURS = ("土人", "チョン", "シナ人", "支那人", "池沼", "ガイジ", "キチガイ")
ADULT = ("アダルト", "無修正", "人妻", "熟女", "素人", "エロ動画", "出会い系", "セフレ", "風俗", "デリヘル", "ライブチャット",
         "巨乳", "痴漢", "av女優", "エッチ", "オナニー", "ハメ撮り")
GAMBLE = ("オンラインカジノ", "入金不要ボーナス", "スロット", "バカラ", "ブックメーカー", "パチンコ", "必勝法", "稼げる",
          "出金", "仮想通貨", "FX", "爆益", "ライブカジノ", "ルーレット", "高額配当")
EN = ("click here", "free download", "best price", "cheap", "viagra", "casino", "loan", "SEO", "buy now", "lorem",
      "ipsum", "dolor", "sit amet", "follow us", "subscribe", "terms of service", "login", "password")
ZH_KO = ("我们的产品", "质量最好", "欢迎光临", "点击这里", "免费下载", "안녕하세요", "무료", "바로가기", "회원가입", "최저가")
KANA = "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをん"
KATA = "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヲン"


def seo_spam(r: random.Random) -> str:
    kw = [r.choice(NOUNS) for _ in range(3)]
    lines = []
    for _ in range(r.randint(8, 30)):
        k = f"{r.choice(kw)} {r.choice(MODS)} {r.choice(MODS)}"
        form = r.choice(["{k}", "{k}なら当サイト！{k}の{m}を徹底{m}", "【{y}年最新】{k}｜{m}{m}", "{k} {k} {m}"])
        lines.append(form.format(k=k, m=r.choice(MODS), y=r.randint(2019, 2026)))
    return "\n".join(lines) if r.random() < 0.7 else "。".join(lines) + "。"


def ad_affiliate(r: random.Random) -> str:
    out = []
    for _ in range(r.randint(4, 12)):
        item = f"{r.choice(NOUNS)}{r.choice(['セット', 'プレミアム', 'EX', 'お徳用', '公式'])}"
        out.append(f"{item}\n{r.randint(980, 29800):,}円（税込）{r.choice(ADS)}\n{r.choice(ADS)} {r.choice(ADS)}")
        if r.random() < 0.5:
            out.append(f"▼{r.choice(ADS)}▼\nhttps://px.a8.net/svt/ejp?a8mat={r.getrandbits(40):x}")
    return "\n".join(out)


def nav_boilerplate(r: random.Random) -> str:
    sep = r.choice([" | ", "\n", " > ", "・", " / "])
    parts = [sep.join(r.sample(NAV, r.randint(5, 12))) for _ in range(r.randint(3, 8))]
    parts.append(f"Copyright © {r.randint(2005, 2025)} {r.choice(NOUNS)}株式会社 All Rights Reserved.")
    return "\n".join(parts)


def tag_cloud(r: random.Random) -> str:
    sep = r.choice([" ", "、", " #", ",", "\n"])
    head = r.choice(["タグ:", "人気のタグ", "カテゴリー", "#", "関連キーワード"])
    words = [f"{r.choice(TAGS)}{r.choice(['', '', '(' + str(r.randint(1, 300)) + ')'])}" for _ in range(r.randint(40, 200))]
    return head + sep + sep.join(words)


def link_list(r: random.Random) -> str:
    lines = []
    for _ in range(r.randint(10, 40)):
        title = f"{r.choice(NOUNS)}の{r.choice(MODS)}{r.choice(['について', 'を解説', 'まとめ', 'は？', ''])}"
        form = r.choice(["» {t}", "・{t} ({n})", "{t} - https://example{n}.jp/{p}", "[{t}](https://blog.jp/{p})",
                         "{d} {t}"])
        lines.append(form.format(t=title, n=r.randint(1, 99), p=r.getrandbits(24), d=f"2023.{r.randint(1, 12)}.{r.randint(1, 28)}"))
    return "\n".join(lines)


def word_salad(r: random.Random, sents: list[str]) -> str:
    """Real sentences cut into 1-4 character pieces and shuffled within the sentence (spun / broken MT text)."""
    out = []
    for s in r.sample(sents, r.randint(5, 25)):
        body = s.rstrip("。")
        pieces, i = [], 0
        while i < len(body):
            k = r.randint(1, 4)
            pieces.append(body[i : i + k])
            i += k
        r.shuffle(pieces)
        out.append("".join(pieces) + "。")
    return "".join(out) if r.random() < 0.5 else "\n".join(out)


def mt_salad(r: random.Random) -> str:
    """Word-by-word machine translation: content words strung with wrong particles."""
    parts = ("の", "は", "を", "に", "が", "で", "と", "そして", "それの", "ための", "である", "いる", "する")
    out = []
    for _ in range(r.randint(6, 25)):
        ws = [r.choice(NOUNS + MODS + TAGS) for _ in range(r.randint(3, 7))]
        out.append("".join(w + r.choice(parts) for w in ws) + r.choice(["。", "です。", "ます。"]))
    return "".join(out)


def templated_listing(r: random.Random) -> str:
    city = r.choice(NOUNS[-10:])
    form = r.choice(["【{c}】{w}区 {m}LDK 家賃{p}万円 駅徒歩{n}分 築{y}年",
                     "{c}市 {w}町 求人 時給{q}円 週{n}日〜 未経験OK 交通費支給",
                     "{c} {w}店 営業時間 {n}:00-2{n}:00 定休日 水曜日 TEL 0{m}-{q}-{q}",
                     "商品番号{q}{n} {w}{m}個セット 在庫あり 発送まで{n}日"])
    return "\n".join(form.format(c=city, w=r.choice(["中央", "北", "南", "東", "西", "港", "緑"]), m=r.randint(1, 4),
                                 p=round(r.uniform(4, 20), 1), n=r.randint(1, 9), y=r.randint(1, 40),
                                 q=r.randint(1000, 9999)) for _ in range(r.randint(12, 60)))


def repeated_lines(r: random.Random, sents: list[str]) -> str:
    s = r.sample(sents, r.randint(1, 3))
    return "\n".join(r.choice(s) for _ in range(r.randint(10, 40)))


def forum_noise(r: random.Random) -> str:
    out = []
    for i in range(1, r.randint(15, 50)):
        h = f"{i} 名前：名無しさん{r.choice(['@お腹いっぱい。', '＠実況', ''])} 2024/0{r.randint(1, 9)}/{r.randint(10, 28)}" \
            f"({r.choice('月火水木金土日')}) {r.randint(10, 23)}:{r.randint(10, 59)}:{r.randint(10, 59)}.{r.randint(10, 99)} " \
            f"ID:{r.getrandbits(32):08x}"
        body = r.choice(["www", "ｗｗｗｗｗ", f">>{r.randint(1, i)}", "それな", "草", "乙", "age", "sage", "ワロタ",
                         f">>{r.randint(1, i)} 何言ってんだこいつ", "kwsk", "うぽつ", "今北産業", "2ゲット"])
        out.append(f"{h}\n{body}")
    return "\n".join(out)


def hate_forum(r: random.Random) -> str:
    out = []
    for i in range(1, r.randint(8, 25)):
        out.append(f"{i} 名無しさん ID:{r.getrandbits(24):06x}\n"
                   f"{r.choice(SLURS)}は{r.choice(HOSTILE)}{r.choice(['', 'ｗ', '！', 'マジで'])} {r.choice(HOSTILE)}")
    return "\n".join(out)


def code_markup(r: random.Random) -> str:
    lines = []
    for _ in range(r.randint(10, 40)):
        lines.append(r.choice([
            '<div class="nav-item"><a href="/{p}">{t}</a></div>', "var {v} = document.getElementById('{v}');",
            "function {v}() {{ return {n}; }}", ".{v} {{ margin: 0 auto; color: #{h}; }}", "</div></div>",
            "<script src=\"/js/{v}.js\"></script>", "if ({v} > {n}) {{ {v}++; }}", "<li><span>{t}</span></li>",
            "$('.{v}').on('click', function() {{", "}});", "@media screen and (max-width: {n}px) {{",
            "<!-- {t} -->", "&nbsp;&nbsp;{t}&amp;", "{{\"id\": {n}, \"name\": \"{t}\"}},"]).format(
                p=r.getrandbits(16), t=r.choice(NAV + TAGS), v=r.choice(["menu", "btn", "x", "item", "nav", "hdr"]),
                n=r.randint(0, 999), h=f"{r.getrandbits(24):06x}"))
    return "\n".join(lines)


def mojibake(r: random.Random, sents: list[str]) -> str:
    text = "".join(r.sample(sents, r.randint(4, 15)))
    how = r.choice(["cp932", "latin-1", "replace"])
    if how == "cp932":
        return text.encode("utf-8").decode("cp932", errors="replace")
    if how == "latin-1":
        return text.encode("utf-8").decode("latin-1")
    b = bytearray(text.encode("utf-8"))
    for _ in range(len(b) // 6):
        b[r.randrange(len(b))] = r.randrange(128, 256)
    return b.decode("utf-8", errors="replace")


def product_specs(r: random.Random) -> str:
    keys = ("商品名", "型番", "サイズ", "重量", "素材", "カラー", "原産国", "電源", "消費電力", "容量", "保証期間",
            "JANコード", "付属品", "対応OS", "解像度", "メーカー", "生産国", "入数", "賞味期限")
    out = []
    for _ in range(r.randint(1, 4)):
        for k in r.sample(keys, r.randint(8, len(keys))):
            v = r.choice([f"W{r.randint(10, 200)}×D{r.randint(10, 90)}×H{r.randint(10, 200)}cm", f"{r.randint(1, 50)}kg",
                          f"{r.randint(100, 9999)}W", f"AB-{r.randint(100, 9999)}", r.choice(TAGS), "ブラック/ホワイト",
                          f"{r.randint(1, 5)}年", f"4{r.randint(10 ** 11, 10 ** 12 - 1)}", "中国", "日本", "Windows 11/10"])
            out.append(f"{k}{r.choice(['：', ':', ' ', '　'])}{v}")
    return "\n".join(out)


def adult_spam(r: random.Random) -> str:
    out = []
    for _ in range(r.randint(6, 25)):
        out.append(f"{r.choice(ADULT)}{r.choice(ADULT)}{r.choice(['の', '', '★', '♥'])}{r.choice(ADULT)} "
                   f"{r.choice(['無料で見放題', '今すぐ登録', '18歳未満禁止', '完全無料', '即会い'])}")
    return "\n".join(out) if r.random() < 0.6 else "！".join(out)


def gambling_spam(r: random.Random) -> str:
    out = []
    for _ in range(r.randint(6, 25)):
        out.append(f"{r.choice(GAMBLE)}で{r.choice(['月100万', '1日で10万', '爆益', '簡単に'])}{r.choice(GAMBLE)}"
                   f"{r.choice(['！', '♪', '→今すぐ登録', '【' + str(r.randint(1, 100)) + '万円ボーナス】'])}")
    return "\n".join(out)


def mixed_language(r: random.Random, sents: list[str]) -> str:
    out = []
    for _ in range(r.randint(8, 30)):
        out.append(r.choice([r.choice(EN) + " " + r.choice(EN), r.choice(ZH_KO), r.choice(sents)[:r.randint(5, 20)],
                             " ".join(r.choice(EN) for _ in range(4))]))
    return r.choice([" ", "\n", ""]).join(out)


def gibberish(r: random.Random) -> str:
    how = r.choice(["kana", "mash", "laugh", "kata"])
    n = r.randint(100, 400)
    if how == "kana":
        return "".join(r.choice(KANA + "、。") for _ in range(n))
    if how == "kata":
        return "".join(r.choice(KATA + "ー・") for _ in range(n))
    if how == "mash":
        return "\n".join("".join(r.choice("あああいいうえおおっっ!!！？ー〜") for _ in range(r.randint(3, 30))) for _ in range(n // 10))
    return "\n".join(r.choice(["ｗｗｗｗ", "草", "ワロタ", "ｗ", "(笑)", "笑笑", "ほんそれ", "！？"]) * r.randint(1, 8) for _ in range(n // 5))


def archive_list(r: random.Random) -> str:
    y = r.randint(2008, 2024)
    out = []
    for i in range(r.randint(15, 60)):
        m = 12 - i % 12
        out.append(r.choice(["{y}年{m}月 ({n})", "{y}/{m:02d} [{n}]", "{y}年{m}月の記事一覧 {n}件"]).format(
            y=y - i // 12, m=m, n=r.randint(1, 40)))
    return "\n".join(out)


def hashtags(r: random.Random) -> str:
    out = []
    for _ in range(r.randint(2, 6)):
        out.append(r.choice(["今日のランチ", "おはようございます", "新作", "フォロバ100"]) + "\n" +
                   " ".join("#" + r.choice(TAGS) + r.choice(["", "好きな人と繋がりたい", "部", "記録", "グラム"])
                            for _ in range(r.randint(10, 30))))
    return "\n".join(out)


def generate(*, seed: int = 0, n: int = N_PER_KIND) -> list[dict]:
    here = Path(__file__).resolve().parents[1]
    path = here / "data" / "ud_japanese_gsd" / "sentences.jsonl"  # the repository's copy of the shared file
    sents = [s["text"] for s in map(json.loads, open(path, encoding="utf-8")) if s["split"] == "dev" and len(s["text"]) > 15]
    kinds = {"seo_spam": seo_spam, "ad_affiliate": ad_affiliate, "nav_boilerplate": nav_boilerplate,
             "tag_cloud": tag_cloud, "link_list": link_list, "word_salad": lambda r: word_salad(r, sents),
             "mt_salad": mt_salad, "templated_listing": templated_listing,
             "repeated_lines": lambda r: repeated_lines(r, sents), "forum_noise": forum_noise,
             "hate_forum": hate_forum, "code_markup": code_markup, "mojibake": lambda r: mojibake(r, sents),
             "product_specs": product_specs, "adult_spam": adult_spam, "gambling_spam": gambling_spam,
             "mixed_language": lambda r: mixed_language(r, sents), "gibberish": gibberish,
             "archive_list": archive_list, "hashtags": hashtags}
    r = random.Random(seed)
    return [{"kind": k, "text": fn(r), "source": "benchmarks/quality_junk.py", "license": "CC0 (generated)"}
            for k, fn in kinds.items() for _ in range(n)]
