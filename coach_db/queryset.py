"""The models' manager: Tortoise's QuerySet, with the rows of a plain list query turned into
model instances 4x faster than Tortoise's executor turns them.

For each row Tortoise's executor copies the record twice (`dict(row).items()`, then a slice)
and calls `Model._init_from_db(**kwargs)`: a keyword dict, four attribute sets through
`Model.__setattr__`, a call per converted value. That is ~7 µs a message over asyncpg's
~1.5 µs: 80% of `await Message.filter(...)` at 2,000 rows (bench/package.py). `FastQuerySet`
gives each instance the `__dict__` `_init_from_db` would give it, built by one generated
function per query shape (~1.7 µs a message in all) from the field lists `_init_from_db`
reads (`_meta.db_native_fields`, `db_default_fields`, `db_complex_fields`) and each field's
`to_python_value`; an enum member is looked up in a dict and JSON goes straight to the field's
decoder, with the same results and the same errors.

Only plain queries take that path: awaited for a list of whole instances (not `.get()` or
`.first()`), with no `select_related`, `prefetch_related`, `annotate` or `only`, over
asyncpg. Everything else runs Tortoise's own code. It is a QuerySet subclass returned by
`Meta.manager`, Tortoise's documented way for a model to choose its queries; nothing in
Tortoise is patched, but `_execute` and the attributes it reads are Tortoise's private ones
(tortoise-orm is pinned): tests/test_fast_queryset.py compares every model's instances with
Tortoise's, types included, and fails if the fast path is no longer taken.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any

import asyncpg
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

    Text that does not decode goes through to_python_value, so it raises the FieldError
    Tortoise raises: whatever the decoder raises, as Tortoise catches any Exception (json.loads
    raises RecursionError, not ValueError, for jsonb nested a thousand deep).
    """
    decode = field.decoder
    slow = field.to_python_value

    def convert(value: Any) -> Any:
        if isinstance(value, str):
            try:
                return decode(value)
            except Exception:  # to_python_value turns it into Tortoise's error
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
    columns are not exactly the model's (then Tortoise's _init_from_db builds them).

    The function is generated, as dataclasses generates __init__: one dict display reading
    each column by position (0.9 µs a message, where a loop over the columns takes 1.7 µs).
    Its source holds only the model's attribute names (Python identifiers, written with
    repr) and column positions; values reach it only as `row`.
    """
    converters = _converters(model)
    if sorted(columns) != sorted(converters):
        return None
    meta = model._meta
    # What _init_from_db sets first on every instance it builds from a whole row, then the
    # fields in its order (native, default, complex): vars() lists them as Tortoise's do.
    custom_generated_pk = meta.db_pk_column not in meta.generated_db_fields
    items = [
        "'_partial': False",
        "'_saved_in_db': True",
        f"'_custom_generated_pk': {custom_generated_pk!r}",
        "'_await_when_save': {}",
    ]
    namespace: dict[str, Any] = {}
    positions = {column: position for position, column in enumerate(columns)}
    for column, (attribute, converter, with_null) in converters.items():
        position = positions[column]
        value = f"row[{position}]"
        if converter is None:
            items.append(f"{attribute!r}: {value}")
            continue
        name = f"convert_{position}"
        namespace[name] = converter
        if with_null:
            items.append(f"{attribute!r}: {name}({value})")
        else:  # NULL stays None, as _init_from_db leaves it
            items.append(f"{attribute!r}: (None if (v := {value}) is None else {name}(v))")
    source = "def build(row):\n    return {" + ", ".join(items) + "}\n"
    exec(compile(source, f"<coach_db row builder of {model.__name__}>", "exec"), namespace)
    build: Builder = namespace["build"]
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
    if not isinstance(rows[0], asyncpg.Record):  # rows read by position: asyncpg's only
        return [model._init_from_db(**row) for row in rows]
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
