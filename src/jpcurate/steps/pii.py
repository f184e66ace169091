"""PII masking: e-mail addresses, Japanese phone numbers, IP addresses, Luhn-checked card numbers.

`mask_pii(text) -> (masked, counts)` replaces each kind with a placeholder (`[EMAIL]`, `[PHONE]`, `[IP]`,
`[CARD]`; square brackets survive re-normalisation, angle brackets would be taken for HTML tags). `MaskPII` is the
pipeline step; it stores `n_pii_<kind>` on the document, which the statistics sum over the run. Every pattern
is bounded (fixed repetition limits, no nested quantifiers) and anchored by digit/letter look-arounds so that
parts of longer numbers are not masked.
"""

from __future__ import annotations

import regex

from jpcurate.pipeline import Step, Verdict

EMAIL = regex.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.){1,8}"
                      r"[A-Za-z]{2,24}(?![A-Za-z0-9])")
CARD = regex.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
PHONE = regex.compile(
    r"(?<![\d+-])(?:"
    r"\+81[- ]?\(?\d{1,4}\)?[- ]?\d{1,4}[- ]?\d{3,4}"      # +81 international form
    r"|0\d{1,4}-\d{1,4}-\d{3,4}"                            # 03-1234-5678, 0120-123-456
    r"|0\d{1,4}\(\d{1,4}\)\d{3,4}"                          # 03(1234)5678
    r"|\(0\d{1,4}\)\s?\d{1,4}-\d{3,4}"                      # (03) 1234-5678
    r"|0[5789]0\d{8}"                                       # 09012345678 (mobile, IP phone)
    r"|0\d{9}"                                              # 0312345678
    r")(?![\d-])"
)
OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
IPV4 = regex.compile(rf"(?<![\d.]){OCTET}(?:\.{OCTET}){{3}}(?![\d.]*\d)")
IPV6 = regex.compile(r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}(?![0-9A-Fa-f:])")
_DIGIT = regex.compile(r"\d")
PLACEHOLDERS = {"email": "[EMAIL]", "card": "[CARD]", "phone": "[PHONE]", "ip": "[IP]"}


def luhn_ok(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = ord(ch) - 48
        if i % 2 == parity:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def mask_pii(text: str) -> tuple[str, dict[str, int]]:
    counts = dict.fromkeys(PLACEHOLDERS, 0)
    if "@" in text:
        text, counts["email"] = EMAIL.subn(PLACEHOLDERS["email"], text)
    if _DIGIT.search(text) is None:
        return text, counts

    def card(m: regex.Match) -> str:
        digits = m.group().replace(" ", "").replace("-", "")
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            counts["card"] += 1
            return PLACEHOLDERS["card"]
        return m.group()

    text = CARD.sub(card, text)
    text, counts["phone"] = PHONE.subn(PLACEHOLDERS["phone"], text)
    text, n4 = IPV4.subn(PLACEHOLDERS["ip"], text)
    n6 = 0
    if ":" in text:
        text, n6 = IPV6.subn(PLACEHOLDERS["ip"], text)
    counts["ip"] = n4 + n6
    return text, counts


class MaskPII(Step):
    """Cleaner: masks PII in kept text; never rejects."""

    modifies_text = True

    def __init__(self, *, name: str = "pii") -> None:
        self.name = name

    def reasons(self) -> tuple[str, ...]:
        return ()

    def apply(self, doc) -> Verdict | None:
        text, counts = mask_pii(doc.text)
        if text != doc.text:
            doc.set_text(text)
        for kind, n in counts.items():
            doc.values[f"n_pii_{kind}"] = n
        return None
