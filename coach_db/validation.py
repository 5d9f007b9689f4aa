"""The checks the types and the conversation operations share: message metadata and text, e-mails.

``add_message`` and the generated ``MessageCreate`` refuse the same metadata because both call
``metadata_json``; ``coach_db/types.py`` (generated) takes its validators and ``orm_config``
from here, so the library's modules import each other without a circle.
"""

from __future__ import annotations

import json
import math
import re
from typing import TYPE_CHECKING, Any, cast

from pydantic import ConfigDict

from coach_db.errors import InvalidMessage
from coach_db.limits import MAX_METADATA_BYTES, MAX_METADATA_DEPTH

if TYPE_CHECKING:
    from tortoise.models import Model


def lowercase(value: str) -> str:
    """E-mails compare case-insensitively, so the create type stores them in lower case."""
    return value.lower()


def metadata_within_limits(value: dict[str, Any]) -> dict[str, Any]:
    """add_message's own metadata check (size, depth, cycles, NUL...): both refuse the same."""
    try:
        metadata_json(value)
    except InvalidMessage as exc:
        raise ValueError(exc.reason) from None
    return value


def orm_config(model: type[Model], title: str) -> ConfigDict:
    """The model_config pydantic_model_creator gives its classes (orig_model: the ORM model)."""
    config = {"title": title, "extra": "forbid", "from_attributes": True, "orig_model": model}
    return cast(ConfigDict, config)


def metadata_json(metadata: dict[str, Any]) -> str:
    """Message metadata as compact JSON text, or InvalidMessage if it breaks a rule or a limit.

    One iterative walk (no recursion, so no RecursionError at any depth) refuses, with the
    path of the offending value: what JSON cannot hold (cycles, non-string keys, NaN, other
    types), what PostgreSQL cannot store (NUL, lone surrogates), nesting deeper than
    MAX_METADATA_DEPTH and more than MAX_METADATA_BYTES of compact UTF-8 JSON. The size is
    counted while walking and a container is refused before its items are visited when they
    cannot fit, so the work is bounded by the limits, not by the input: a list that contains
    itself, a billion-item list or a 100 MB string is refused in microseconds.
    """
    if not isinstance(metadata, dict):
        raise InvalidMessage(
            f"metadata must be a JSON object (a dict), not {type(metadata).__name__}"
        )
    size = 0
    # Items to visit: (value, depth of the innermost container holding it, path node).
    # A path node is (parent node, key, id of the container at that step) or None for the
    # root; it is turned into text only for an error message.
    stack: list[tuple[Any, int, _Path | None]] = [(metadata, 0, None)]
    while stack:
        value, depth, path = stack.pop()
        if isinstance(value, str):
            size += _string_size(value, MAX_METADATA_BYTES - size, path)
        elif isinstance(value, (dict, list, tuple)):
            depth += 1
            _check_container(value, depth, path)
            # Brackets, separators and at least one byte per item (and "":  per key).
            n = len(value)
            size += 2 + max(n - 1, 0) + (3 * n if isinstance(value, dict) else 0)
            if size + n > MAX_METADATA_BYTES:
                raise _too_large(path)
            if isinstance(value, dict):
                for key, item in value.items():
                    if not isinstance(key, str):
                        raise InvalidMessage(
                            f"{_where(path)} has the key {excerpt(key)}, a "
                            f"{type(key).__name__}: JSON object keys are strings"
                        )
                    step = (path, key, id(value))
                    # The key's quotes and colon are already counted.
                    size += _string_size(key, MAX_METADATA_BYTES - size, step, key=True) - 2
                    stack.append((item, depth, step))
            else:
                stack.extend((item, depth, (path, i, id(value))) for i, item in enumerate(value))
        elif value is None or isinstance(value, bool):
            size += 4 if value is None or value else 5
        elif isinstance(value, int):
            try:
                size += len(int.__repr__(value))
            except ValueError:  # more digits than sys.get_int_max_str_digits() (4,300)
                raise InvalidMessage(
                    f"{_where(path)} is an integer of about {int(value.bit_length() * 0.30103):,}"
                    " digits, too large to store"
                ) from None
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise InvalidMessage(f"{_where(path)} is {value}, which JSON cannot represent")
            size += len(float.__repr__(value))
        else:
            raise InvalidMessage(
                f"{_where(path)} is a {type(value).__name__}, which is not JSON: convert it first "
                "(for example a datetime to an ISO string)"
            )
        if size > MAX_METADATA_BYTES:
            raise _too_large(path)
    # Checked above: no cycle, at most MAX_METADATA_DEPTH levels, so json cannot recurse far.
    return json.dumps(metadata, ensure_ascii=False, separators=(",", ":"))


_Path = tuple[Any, "str | int", int]


def _check_container(value: Any, depth: int, path: _Path | None) -> None:
    node = path
    while node is not None:  # at most MAX_METADATA_DEPTH steps up
        parent, _, container_id = node
        if container_id == id(value):
            raise InvalidMessage(
                f"{_where(path)} is the same object as {_where(parent)}, which contains it: "
                "JSON cannot represent a cycle"
            )
        node = parent
    if depth > MAX_METADATA_DEPTH:
        raise InvalidMessage(
            f"metadata is nested more than {MAX_METADATA_DEPTH} levels deep "
            f"(coach_db.limits.MAX_METADATA_DEPTH), at {_where(path)}"
        )


# What json.dumps(ensure_ascii=False) writes as an escape: control characters, quote, backslash.
_ESCAPED = re.compile(r'[\x00-\x1f"\\]')


def _string_size(text: str, room: int, path: _Path | None, key: bool = False) -> int:
    """Bytes of `text` as a JSON string (quotes and escapes), after the NUL/Unicode checks.

    The common string (ASCII, nothing to escape) is measured without encoding it, and where
    it is in the metadata is only described when check_text refuses it: both cost more than
    the rest of add_message's checks together when done for every string.
    """
    if len(text) + 2 > room:  # every character is at least one byte
        raise _too_large(path if not key else (path[0] if path else None))
    ascii_only = text.isascii()
    if "\x00" in text or not (ascii_only or _encodes(text)):
        where = f"the key {excerpt(text)} of {_where(path[0] if path else None)}"
        check_text(text, where if key else _where(path))  # raises
    if ascii_only and _ESCAPED.search(text) is None:
        return len(text) + 2
    return len(json.dumps(text, ensure_ascii=False).encode())


def _encodes(text: str) -> bool:
    """Whether `text` is valid Unicode (no lone surrogate), so UTF-8 can hold it."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _too_large(path: _Path | None) -> InvalidMessage:
    return InvalidMessage(
        f"metadata is larger than {MAX_METADATA_BYTES:,} bytes as compact JSON "
        f"(coach_db.limits.MAX_METADATA_BYTES), reached at {_where(path)}; store large data "
        "elsewhere and keep a reference in the metadata"
    )


def _where(path: _Path | None) -> str:
    keys: list[str | int] = []
    while path is not None:
        path, key, _ = path
        keys.append(key)
    parts = [f"[{excerpt(key)}]" for key in reversed(keys)]
    return "metadata" + "".join(parts)


def excerpt(value: Any, width: int = 40) -> str:
    """repr() of a value cut to `width` characters, whatever its size (error messages only)."""
    if isinstance(value, str):
        text = repr(value[:width])
    elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"<an integer of {value.bit_length():,} bits>"
    elif value is None or isinstance(value, (bool, int, float)):
        text = repr(value)
    else:  # any other object: its repr could be huge or fail
        return f"<a {type(value).__name__}>"
    return text if len(text) <= width + 2 else text[:width] + "…"


def check_text(text: str, where: str) -> None:
    if "\x00" in text:
        raise InvalidMessage(
            f"{where} contains a NUL character (\\x00) at index {text.index(chr(0))}, "
            "which PostgreSQL cannot store in text or JSON; remove or replace it"
        )
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError as exc:  # a lone surrogate, e.g. from a broken decode
            raise InvalidMessage(
                f"{where} is not valid Unicode ({exc.reason} at index {exc.start})"
            ) from None
