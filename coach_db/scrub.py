"""PII scrubbing of message text for research exports: e-mails, URLs, IPs, phone numbers,
US social security numbers, payment card numbers and IBANs.

Decisions (README, "Research export"): phone numbers are what Google's libphonenumber finds
valid (any `+country` number, and national formats of PHONE_REGIONS), plus North American
formats `(555) 123-4567` / `555.123.4567` / `555-123-4567` whatever the area code; an
obfuscated address ("john dot smith at example dot com") counts as an e-mail when it ends in
a common TLD, its whole local part included; a bare `name.tld` is a URL when the TLD is
common or a path follows; an IP address (v4 or v6) is `[ip]` even when it could be a version
number (privacy first); card numbers are 13-19 digits passing the Luhn check and IBANs pass
the ISO 13616 mod-97 check, so other digit runs stay. Dates, times and prices stay. Names,
street addresses and birth dates are not detected.
"""

from __future__ import annotations

import ipaddress
import re

from phonenumbers import Leniency, PhoneNumberMatcher

EMAIL, URL, PHONE, IP = "[email]", "[url]", "[phone]", "[ip]"
SSN, CARD, IBAN = "[ssn]", "[card]", "[iban]"
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
    rf"(?<![\w.+-])[\w+-]+(?:{_DOT}[\w+-]+)*{_AT}[\w-]+(?:{_DOT}[\w-]+)*{_DOT}(?:{_TLDS})\b",
    re.IGNORECASE,
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
# US social security numbers: 3-2-4 digits, one separator, never area 000/666/9xx, group 00 or
# serial 0000 (numbers the SSA never issues).
_SSN = re.compile(
    r"(?<![\w.-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\w-]|\.\d)"
)
# Card numbers: 13-19 digits, single spaces or dashes between them, checked by Luhn.
_CARD = re.compile(r"(?<![\w.-])\d(?:[ -]?\d){12,18}(?![\w-]|\.\d)")
# IBAN candidates: country, check digits, then 11-30 letters/digits in any grouping.
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ -]?[A-Z0-9]){11,30}\b", re.IGNORECASE)
# North American numbers in the usual written forms, any area code (libphonenumber refuses
# e.g. 555, which people still write).
_NANP = re.compile(
    r"(?<![\w.-])(?:\+1[ .-]?(?:\(\d{3}\)|\d{3})[ .-]?\d{3}[ .-]\d{4}"
    r"|(?:1[ .-]?)?(?:\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}|\d{3}([.-])\d{3}\1\d{4}))"
    r"(?![\w-]|\.\d)"
)


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


def _luhn(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        n = int(char) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return CARD if _luhn(digits) else match.group(0)


def _iban_valid(compact: str) -> bool:
    if not 15 <= len(compact) <= 34 or not compact[2:4].isdigit():
        return False
    moved = (compact[4:] + compact[:4]).upper()
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _iban(match: re.Match[str]) -> str:
    """The longest valid IBAN at the start of the candidate (a following word may have been
    taken in: "DE89 3704 0044 0532 0130 00 OK")."""
    text = match.group(0)
    for end in range(len(text), 0, -1):
        if text[end - 1] in " -" or (end < len(text) and text[end].isalnum()):
            continue  # only ends between groups or at the candidate's end
        if _iban_valid(re.sub(r"[ -]", "", text[:end])):
            return IBAN + text[end:]
    return text


def _phones(text: str, regions: tuple[str, ...]) -> str:
    for region in regions:
        found = list(PhoneNumberMatcher(text, region, leniency=Leniency.VALID))
        for match in reversed(found):  # from the end: earlier offsets stay valid
            text = text[: match.start] + PHONE + text[match.end :]
    return text


def scrub(text: str, regions: tuple[str, ...] = PHONE_REGIONS) -> str:
    """`text` with e-mail addresses, URLs, IP addresses, phone numbers, SSNs, card numbers and
    IBANs as placeholders."""
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
        text = _IBAN.sub(_iban, text)
        text = _SSN.sub(SSN, text)
        text = _CARD.sub(_card, text)
        text = _NANP.sub(PHONE, text)
        text = _phones(text, regions)
    return text
