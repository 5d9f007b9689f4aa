"""The SQL of each query shape, built by Tortoise once and reused with each query's own values.

Tortoise builds a query's SQL anew at every await: pypika copies the query object at each
step, then renders it. For a query of a few rows that is most of the package's time over raw
asyncpg (~70 µs for `Scenario.filter(is_active=True)`, ~150 µs with `.values()`, ~270 µs with
`select_related`; bench/shapes.py). SQLAlchemy caches compiled statements by the shape of the
statement for the same reason; this module does that for FastQuerySet's list queries and
their `.values()` / `.values_list()`.

A query's *shape* is everything in it that Tortoise reads to build SQL (the model, the
filters' names, Q nesting and negation, ordering, select_related, annotations, ...), with each
filter value, limit and offset replaced by a marker of what its rendering can depend on:
its type, whether it is None, empty or true, a list's length. The *values* are what Tortoise
sends as parameters: each filter value encoded exactly as Tortoise encodes it (the field's
to_db_value or the filter's value encoder, called here too, so e-mails are lower-cased and
bad values raise the same errors), then limit and offset.

Only what can be proven safe is cached; everything else is built by Tortoise as before:
- filters on the model's own fields with =, !=, <, <=, >, >=, in, not in, range and isnull
  (LIKE-style operators transform their value: never cached), values of plain types;
- annotations that are aggregates of a field (Count("messages")), on model queries only;
- anything else in the query (F expressions, subqueries, Q objects of related models, custom
  filters, Function arguments) makes the query uncached, by raising Uncacheable while the
  shape is read.

A shape is learned from Tortoise's own output: the first time, each parameter Tortoise sent
must be one of the encoded values (same type, equal), as many parameters as values and each
value one of them, so nothing in the SQL text can depend on a value. Values that were equal
(user 1 with limit(1)) leave which is which open: such a shape is served only to queries whose
values there are equal too, and another build tells them apart. The second time the shape is
seen, Tortoise builds it again and the SQL must come out the same, each parameter still one of
the values; only then is it served from the cache. A shape that fails is never cached.
`VERIFY` (set by the test suite) builds every query with Tortoise as well and fails loudly on
any difference.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from tortoise import filters as tortoise_filters
from tortoise.expressions import Aggregate, Q
from tortoise.models import Model

# False: every query is built by Tortoise (the seam tests use to compare).
ENABLED = True
# True: every cached query is built by Tortoise too, and a difference raises AssertionError.
VERIFY = False
# Shapes kept; the oldest learned is dropped first (a service has a few hundred at most).
MAX_SHAPES = 2048
# Builds that may fail to prove a shape before it is given up on.
MAX_FAILURES = 3


class Uncacheable(Exception):
    """The query holds something this module does not read: Tortoise builds it."""


# Operators whose SQL holds the value as it is, one parameter per value (a list: one each).
_PLAIN_OPERATORS = {
    operator.eq,
    operator.ge,
    operator.le,
    operator.gt,
    operator.lt,
    tortoise_filters.not_equal,
    tortoise_filters.is_in,
    tortoise_filters.not_in,
    tortoise_filters.between_and,
}
# Operators whose value chooses the SQL (IS NULL / IS NOT NULL): part of the shape.
_FLAG_OPERATORS = {tortoise_filters.is_null, tortoise_filters.not_null}

_SCALARS = (
    type(None),
    bool,
    int,
    float,
    str,
    Decimal,
    UUID,
    datetime,
    date,
    time,
    timedelta,
    bytes,
)

# What a filter's value may be for its query to be cached (Enum: a member, encoded as its value).
_PLAIN = (*_SCALARS, Enum, list, tuple, set, frozenset)

Encode = Callable[[Any], Any]
_FLAG: Encode = bool  # marks a filter whose value is part of the shape


def _make_encoder(model: type[Model], key: str) -> Encode | None:
    """How Tortoise's Q._process_filter_kwarg turns this filter's value into the value it
    renders, or None when this module does not know the filter."""
    meta = model._meta
    if key in meta.fetch_fields or key in meta.fk_fields or key in meta.o2o_fields:
        return None  # a relation: Tortoise reads a model instance's key first
    info: Any = meta.filters.get(key)
    if info is None or "table" in info:
        return None
    field = meta.fields_map.get(info["field"])
    if field is None:
        return None
    op = info["operator"]
    encoder = info.get("value_encoder")
    if op in _FLAG_OPERATORS:
        return _FLAG if encoder is tortoise_filters.bool_encoder else None
    if op not in _PLAIN_OPERATORS:
        return None
    if encoder is None:
        to_db = field.to_db_value
        return lambda value: to_db(value, model)
    if encoder is tortoise_filters.list_encoder:
        return lambda value: tortoise_filters.list_encoder(value, model, field)  # type: ignore[arg-type]
    return None


_ENCODERS: dict[tuple[type[Model], str], Encode | None] = {}


def _encoder(model: type[Model], key: str) -> Encode:
    found_key = (model, key)
    if found_key not in _ENCODERS:
        if key not in model._meta.filters:  # not kept: a service may pass any name
            raise Uncacheable(key)
        _ENCODERS[found_key] = _make_encoder(model, key)
    found = _ENCODERS[found_key]
    if found is None:
        raise Uncacheable(key)
    return found


def _mark(value: Any, values: list[Any]) -> Any:
    """The shape of an encoded value, its scalars appended to `values`."""
    kind = type(value)
    if kind is list or kind is tuple:
        return (kind, tuple([_mark(item, values) for item in value]))
    if kind not in _SCALARS:
        raise Uncacheable(kind.__name__)
    values.append(value)
    if kind is str:  # pypika writes "*" itself instead of sending it
        return (kind, value == "", value == "*")
    return (kind, value is None or bool(value))


def _q(node: Any, query: Any, values: list[Any]) -> Any:
    """The shape of a Q of the model's own filters, its values appended to `values`."""
    if type(node) is not Q:
        raise Uncacheable(type(node).__name__)
    model = query.model
    filters: list[Any] = []
    for key, value in node.filters.items():
        if key in query._custom_filters:
            raise Uncacheable(key)  # a filter on an annotation
        if value is None and f"{key}__isnull" in model._meta.filters:
            filters.append((key, None))  # Tortoise writes IS NULL
            continue
        if not isinstance(value, _PLAIN):  # a Subquery, an F expression, a model instance
            raise Uncacheable(type(value).__name__)
        encode = _encoder(model, key)
        if encode is _FLAG:
            filters.append((key, _FLAG, bool(value)))
        else:
            filters.append((key, _mark(encode(value), values)))
    children = tuple([_q(child, query, values) for child in node.children])
    return (node.join_type, node._is_negated, tuple(filters), children)


def _annotation(value: Any, model_rows: bool) -> Any:
    """An aggregate of a field, as `annotate(n=Count("messages"))` makes."""
    kind = type(value)
    if (
        not isinstance(value, Aggregate)
        # Tortoise gives Max("timestamp") its field while building, which values() reads
        or (kind.populate_field_object and not model_rows)
        or type(value.field) is not str
        or value.default_values
        or value.filter is not None
    ):
        raise Uncacheable(kind.__name__)
    return (kind, value.field, bool(value.distinct))


def _structure(value: Any) -> Any:
    """A hashable copy of a query attribute made of names, flags and containers."""
    kind = type(value)
    if kind is str or value is None:
        return value
    if kind is bool or kind is int:
        return (kind, value)  # True and 1 are equal keys: the type tells them apart
    if kind is tuple or kind is list:
        if all(type(item) is str for item in value):  # field names: the common case
            return (kind, tuple(value))
        return (kind, tuple([_structure(item) for item in value]))
    if kind is dict:
        items = tuple(value.items())
        if all(type(k) is str and type(v) is str for k, v in items):
            return (kind, items)
        return (kind, tuple([(_structure(k), _structure(v)) for k, v in items]))
    if kind is set or kind is frozenset:
        return (frozenset, frozenset([_structure(item) for item in value]))
    if isinstance(value, Enum):
        return (kind, value.value)
    if isinstance(value, type):
        return value
    raise Uncacheable(kind.__name__)


# Attributes read separately, or not read to build the SQL (the prefetching, the connection;
# _custom_filters, which annotate() fills from the annotations' names).
_SPECIAL = {
    "_q_objects",
    "_annotations",
    "_custom_filters",
    "_limit",
    "_offset",
    "model",
    "fields",
}
_UNREAD = {
    "query",
    "_db",
    "_capabilities",
    "capabilities",
    "_joined_tables",
    "_select_related_idx",
    "_prefetch_map",
    "_prefetch_queries",
}
_SLOTS: dict[type, tuple[str, ...]] = {}


def _slots(kind: type) -> tuple[str, ...]:
    """The attributes of a query class that shape its SQL, read once per class."""
    found = _SLOTS.get(kind)
    if found is None:
        names: list[str] = []
        for cls in reversed(kind.__mro__):
            slots = cls.__dict__.get("__slots__", ())
            names += [slots] if isinstance(slots, str) else list(slots)
        found = _SLOTS[kind] = tuple(
            dict.fromkeys(n for n in names if n not in _SPECIAL and n not in _UNREAD)
        )
    return found


def shape(query: Any, *, model_rows: bool) -> tuple[Any, list[Any]]:
    """(the query's shape, the values Tortoise would send as parameters, in shape order).

    Raises Uncacheable when the query holds anything not read here.
    """
    model = query.model
    meta = model._meta
    annotations = query._annotations
    values: list[Any] = []
    parts: list[Any] = [type(query), model, type(query._db)]
    parts.append(tuple([_q(node, query, values) for node in query._q_objects]))
    parts.append(tuple([(name, _annotation(a, model_rows)) for name, a in annotations.items()]))
    fields = getattr(query, "fields", None)
    parts.append("all fields" if fields is meta.db_fields else _structure(fields))
    if getattr(query, "compiled_limits", True):  # COUNT(*) applies them in Python instead
        for name in ("_limit", "_offset"):
            value = getattr(query, name, None)
            parts.append(None if value is None else _mark(value, values))
    values += getattr(query, "compiled_constants", ())  # what its SQL always sends
    for name in _slots(type(query)):
        parts.append(_structure(getattr(query, name, None)))
    return tuple(parts), values


@dataclass(slots=True)
class Entry:
    sql: str
    # Per parameter, the positions among the values it has been equal to in every build seen:
    # one position once known; several while those values have always been equal (user 1
    # with limit(1)), and then any of them gives the same parameter.
    candidates: tuple[tuple[int, ...], ...]
    related: Any  # the QuerySet's _select_related_idx, which its rows are read by
    confirmed: bool = False


_SHAPES: dict[Any, Entry | None] = {}
_FAILURES: dict[Any, int] = {}


def clear() -> None:
    """Forget every shape (at connect, as Tortoise builds the models' metadata again)."""
    _SHAPES.clear()
    _FAILURES.clear()


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and (a is b or a == b)


def _candidates(values: list[Any], params: list[Any]) -> tuple[tuple[int, ...], ...] | None:
    """For each parameter, the positions of the values equal to it (same type): None unless
    each parameter is one of the values and each value can be one of the parameters, as many
    parameters as values, so that no value can have chosen the SQL text instead."""
    if len(params) != len(values):
        return None
    out = []
    for param in params:
        found = tuple(index for index, value in enumerate(values) if _same(value, param))
        if not found:
            return None
        out.append(found)
    if len({index for found in out for index in found}) != len(values):
        return None
    return tuple(out)


def _narrowed(
    known: tuple[tuple[int, ...], ...], seen: tuple[tuple[int, ...], ...]
) -> tuple[tuple[int, ...], ...] | None:
    """The positions consistent with both builds, or None if a parameter has none left."""
    out = tuple(tuple(i for i in old if i in new) for old, new in zip(known, seen, strict=True))
    return out if all(out) else None


def _params(entry: Entry, values: list[Any]) -> list[Any] | None:
    """The parameters of a known shape for these values, or None when values it has only seen
    equal differ here (then Tortoise builds it, which tells them apart)."""
    params = []
    for found in entry.candidates:
        value = values[found[0]]
        for index in found[1:]:
            if not _same(values[index], value):
                return None
        params.append(value)
    return params


def _failed(key: Any) -> None:
    if key not in _FAILURES and len(_FAILURES) >= MAX_SHAPES:
        del _FAILURES[next(iter(_FAILURES))]
    failures = _FAILURES.get(key, 0) + 1
    _FAILURES[key] = failures
    if failures >= MAX_FAILURES:
        _remember(key, None)


def _remember(key: Any, entry: Entry | None) -> None:
    if key not in _SHAPES and len(_SHAPES) >= MAX_SHAPES:
        del _SHAPES[next(iter(_SHAPES))]
    _SHAPES[key] = entry


def _built(query: Any) -> tuple[str, list[Any]]:
    query._make_query()
    sql, params = query.query.get_parameterized_sql()
    return sql, params


def sql(query: Any, *, model_rows: bool) -> tuple[str, list[Any]]:
    """The SQL and parameters Tortoise would send for `query`, from the cache when its shape
    is known. With model_rows the query's _select_related_idx is set, as _make_query sets it."""
    if not ENABLED:
        return _built(query)
    try:
        key, values = shape(query, model_rows=model_rows)
    except Exception:  # Uncacheable, or a value its field refuses: Tortoise's build raises it
        return _built(query)
    seen = key in _SHAPES
    entry = _SHAPES.get(key)
    if seen and entry is None:  # a shape that could not be proven
        return _built(query)
    if entry is not None and entry.confirmed:
        params = _params(entry, values)
        if params is not None:
            if VERIFY:
                built = _built(query)
                assert built == (entry.sql, params), f"compiled SQL differs: {built} {entry}"
            elif model_rows:
                query._select_related_idx = entry.related
            return entry.sql, params
    built_sql, built_params = _built(query)
    candidates = _candidates(values, built_params)
    related = query._select_related_idx if model_rows else None
    if candidates is None:
        _failed(key)
    elif entry is None:
        _remember(key, Entry(built_sql, candidates, related))
    elif entry.sql == built_sql and (narrowed := _narrowed(entry.candidates, candidates)):
        entry.candidates = narrowed
        entry.confirmed = True
        entry.related = related
    else:  # the same shape built two ways: never cached
        _remember(key, None)
    return built_sql, built_params
