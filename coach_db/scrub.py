"""PII scrubbing of message text for research exports: e-mails, URLs, IPs, phone numbers.

Decisions (README, "Research export"): phone numbers are what Google's libphonenumber finds
valid (any `+country` number, and national formats of PHONE_REGIONS); an obfuscated address
("john at example dot com") counts as an e-mail when it ends in a common TLD; a bare
`name.tld` is a URL when the TLD is common or a path follows; an IP address (v4 or v6) is
`[ip]` even when it could be a version number (privacy first). Dates, times and prices stay.
"""

from __future__ import annotations

import ipaddress
import re

from phonenumbers import Leniency, PhoneNumberMatcher

EMAIL, URL, PHONE, IP = "[email]", "[url]", "[phone]", "[ip]"
# National formats are read as numbers of these regions (international ones always).
PHONE_REGIONS = ("US", "GB")

_TLDS = (
    "com|org|net|edu|gov|mil|int|info|biz|io|co|ai|app|dev|me|tv|us|uk|de|fr|es|it|nl|be|ch|at"
    "|se|no|dk|fi|pl|pt|ie|ca|au|nz|jp|cn|in|br|mx|ru|za|eu|ly|gl|xyz|online|site|tech"
)
_EMAIL = re.compile(r"(?<![\w.+-])[\w.!#$%&'*+/=?^`{|}~-]+@(?:[\w-]+\.)+[\w-]{2,}")
_AT = r"(?:\s*[\[({<]\s*at\s*[\])}>]\s*|\s+at\s+)"
_DOT = r"(?:\s*[\[({<]\s*dot\s*[\])}>]\s*|\s+dot\s+|\.)"
_OBFUSCATED = re.compile(
    rf"(?<![\w.+-])[\w.+-]+{_AT}[\w-]+(?:{_DOT}[\w-]+)*{_DOT}(?:{_TLDS})\b", re.IGNORECASE
)
_URL = re.compile(
    rf"""\b(?:[a-z][a-z0-9+.-]*://|www\.)[^\s<>"']+"""
    rf"""|(?<![\w@.-])(?:[\w-]+\.)+(?:(?:{_TLDS})\b(?:/[^\s<>"']*)?|[a-z]{{2,24}}/[^\s<>"']*)""",
    re.IGNORECASE,
)
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.]*\w)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?![\w:])", re.IGNORECASE)
# Cheap tests first: most messages have no "@", no "word.word" and no " at " (the full
# patterns cost ~30 µs per 90-character message; the tests ~2 µs).
_AT_WORD = re.compile(r"[\s\[({<]at[\s\])}>]", re.IGNORECASE)
_DOTTED = re.compile(r"[\w-]\.[\w-]|://")
# At least 7 digits with separators between them: the only texts worth libphonenumber's time.
_MAYBE_PHONE = re.compile(r"\d(?:[\s().\-/]*\d){6}")
_TRAILING = ".,;:!?)]}'\""


def _url(match: re.Match[str]) -> str:
    """A URL minus the sentence's punctuation after it ("see example.com.")."""
    text = match.group(0)
    kept = text.rstrip(_TRAILING)
    return URL + text[len(kept) :]


def _ip(match: re.Match[str]) -> str:
    try:
        ipaddress.ip_address(match.group(0))
    except ValueError:
        return match.group(0)
    return IP


def _phones(text: str, regions: tuple[str, ...]) -> str:
    for region in regions:
        found = list(PhoneNumberMatcher(text, region, leniency=Leniency.VALID))
        for match in reversed(found):  # from the end: earlier offsets stay valid
            text = text[: match.start] + PHONE + text[match.end :]
    return text


def scrub(text: str, regions: tuple[str, ...] = PHONE_REGIONS) -> str:
    """`text` with e-mail addresses, URLs, IP addresses and phone numbers as placeholders."""
    if "@" in text:
        text = _EMAIL.sub(EMAIL, text)
    if _AT_WORD.search(text):
        text = _OBFUSCATED.sub(EMAIL, text)
    if _DOTTED.search(text):
        text = _URL.sub(_url, text)
        text = _IPV4.sub(_ip, text)
    if text.count(":") >= 2:
        text = _IPV6.sub(_ip, text)
    if _MAYBE_PHONE.search(text):
        text = _phones(text, regions)
    return text
