"""URL and domain rules: a block list (domains and URL patterns), an optional TLD allow list, URL sanity.

`UrlFilter` reads the record's URL from `doc.meta[url_field]` (records without one are kept and marked
`url_present=False`). Rejection codes name the rule: `url.blocked_domain` (detail: the list entry that matched),
`url.pattern` (the pattern), `url.tld` (the TLD not in the allow list), `url.invalid` (no host). The block list
file: one domain per line (matches the host and its subdomains; `extra_domains` adds more), `re:<pattern>` lines
for URL regexes.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

import regex

from jpcurate.pipeline import RebuiltStep, Verdict

LLMJP_TLDS = ("biz", "cc", "com", "info", "jp", "me", "net", "org", "site", "tokyo", "tv", "work", "xyz")


def load_blocklist(path: str | None) -> tuple[set[str], list[str]]:
    if path is None:
        raw = resources.files("jpcurate").joinpath("data/url_blocklist.txt").read_text(encoding="utf-8")
    else:
        raw = Path(path).read_text(encoding="utf-8")
    domains, patterns = set(), []
    for line in raw.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("re:"):
            patterns.append(line[3:])
        else:
            domains.add(line.lower().lstrip("."))
    return domains, patterns


class UrlFilter(RebuiltStep):
    def __init__(self, *, blocklist: str | None = None, use_blocklist: bool = True, extra_domains: tuple = (),
                 tld_allow: tuple[str, ...] | list[str] | None = None, url_field: str = "url",
                 name: str = "url") -> None:
        self.name, self.blocklist, self.use_blocklist, self.url_field = name, blocklist, use_blocklist, url_field
        self.tld_allow = tuple(tld_allow) if tld_allow else None
        self.extra_domains = tuple(extra_domains)
        self._build()

    def _build(self) -> None:
        self._domains, pats = load_blocklist(self.blocklist) if self.use_blocklist else (set(), [])
        self._domains |= {d.lower().lstrip(".") for d in self.extra_domains}
        self._patterns = [(p, regex.compile(p, regex.I)) for p in pats]

    def reasons(self) -> tuple[str, ...]:
        codes = ["invalid"] + (["blocked_domain", "pattern"] if self.use_blocklist else [])
        codes += ["blocked_domain"] if self.extra_domains and not self.use_blocklist else []
        codes += ["tld"] if self.tld_allow else []
        return tuple(f"{self.name}.{c}" for c in codes)

    def check(self, url: str) -> Verdict | None:
        try:
            host = (urlsplit(url).hostname or "").lower().rstrip(".")
        except ValueError:
            host = ""
        if not host:
            return (f"{self.name}.invalid", f"no host in URL {url[:100]!r}")
        parts = host.split(".")
        for i in range(len(parts)):
            suffix = ".".join(parts[i:])
            if suffix in self._domains:
                return (f"{self.name}.blocked_domain", f"{host} matches block list entry {suffix}")
        for src, pat in self._patterns:
            if pat.search(url):
                return (f"{self.name}.pattern", f"URL matches pattern {src}")
        if self.tld_allow is not None and parts[-1] not in self.tld_allow:
            return (f"{self.name}.tld", f"TLD .{parts[-1]} not in the allow list")
        return None

    def apply(self, doc) -> Verdict | None:
        url = doc.meta.get(self.url_field)
        doc.values["url_present"] = isinstance(url, str) and bool(url)
        if not isinstance(url, str) or not url:
            return None
        return self.check(url)

    def __repr__(self) -> str:
        return (f"UrlFilter(blocklist={self.blocklist!r}, use_blocklist={self.use_blocklist}, "
                f"extra_domains={self.extra_domains!r}, "
                f"tld_allow={self.tld_allow!r}, url_field={self.url_field!r})")
