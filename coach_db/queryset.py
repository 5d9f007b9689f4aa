"""The models' manager: Tortoise's QuerySet, with the rows of list queries turned into model
instances (and values() dicts, values_list() tuples) several times faster than Tortoise does.

For each row Tortoise's executor copies the record twice (`dict(row).items()`, then a slice)
and calls `Model._init_from_db(**kwargs)`: a keyword dict, four attribute sets through
`Model.__setattr__`, a call per converted value. That is ~7 µs a message over asyncpg's
~1.5 µs: 80% of `await Message.filter(...)` at 2,000 rows (bench/package.py). `FastQuerySet`
gives each instance the `__dict__` `_init_from_db` would give it, built by one generated
function per query shape (~1.7 µs a message in all) from the field lists `_init_from_db`
reads (`_meta.db_native_fields`, `db_default_fields`, `db_complex_fields`) and each field's
`to_python_value`; an enum member is looked up in a dict and JSON goes straight to the field's
decoder, with the same results and the same errors.

Queries awaited for a list over asyncpg take that path, plain or with `select_related` (each
related model's columns built by its own generated function, from the slices Tortoise's
executor would cut), `annotate` (the extra columns set as Tortoise sets them) and
`prefetch_related` (the prefetch queries are Tortoise's, on these fast QuerySets; a plain
foreign key is attached without Model.__setattr__). `.values()` and `.values_list()` return
Tortoise's query objects with a generated row function. `.get()`, `.get_or_none()` and
`.first()` take the same path and then do what Tortoise does with their rows (one instance,
None, DoesNotExist or MultipleObjectsReturned). `.only()`, a single row of `.values()` and
other drivers run Tortoise's own code. It is a QuerySet subclass returned by `Meta.manager`,
Tortoise's documented way for a model to choose its queries; nothing in Tortoise is patched,
but `_execute` and the attributes it reads are Tortoise's private ones (tortoise-orm is
pinned): tests/test_fast_queryset*.py compare every model's results with Tortoise's, entry by
entry with types, and fail if the fast path is no longer taken.

Their SQL comes from coach_db.compiled, which keeps the SQL Tortoise built for each query shape
and reuses it with each query's own values (FastQuerySet and _FromCompiledSQL, the base of the
.values(), .values_list(), .count() and .exists() queries, override `__await__` for that);
what it does not know, Tortoise builds.

It was written for one Tortoise version, `WRITTEN_FOR`: under any other, every query runs
Tortoise's own code (a warning says so once, when the first query would have taken the fast
path). `ENABLED` is that decision, the seam a test sets to see the fallback without installing
another Tortoise. docs/fast-queryset.md describes the upstream change that would let this module
be deleted.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from enum import Enum
from types import FunctionType
from typing import Any

import asyncpg
import tortoise
from pydantic import BaseModel
from tortoise.exceptions import DoesNotExist, MultipleObjectsReturned
from tortoise.fields.data import CharEnumFieldInstance, JSONField
from tortoise.manager import Manager
from tortoise.models import Model
from tortoise.queryset import (
    CountQuery,
    ExistsQuery,
    QuerySet,
    ValuesListQuery,
    ValuesQuery,
)

from coach_db import compiled

log = logging.getLogger(__name__)

# The Tortoise release whose private QuerySet attributes and _init_from_db this module mirrors.
WRITTEN_FOR = "1.1.9"


def supported(version: str) -> bool:
    """Whether the fast path may run under this tortoise-orm version: only the one it was
    written for, as its private attributes may change in any release, even a patch."""
    return version == WRITTEN_FOR


# Read at each query: False runs every query through Tortoise's own QuerySet.
ENABLED = supported(tortoise.__version__)
_warned = False


def _fallback_warning() -> None:
    global _warned
    if not _warned:
        _warned = True
        log.warning(
            "coach_db's FastQuerySet was written for tortoise-orm %s, and %s is installed:"
            " queries run Tortoise's own code (correct, slower to build instances)",
            WRITTEN_FOR,
            tortoise.__version__,
        )


# Rows converted between two yields to the event loop, as Tortoise's executor does (CHUNK_SIZE):
# a large result never holds up other requests for long.
CHUNK = 2000

Converter = Callable[[Any], Any]


def _members(field: CharEnumFieldInstance) -> dict[Any, Enum]:
    """Stored value -> enum member, for a CharEnumField."""
    enum_type: type[Enum] = field.enum_type
    return {member.value: member for member in enum_type}


def _enum_converter(field: CharEnumFieldInstance) -> Converter:
    """`field.to_python_value` by dictionary lookup: the same member for every stored value.

    A value the enum does not have (the database's CHECK constraints refuse them) still goes
    through to_python_value, so it raises the error Tortoise raises.
    """
    members = _members(field)
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


# How a column's value becomes the attribute's: as it is, the field type's constructor with
# NULL left None, an enum member, decoded JSON, or the field's to_python_value.
NATIVE, TYPED, ENUM, JSON, OTHER = range(5)


def _converters(model: type[Model]) -> dict[str, tuple[str, int, Any]]:
    """column -> (attribute, kind, field), as Model._init_from_db converts."""
    meta = model._meta
    out: dict[str, tuple[str, int, Any]] = {}
    for column, attribute, field in meta.db_native_fields:
        out[column] = (attribute, NATIVE, field)
    for column, attribute, field in meta.db_default_fields:
        out[column] = (attribute, TYPED, field)  # NULL stays None
    for column, attribute, field in meta.db_complex_fields:
        if type(field) is CharEnumFieldInstance:
            out[column] = (attribute, ENUM, field)  # NULL stays None too
        elif type(field) is JSONField and not _pydantic(field.field_type):
            out[column] = (attribute, JSON, field)
        else:
            out[column] = (attribute, OTHER, field)
    return out


Make = Callable[[Any], Any]  # row -> instance


def _builder(model: type[Model], columns: tuple[str, ...], offset: int = 0) -> Make | None:
    """A function from a row to the instance `model._init_from_db(**row)` gives, reading the
    model's columns from `columns` (the names of the row's values from position `offset` on),
    or None when one is missing or a name repeats (then Tortoise's _init_from_db builds them).
    Other columns (annotations) are ignored, as _init_from_db ignores keyword arguments it does
    not read.

    The function is generated, as dataclasses generates __init__: one dict display reading
    each column by position, set as the instance's __dict__ (~1.5 µs a message, where
    _init_from_db takes ~7). Enum members are looked up and JSON decoded inline; a value that
    fails there (an enum value the CHECK constraint should have refused, JSON the decoder
    refuses) builds the row again through the careful `build`, whose per-field converters
    raise Tortoise's own errors. Its source holds only the model's attribute names (Python
    identifiers, written with repr) and column positions; values reach it only as `row`.
    """
    converters = _converters(model)
    positions = {column: offset + position for position, column in enumerate(columns)}
    if len(positions) != len(columns) or not positions.keys() >= converters.keys():
        return None
    meta = model._meta
    # What _init_from_db sets first on every instance it builds from a whole row, then the
    # fields in its order (native, default, complex): vars() lists them as Tortoise's do.
    custom_generated_pk = meta.db_pk_column not in meta.generated_db_fields
    first = [
        "'_partial': False",
        "'_saved_in_db': True",
        f"'_custom_generated_pk': {custom_generated_pk!r}",
        "'_await_when_save': {}",
    ]
    careful, fast = list(first), list(first)
    namespace: dict[str, Any] = {
        "model": model,
        "new": object.__new__,
        "set_dict": object.__setattr__,  # not Model.__setattr__, as _init_from_db avoids it too
    }
    for column, (attribute, kind, field) in converters.items():
        p = positions[column]
        value = f"row[{p}]"
        if kind == NATIVE:
            careful.append(f"{attribute!r}: {value}")
            fast.append(f"{attribute!r}: {value}")
        elif kind == TYPED:  # NULL stays None, as _init_from_db leaves it
            namespace[f"convert_{p}"] = field.field_type
            item = f"{attribute!r}: (None if (v := {value}) is None else convert_{p}(v))"
            careful.append(item)
            fast.append(item)
        elif kind == ENUM:
            namespace[f"convert_{p}"] = _enum_converter(field)
            namespace[f"members_{p}"] = _members(field)
            careful.append(f"{attribute!r}: (None if (v := {value}) is None else convert_{p}(v))")
            fast.append(f"{attribute!r}: (None if (v := {value}) is None else members_{p}[v])")
        elif kind == JSON:
            namespace[f"convert_{p}"] = _json_converter(field)
            namespace[f"decode_{p}"] = field.decoder
            namespace[f"slow_{p}"] = field.to_python_value
            careful.append(f"{attribute!r}: convert_{p}({value})")
            fast.append(
                f"{attribute!r}: (decode_{p}(v) if type(v := {value}) is str else slow_{p}(v))"
            )
        else:
            namespace[f"convert_{p}"] = field.to_python_value
            careful.append(f"{attribute!r}: convert_{p}({value})")
            fast.append(f"{attribute!r}: convert_{p}({value})")
    source = (
        "def build(row):\n"
        f"    return {{{', '.join(careful)}}}\n"
        "def make(row):\n"
        "    instance = new(model)\n"
        "    try:\n"
        f"        attributes = {{{', '.join(fast)}}}\n"
        "    except Exception:\n"
        "        attributes = build(row)\n"
        "    set_dict(instance, '__dict__', attributes)\n"
        "    return instance\n"
    )
    exec(compile(source, f"<coach_db row builder of {model.__name__}>", "exec"), namespace)
    make: Make = namespace["make"]
    return make


_BUILDERS: dict[tuple[type[Model], tuple[str, ...], int], Make | None] = {}


def _builder_for(model: type[Model], columns: tuple[str, ...], offset: int = 0) -> Make | None:
    key = (model, columns, offset)
    if key not in _BUILDERS:
        _BUILDERS[key] = _builder(model, columns, offset)
    return _BUILDERS[key]


def _maker(model: type[Model], columns: tuple[str, ...], offset: int) -> Make:
    """row -> the instance `model._init_from_db(**those columns)` gives, built fast when the
    columns allow it."""
    make = _builder_for(model, columns, offset)
    if make is None:
        end = offset + len(columns)

        def slow(row: Any) -> Any:
            return model._init_from_db(**dict(zip(columns, row[offset:end], strict=True)))

        return slow
    return make


async def instances(model: type[Model], rows: Sequence[Any]) -> list[Any]:
    """Model instances equal to `[model._init_from_db(**row) for row in rows]`."""
    if not rows:
        return []
    if not isinstance(rows[0], asyncpg.Record):  # rows read by position: asyncpg's only
        return [model._init_from_db(**row) for row in rows]
    make = _maker(model, tuple(rows[0].keys()), 0)
    out: list[Any] = []
    for start in range(0, len(rows), CHUNK):
        if start:
            await asyncio.sleep(0)
        with collection_paused():
            out += map(make, rows[start : start + CHUNK])
    return out


@contextmanager
def collection_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a chunk of rows becomes instances.

    Each instance is a tracked object that survives (it is in the result), so every 700 of
    them the collector ran, found nothing to free, and moved them to an older generation,
    whose collections then walked them again: at 2,000 messages a query, 11 collections a
    query and a median 60-85% above the fastest run (bench/shapes.py's Message rows). The
    instances make no reference cycles, so there is nothing to collect while they are built.
    At most CHUNK rows pass without collection, and it is back on before the event loop runs
    anything else; if the application turned the collector off, it stays off.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# One related model of a select_related row: where its values are, how to build it, and where
# to put it (the path of the instance it belongs to, its attribute).
_Related = tuple[int, int, Make, tuple[Any, ...], str]


def _related_plan(select_related_idx: Sequence[Any], keys: tuple[str, ...]) -> list[_Related]:
    """What Tortoise's executor does per select_related row, decided once per query.

    execute_select slices `dict(row).items()` by the counts in _select_related_idx, names
    each related value by its column after the first dot, and builds the related instance
    only if one of its values is truthy (else None, or an empty partial instance for a
    related model none of whose fields were selected).
    """
    _, start, *_ = select_related_idx[0]
    plan = []  # paths start as the model's own, (None,)
    for model, count, *_, full_path in select_related_idx[1:]:
        (*path, attribute) = full_path
        names = tuple(key.split(".", 1)[1] for key in keys[start : start + count])
        plan.append((start, start + count, _maker(model, names, start), tuple(path), attribute))
        start += count
    return plan


class FastQuerySet(QuerySet[Any]):
    """QuerySet whose list queries (and get/first) build their instances with generated
    builders: plain, select_related, prefetch_related and annotate alike; .values() and
    .values_list() too."""

    def __await__(self) -> Generator[Any, None, list[Any]]:
        """Tortoise's QuerySet.__await__, with the SQL of a known shape from coach_db.compiled
        instead of built again."""
        if not ENABLED or self._fields_for_select:
            return super().__await__()
        if self._db is None:
            self._db = self._choose_db(self._select_for_update)
        return self._list(*compiled.sql(self, model_rows=True)).__await__()

    async def _execute(self) -> list[Any]:
        """Reached only through Tortoise's own __await__: `.only()`, or another Tortoise."""
        if not ENABLED:
            _fallback_warning()
        return await super()._execute()

    async def _tortoise(self) -> list[Any]:
        """Tortoise's own reading of the rows, on the query it builds."""
        self._make_query()
        return await super()._execute()

    async def _list(self, sql: str, params: list[Any]) -> list[Any]:
        _, rows = await self._db.execute_query(sql, params)
        if rows and not isinstance(rows[0], asyncpg.Record):
            return await self._tortoise()  # another driver: Tortoise reads it again
        related = self._select_related_idx[1:]
        if rows and related:
            keys = tuple(rows[0].keys())
            if len(set(keys)) != len(keys):  # dict(row) would drop one: Tortoise's own way
                return await self._tortoise()
            out = await self._joined(rows, keys)
        else:
            out = await instances(self.model, rows)
        for name in self._annotations:
            for instance, row in zip(out, rows, strict=True):
                object.__setattr__(instance, name, row[name])
        if out and (self._prefetch_map or self._prefetch_queries):
            await self._prefetch(out)
        return self._one(out) if self._single else out

    def _one(self, out: list[Any]) -> Any:
        """get(), get_or_none() and first(): what Tortoise's _execute returns of their rows."""
        if len(out) == 1:
            return out[0]
        if not out:
            if self._raise_does_not_exist:
                raise DoesNotExist(self.model)
            return None
        raise MultipleObjectsReturned(self.model)

    async def _prefetch(self, out: list[Any]) -> None:
        """Tortoise's prefetching, but a plain foreign key's (`prefetch_related("scenario")`)
        is attached here without three Model.__setattr__ calls per instance."""
        fk_fields = self.model._meta.fk_fields
        direct = [
            name
            for name, forwarded in self._prefetch_map.items()
            if name in fk_fields and not forwarded and name not in self._prefetch_queries
        ]
        rest = {name: f for name, f in self._prefetch_map.items() if name not in direct}
        tasks: list[Awaitable[Any]] = [self._prefetch_foreign_key(out, name) for name in direct]
        if rest or self._prefetch_queries:
            executor = self._db.executor_class(
                model=self.model,
                db=self._db,
                prefetch_map=rest,
                prefetch_queries=self._prefetch_queries,
                select_related_idx=self._select_related_idx,  # type: ignore[arg-type]
            )
            tasks.append(executor._execute_prefetch_queries(out))
        await asyncio.gather(*tasks)  # concurrently, as Tortoise runs its prefetch queries

    async def _prefetch_foreign_key(self, out: list[Any], name: str) -> None:
        """What the executor's _prefetch_direct_relation does for one foreign key: one query
        for the related rows, then on each instance what `setattr(instance, name, obj)` sets
        through the relation's property (the key column, then `_<name>`) and what
        Model.__setattr__ clears (pending defaults of those names); the related model's type
        is right by construction, which is all _validate_relation_type checks."""
        field: Any = self.model._meta.fields_map[name]
        key, cached, to_field = field.source_field, f"_{name}", field.to_field
        related = field.related_model
        wanted = list(dict.fromkeys(v for o in out if (v := o.__dict__[key]) is not None))
        found: dict[Any, Any] = {}
        if wanted:
            condition = {to_field: wanted[0]} if len(wanted) == 1 else {f"{to_field}__in": wanted}
            objects = await related.all().using_db(self._db).filter(**condition)
            found = {getattr(obj, to_field): obj for obj in objects}
        for instance in out:
            attributes = instance.__dict__
            obj = found.get(attributes[key])
            if pending := attributes["_await_when_save"]:
                for attribute in (name, key, cached):
                    pending.pop(attribute, None)
            attributes[key] = getattr(obj, to_field) if obj else None
            attributes[cached] = obj

    def values(self, *args: str, **kwargs: str) -> Any:
        query = super().values(*args, **kwargs)
        query.__class__ = FastValuesQuery  # the same slots: only _execute differs
        return query

    def values_list(self, *fields_: str, flat: bool = False) -> Any:
        query = super().values_list(*fields_, flat=flat)
        query.__class__ = FastValuesListQuery
        return query

    def count(self) -> Any:
        query = super().count()
        query.__class__ = FastCountQuery
        return query

    def exists(self) -> Any:
        query = super().exists()
        query.__class__ = FastExistsQuery
        return query

    async def _joined(self, rows: Sequence[Any], keys: tuple[str, ...]) -> list[Any]:
        """The instances of select_related rows, with their related instances attached."""
        _, main_end, *_, own_path = self._select_related_idx[0]
        make = _maker(self.model, keys[:main_end], 0)
        plan = _related_plan(self._select_related_idx, keys)
        set_attribute = object.__setattr__

        def join(chunk: Sequence[Any]) -> Iterator[Any]:
            for row in chunk:
                instance = make(row)
                built: dict[Any, Any] = {own_path: instance}
                for start, end, make_related, path, attribute in plan:
                    if any(row[start:end]):
                        obj = make_related(row)
                    elif start == end:
                        obj = make_related(row)  # an empty partial instance, as Tortoise makes
                    else:
                        obj = None
                    target = built.get(path)
                    if target is not None:
                        set_attribute(target, f"_{attribute}", obj)
                    if obj is not None:
                        built[(*path, attribute)] = obj
                yield instance

        out: list[Any] = []
        for first in range(0, len(rows), CHUNK):
            if first:
                await asyncio.sleep(0)
            with collection_paused():
                out += join(rows[first : first + CHUNK])
        return out


# --- .values() and .values_list(): their converters ---------------------------------------


_FIELD_CONVERTERS: dict[int, tuple[Any, Converter]] = {}


def _value_converter(func: Callable[[Any], Any]) -> Converter | None:
    """What to call on a value where Tortoise's values()/values_list() call `func`: None for
    the `lambda x: x` that resolve_to_python_value returns for values needing no conversion
    (its only plain functions; the others are fields' bound to_python_value methods), the
    dictionary lookup or direct decoder of an enum or JSON field, else `func` itself."""
    if isinstance(func, FunctionType):
        return None
    field = getattr(func, "__self__", None)
    method = getattr(func, "__func__", None)
    if type(field) is CharEnumFieldInstance and method is CharEnumFieldInstance.to_python_value:
        make: Callable[[Any], Converter] = _enum_converter
    elif (
        type(field) is JSONField
        and method is JSONField.to_python_value
        and not _pydantic(field.field_type)
    ):
        make = _json_converter
    else:
        return func
    cached = _FIELD_CONVERTERS.get(id(field))
    if cached is None or cached[0] is not field:
        cached = _FIELD_CONVERTERS[id(field)] = (field, make(field))
    return cached[1]


_ROW_FUNCTIONS: dict[Any, Callable[[Any], Any]] = {}


def _row_function(dicts: bool, reads: tuple[tuple[str, int, Converter | None], ...]) -> Any:
    """row -> a dict {name: value} (dicts) or a tuple of values, reading each `(name,
    position, converter)` by position: generated once per shape, as the builders are."""
    key = (dicts, reads)
    found = _ROW_FUNCTIONS.get(key)
    if found is not None:
        return found
    namespace: dict[str, Any] = {}
    items = []
    for index, (name, position, converter) in enumerate(reads):
        value = f"row[{position}]"
        if converter is not None:
            namespace[f"convert_{index}"] = converter
            value = f"convert_{index}({value})"
        items.append(f"{name!r}: {value}" if dicts else f"{value},")
    body = "{" + ", ".join(items) + "}" if dicts else "(" + " ".join(items) + ")"
    source = f"def build(row):\n    return {body}\n"
    exec(compile(source, "<coach_db values builder>", "exec"), namespace)
    function: Callable[[Any], Any] = namespace["build"]
    _ROW_FUNCTIONS[key] = function
    return function


# --- .values(), .values_list(), .count() and .exists() --------------------------------------


class _FromCompiledSQL:
    """What a FastQuerySet's .values(), .values_list(), .count() and .exists() share: Tortoise's
    __await__ with the SQL of a known shape from coach_db.compiled, then `_rows` reads what it
    returns as that Tortoise class's _execute would. A single row (`.values().first()`) and
    another Tortoise version run Tortoise's own code. Empty slots: the query's class is
    switched to a subclass of its Tortoise class, which needs the same layout."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, Any]:
        query: Any = self
        if not ENABLED or getattr(query, "_single", False):
            return super().__await__()  # type: ignore[misc, no-any-return]
        query._choose_db_if_not_chosen()
        return query._rows(*compiled.sql(query, model_rows=False)).__await__()  # type: ignore[no-any-return]


class FastValuesQuery(_FromCompiledSQL, ValuesQuery[Any]):
    """`.values()` of a FastQuerySet: Tortoise's dicts, built by a generated function."""

    __slots__ = ()

    async def _rows(self, sql: str, params: list[Any]) -> Any:
        _, rows = await self._db.execute_query(sql, params)
        if not rows:
            return []
        build = None
        if isinstance(rows[0], asyncpg.Record):
            build = _reader(self, tuple(rows[0].keys()), self._fields_for_select)
        if build is None:
            self._make_query()
            return await super()._execute()  # Tortoise's own way, and its errors
        return [build(row) for row in rows]

    def _read(self, keys: tuple[str, ...]) -> Any:
        """The function from a row to its dict, or None when Tortoise should read the rows."""
        converters = {
            alias: _value_converter(self.resolve_to_python_value(self.model, name))
            for alias, name in self._fields_for_select.items()
        }
        if len(set(keys)) != len(keys) or not converters.keys() <= set(keys):
            return None
        return _row_function(True, tuple((k, i, converters.get(k)) for i, k in enumerate(keys)))


class FastValuesListQuery(_FromCompiledSQL, ValuesListQuery[Any]):
    """`.values_list()` of a FastQuerySet: Tortoise's tuples, built by a generated function."""

    __slots__ = ()

    async def _rows(self, sql: str, params: list[Any]) -> Any:
        _, rows = await self._db.execute_query(sql, params)
        if not rows:
            return []
        read = None
        if isinstance(rows[0], asyncpg.Record):
            read = _reader(self, tuple(rows[0].keys()), self.fields, self._flat)
        if read is None:
            self._make_query()
            return await super()._execute()
        if self._flat:
            at, convert = read
            if convert is None:
                return [row[at] for row in rows]
            return [convert(row[at]) for row in rows]
        return [read(row) for row in rows]

    def _read(self, keys: tuple[str, ...]) -> Any:
        """The function from a row to its tuple ((position, converter) for a flat list), or
        None when Tortoise should read the rows."""
        columns = [
            (key, _value_converter(self.resolve_to_python_value(self.model, name)))
            for key, name in self.fields.items()
        ]
        if len(set(keys)) != len(keys) or not {key for key, _ in columns} <= set(keys):
            return None
        position = {key: index for index, key in enumerate(keys)}
        if self._flat:
            return position["0"], columns[0][1]
        return _row_function(False, tuple((k, position[k], c) for k, c in columns))


_READERS: dict[Any, Any] = {}


def _reader(query: Any, keys: tuple[str, ...], fields: dict[str, str], flat: bool = False) -> Any:
    """query._read(keys), kept per (query class, model, fields, columns): resolving each
    field's converter through Tortoise costs more than a small query's rows. Annotations choose
    converters too, so a query with them is resolved anew."""
    if query._annotations:
        return query._read(keys)
    key = (type(query), query.model, tuple(fields.items()), keys, flat)
    found = _READERS.get(key, _READERS)
    if found is _READERS:
        if len(_READERS) >= 4096:  # shapes come from code: this bounds a service that builds them
            _READERS.clear()
        found = _READERS[key] = query._read(keys)
    return found


class FastCountQuery(_FromCompiledSQL, CountQuery):
    """`.count()` of a FastQuerySet: Tortoise's CountQuery, its SQL from coach_db.compiled."""

    __slots__ = ()
    # COUNT(*) ignores limit and offset: Tortoise applies them to the count in Python.
    compiled_limits = False

    async def _rows(self, sql: str, params: list[Any]) -> int:
        """What CountQuery._execute does with the rows of its SQL."""
        _, result = await self._db.execute_query(sql, params)
        if not result:
            return 0
        count: int = max(0, result[0][0] - self._offset)
        if self._limit is not None and count > self._limit:
            return self._limit
        return count


class FastExistsQuery(_FromCompiledSQL, ExistsQuery):
    """`.exists()` of a FastQuerySet: Tortoise's ExistsQuery, its SQL from coach_db.compiled."""

    __slots__ = ()
    # Its LIMIT 1, sent as a parameter whatever the query's values.
    compiled_constants = (1,)

    async def _rows(self, sql: str, params: list[Any]) -> bool:
        result, _ = await self._db.execute_query(sql, params)
        return bool(result)


class FastManager(Manager):
    """The manager of coach_db's models: their queries are FastQuerySets."""

    def get_queryset(self) -> QuerySet[Any]:
        return FastQuerySet(self._model)
