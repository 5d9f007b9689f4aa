"""Parsing of what a browser sends the studio: row ids, page numbers, filter and form values.

One function per kind of value, used by every route, so that no raw string reaches the
database: PostgreSQL refuses NUL in text, asyncpg refuses ints beyond the column's type and
Python's datetime overflows near year 1 and 9999, and each of those was a 500.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from typing import Any

from tortoise import fields
from tortoise.models import Model

from coach_db.limits import MAX_METADATA_BYTES, MAX_METADATA_DEPTH

INT4_MAX = 2**31 - 1
INT8_MAX = 2**63 - 1
# The highest page number: its OFFSET (times the largest page size) stays far inside int8.
MAX_PAGE_NUM = 1_000_000
# JSON text longer than this is refused before it is parsed (the editor indents what it sends).
MAX_JSON_TEXT = 4 * MAX_METADATA_BYTES


class BadValue(ValueError):
    """A value the studio cannot use; the message says why, without repeating the value."""


def id_range(model: type[Model]) -> int:
    """The largest id of `model`: its primary key column is int4 or int8."""
    pk = model._meta.fields_map[model._meta.pk_attr]
    return INT8_MAX if isinstance(pk, fields.BigIntField) else INT4_MAX


def parse_id(value: Any, model: type[Model]) -> int:
    """A row id of `model`: ASCII digits only (not a full-width 1, `1e3`, ` 1` or `-1`),
    within the range of its column."""
    text = value if isinstance(value, str) else ""
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        raise BadValue("not a row number (digits 0-9 only)")
    number = int(text)
    if not 1 <= number <= id_range(model):
        raise BadValue("no row can have this number")
    return number


def parse_page(value: str | None, default: int, upper: int) -> int:
    """A page number or size from the query string: anything unusable is the default, and
    the result is clamped to 1..upper (a list page never fails on its pager)."""
    if value and value.isascii() and value.isdigit() and len(value) <= 12:
        return min(max(int(value), 1), upper)
    return default


def check_text(value: str) -> str:
    """Text PostgreSQL can store: no NUL and no lone surrogate (which UTF-8 cannot encode)."""
    if "\x00" in value:
        raise BadValue("may not contain a NUL character (\\x00)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadValue("contains an invalid character (a lone surrogate)") from None
    return value


def parse_filter_text(value: Any) -> str:
    """A search or filter value typed in a list's filter bar."""
    if not isinstance(value, str):
        raise BadValue("not text")
    return check_text(value)


def parse_filter_date(value: Any) -> date:
    """A day (YYYY-MM-DD) of a date filter."""
    if isinstance(value, date):
        return value
    text = parse_filter_text(value)
    if not text.isascii():
        raise BadValue("not a date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadValue("not a date (YYYY-MM-DD)") from None


def parse_datetime(value: str) -> datetime:
    """A date-time typed in a form, in UTC (naive values are UTC); years 1 to 9999 in UTC."""
    text = check_text(value)
    try:
        parsed = datetime.fromisoformat(text) if text.isascii() else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise BadValue("not a date and time (YYYY-MM-DDTHH:MM)")
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise BadValue("out of range (years 1 to 9999, UTC)") from None


def parse_metadata(text: str) -> dict[str, Any]:
    """A JSON object for message metadata, within the limits of coach_db.limits.

    Depth and size are checked on the text before it is parsed, so that no input can exhaust
    the parser's recursion or memory; NaN, Infinity, 1e999, NUL and lone surrogates are refused
    (PostgreSQL's jsonb cannot store them).
    """
    text = check_text(text).strip() or "{}"
    if len(text) > MAX_JSON_TEXT:
        raise BadValue(f"too large (at most {MAX_METADATA_BYTES} bytes of JSON)")
    if _depth(text) > MAX_METADATA_DEPTH:
        raise BadValue(f"nested too deeply (at most {MAX_METADATA_DEPTH} levels)")
    try:
        parsed = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise BadValue(f"invalid JSON ({exc.msg} at line {exc.lineno})") from None
    except ValueError as exc:  # a constant, an infinite float, an int of 4,300+ digits
        raise BadValue(f"invalid JSON ({exc})") from None
    if not isinstance(parsed, dict):
        raise BadValue("must be a JSON object, like {}")
    _check_strings(parsed)
    compact = json.dumps(parsed, separators=(",", ":"), ensure_ascii=False)
    if len(compact.encode("utf-8")) > MAX_METADATA_BYTES:
        raise BadValue(f"too large (at most {MAX_METADATA_BYTES} bytes of compact JSON)")
    return parsed


def _depth(text: str) -> int:
    """The deepest nesting of `[`/`{` in JSON text, ignoring brackets inside strings."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text[:20]} is out of range")
    return number


def _check_strings(value: Any) -> None:
    """NUL or a lone surrogate in any key or string of parsed JSON (depth already bounded)."""
    if isinstance(value, str):
        check_text(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key)
            _check_strings(item)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item)


def parse_cursor_datetime(value: str) -> datetime:
    """The date-time of a list cursor: ISO 8601 with its offset, as the studio writes it."""
    text = check_text(value)
    try:
        parsed = datetime.fromisoformat(text) if text.isascii() and len(text) <= 40 else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise BadValue("not a date and time with its UTC offset")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise BadValue("out of range (years 1 to 9999, UTC)") from None
