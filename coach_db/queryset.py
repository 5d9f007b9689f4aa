"""The models' manager: Tortoise's QuerySet, with the rows of a plain list query turned into
model instances at 2-3x the speed of Model._init_from_db.

Tortoise builds each instance by calling `Model._init_from_db(**row)`: a keyword dict per
row, four attribute sets through `Model.__setattr__` and a call per converted value. That is
~5 µs a message on top of asyncpg's ~1.5 µs, 70% of `await Message.filter(...)` at 2,000 rows
(bench/package.py). `FastQuerySet` fills each instance's `__dict__` with the same entries
`_init_from_db` sets, built once per query shape from the model's own field lists
(`_meta.db_native_fields`, `db_default_fields`, `db_complex_fields`, the ones
`_init_from_db` reads) and converted by each field's own `to_python_value`.

Only plain queries take that path: a query that is awaited for a list of whole instances
(not `.get()`/`.first()`), with no `select_related`, `prefetch_related` or `annotate`, whose
rows hold exactly the model's columns. Everything else is Tortoise's own code, unchanged.
tests/test_fast_queryset.py checks the instances are equal, entry for entry, to
`_init_from_db`'s for every model and for NULLs, and that each other kind of query falls back.
It is a QuerySet subclass returned by a `Meta.manager`, Tortoise's documented way for a model
to choose its queries; nothing in Tortoise is patched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any

from pydantic import BaseModel
from tortoise.fields.data import CharEnumFieldInstance, JSONField
from tortoise.manager import Manager
from tortoise.models import Model
from tortoise.queryset import QuerySet

# Rows converted between two yields to the event loop, as Tortoise's executor does (CHUNK_SIZE):
# a large result never holds up other requests for long.
CHUNK = 2000

Converter = Callable[[Any], Any]
Builder = Callable[[Sequence[Any]], dict[str, Any]]


def _enum_converter(field: CharEnumFieldInstance) -> Converter:
    """`field.to_python_value` by dictionary lookup: the same member for every stored value.

    A value the enum does not have (the database's CHECK constraints refuse them) still goes
    through to_python_value, so it raises the error Tortoise raises.
    """
    enum_type: type[Enum] = field.enum_type
    members = {member.value: member for member in enum_type}
    slow = field.to_python_value

    def convert(value: Any) -> Any:
        member = members.get(value)
        return member if member is not None else slow(value)

    return convert


def _json_converter(field: JSONField[Any]) -> Converter:
    """`field.to_python_value` for a JSONField of plain JSON: its decoder, called directly.

    Text that does not decode (jsonb never holds any) goes through to_python_value, so it
    raises the FieldError Tortoise raises.
    """
    decode = field.decoder
    slow = field.to_python_value

    def convert(value: Any) -> Any:
        if isinstance(value, str):
            try:
                return decode(value)
            except ValueError:
                pass
        return slow(value)

    return convert


def _pydantic(field_type: Any) -> bool:
    """Whether a JSONField's type is a pydantic model, which to_python_value builds."""
    return isinstance(field_type, type) and issubclass(field_type, BaseModel)


def _converters(model: type[Model]) -> dict[str, tuple[str, Converter | None, bool]]:
    """column -> (attribute, converter, convert NULL too), as Model._init_from_db converts."""
    meta = model._meta
    out: dict[str, tuple[str, Converter | None, bool]] = {}
    for column, attribute, _ in meta.db_native_fields:
        out[column] = (attribute, None, False)
    for column, attribute, field in meta.db_default_fields:
        out[column] = (attribute, field.field_type, False)  # NULL stays None
    for column, attribute, field in meta.db_complex_fields:
        if type(field) is CharEnumFieldInstance:
            out[column] = (attribute, _enum_converter(field), False)  # NULL stays None too
        elif type(field) is JSONField and not _pydantic(field.field_type):
            out[column] = (attribute, _json_converter(field), True)
        else:
            out[column] = (attribute, field.to_python_value, True)
    return out


def _builder(model: type[Model], columns: tuple[str, ...]) -> Builder | None:
    """A function from a row with these columns to an instance's __dict__, or None when the
    columns are not exactly the model's (a partial .only() query, annotations: Tortoise's)."""
    converters = _converters(model)
    if sorted(columns) != sorted(converters):
        return None
    meta = model._meta
    # What _init_from_db sets on every instance it builds from a whole row.
    bookkeeping = {
        "_partial": False,
        "_saved_in_db": True,
        "_custom_generated_pk": meta.db_pk_column not in meta.generated_db_fields,
    }
    attributes = tuple(converters[column][0] for column in columns)
    converted: list[tuple[int, str, Converter, bool]] = []
    for position, column in enumerate(columns):
        attribute, converter, with_null = converters[column]
        if converter is not None:
            converted.append((position, attribute, converter, with_null))

    def build(row: Sequence[Any]) -> dict[str, Any]:
        entries = dict(zip(attributes, row, strict=False))  # as long: the same columns
        for position, attribute, convert, with_null in converted:
            value = row[position]
            if value is not None or with_null:
                entries[attribute] = convert(value)
        entries.update(bookkeeping)
        entries["_await_when_save"] = {}  # one dict per instance
        return entries

    return build


_BUILDERS: dict[tuple[type[Model], tuple[str, ...]], Builder | None] = {}


def _builder_for(model: type[Model], columns: tuple[str, ...]) -> Builder | None:
    key = (model, columns)
    if key not in _BUILDERS:
        _BUILDERS[key] = _builder(model, columns)
    return _BUILDERS[key]


async def instances(model: type[Model], rows: Sequence[Any]) -> list[Any]:
    """Model instances equal to `[model._init_from_db(**row) for row in rows]`."""
    if not rows:
        return []
    build = _builder_for(model, tuple(rows[0].keys()))
    if build is None:
        return [model._init_from_db(**row) for row in rows]
    new = object.__new__
    set_dict = object.__setattr__  # not Model.__setattr__, as _init_from_db avoids it too
    out = []
    for start in range(0, len(rows), CHUNK):
        if start:
            await asyncio.sleep(0)
        for row in rows[start : start + CHUNK]:
            instance = new(model)
            set_dict(instance, "__dict__", build(row))
            out.append(instance)
    return out


class FastQuerySet(QuerySet[Any]):
    """QuerySet whose plain list queries build their instances with `instances()`."""

    async def _execute(self) -> list[Any]:
        # _make_query() always lists the model itself in _select_related_idx: more is a join.
        if (
            self._single
            or self._select_related
            or len(self._select_related_idx) > 1
            or self._fields_for_select
            or self._prefetch_map
            or self._prefetch_queries
            or self._annotations
        ):
            return await super()._execute()
        _, rows = await self._db.execute_query(*self.query.get_parameterized_sql())
        return await instances(self.model, rows)


class FastManager(Manager):
    """The manager of coach_db's models: their queries are FastQuerySets."""

    def get_queryset(self) -> QuerySet[Any]:
        return FastQuerySet(self._model)
