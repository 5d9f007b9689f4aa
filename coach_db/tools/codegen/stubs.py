"""coach_db/models.pyi: typed query keywords (PEP 692) for every model."""

from __future__ import annotations

import enum
import inspect
import types as pytypes
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, get_args, get_origin
from uuid import UUID

if TYPE_CHECKING:
    from tortoise.fields.base import Field
    from tortoise.models import Model


from coach_db.tools.codegen.source import HEADER, Imports, literal

# --- typed query keywords: models.pyi ---------------------------------------------------------

_EQUALITY = ("", "not", "in", "not_in", "isnull", "not_isnull")
_ORDER = ("gt", "gte", "lt", "lte", "range")
_TEXT = (
    "contains",
    "icontains",
    "startswith",
    "istartswith",
    "endswith",
    "iendswith",
    "iexact",
    "search",
    "posix_regex",
    "iposix_regex",
)
_DATE_PARTS = ("year", "quarter", "month", "week", "day")
_TIME_PARTS = ("hour", "minute", "second", "microsecond")
# How many relations a lookup key may cross (session__user__email: 2).
MAX_HOPS = 2


@dataclass(frozen=True)
class Lookup:
    key: str
    value: str


def _python_type(field: Field[Any], imports: Imports) -> str:
    from tortoise import fields

    if isinstance(field, fields.data.CharEnumFieldInstance | fields.data.IntEnumFieldInstance):
        enum_type = field.enum_type
        return imports.add(enum_type.__module__, enum_type.__name__)
    if isinstance(field, fields.JSONField):
        return _JSON
    kind = field.field_type
    known = {
        int: "int",
        str: "str",
        bool: "bool",
        float: "float",
        bytes: "bytes",
        Decimal: "Decimal",
        datetime: "datetime",
        date: "date",
        time: "time",
        timedelta: "timedelta",
        UUID: "UUID",
    }
    if kind not in known:
        raise RuntimeError(f"cannot type the field {field.model_field_name} ({kind!r})")
    if kind.__module__ != "builtins":
        imports.add(kind.__module__, kind.__name__)
    return known[kind]


def _suffixes(field: Field[Any], python: str) -> tuple[str, ...]:
    """The lookups that make sense for the field's type (Tortoise accepts more: e.g. id__year)."""
    from tortoise import fields

    if isinstance(field, fields.JSONField):
        return ("", "not", "isnull", "not_isnull", "contains", "contained_by", "filter")
    if isinstance(field, fields.BooleanField) or python not in _ORDERED:
        return _EQUALITY
    if python == "str":
        return _EQUALITY + _ORDER + _TEXT
    if python == "datetime":
        return _EQUALITY + _ORDER + _DATE_PARTS + _TIME_PARTS
    if python == "date":
        return _EQUALITY + _ORDER + _DATE_PARTS
    return _EQUALITY + _ORDER


_JSON = "dict[str, Any]"
_ORDERED = {"int", "float", "Decimal", "str", "datetime", "date", "time", "timedelta", "UUID"}


def _value_type(suffix: str, python: str, null: bool) -> str:
    if suffix == "":
        return f"{python} | None" if null else python
    if suffix in ("in", "not_in"):
        return f"_Many[{python}]"
    if suffix == "range":
        return f"_Range[{python}]"
    if suffix in ("isnull", "not_isnull"):
        return "bool"
    if suffix in _DATE_PARTS + _TIME_PARTS:
        return "int"
    if suffix in _TEXT and python != _JSON:
        return "str"
    return python  # not, gt, gte, lt, lte, contains/contained_by/filter of JSON


def _own_lookups(model: type[Model], imports: Imports) -> list[Lookup]:
    """Keys on the model's own columns (and pk), each checked against Tortoise's own filters."""
    meta = model._meta
    accepted = set(meta._filters)
    lookups: list[Lookup] = []
    for name, field in meta.fields_map.items():
        if name in meta.fetch_fields:
            continue
        python = _python_type(field, imports)
        names = [name, "pk"] if field.pk else [name]
        for key_base in names:
            for suffix in _suffixes(field, python):
                key = f"{key_base}__{suffix}" if suffix else key_base
                if key not in accepted:
                    raise RuntimeError(f"Tortoise does not accept {model.__name__}.filter({key}=)")
                lookups.append(Lookup(key, _value_type(suffix, python, field.null)))
    return lookups


def _relation_lookups(
    model: type[Model], imports: Imports, hops: int, back: str | None
) -> list[Lookup]:
    """Own keys, then the relations: `user` (object or id), reverse `sessions`, `user__…`."""
    meta = model._meta
    lookups = _own_lookups(model, imports)
    for name in sorted(meta.fetch_fields, key=list(meta.fields_map).index):
        if name == back:
            continue
        field: Any = meta.fields_map[name]
        related: type[Model] = field.related_model
        pk = _python_type(related._meta.pk, imports)
        if name in meta.fk_fields | meta.o2o_fields:
            null = " | None" if field.null else ""
            lookups.append(Lookup(name, f"{related.__name__} | {pk}{null}"))
            inverse = field.related_name
        else:  # reverse relation: Tortoise filters it by the related rows' primary keys
            lookups += [
                Lookup(f"{name}__{s}" if s else name, _value_type(s, pk, False))
                for s in _EQUALITY
                if (f"{name}__{s}" if s else name) in meta._filters
            ]
            inverse = field.relation_field.removesuffix("_id")
        if hops > 0:
            nested = _relation_lookups(related, imports, hops - 1, inverse)
            lookups += [Lookup(f"{name}__{n.key}", n.value) for n in nested]
    return lookups


def lookups(model: type[Model], imports: Imports | None = None) -> list[Lookup]:
    """Every filter keyword of the model and its value type (the keys of <Model>Lookups)."""
    return _relation_lookups(model, imports or Imports(), MAX_HOPS, None)


def _value_keys(model: type[Model], imports: Imports, *, update: bool) -> list[Lookup]:
    """Values create() takes: every stored field (the relation as an object or its _id); for
    update() the same but the primary key, each also as an Expression."""
    meta = model._meta
    keys: list[Lookup] = []
    for name, field in meta.fields_map.items():
        if (update and field.pk) or name in meta.backward_fk_fields | meta.m2m_fields:
            continue
        null = " | None" if field.null else ""
        if name in meta.fk_fields | meta.o2o_fields:
            related = field.related_model  # type: ignore[attr-defined]
            keys.append(Lookup(name, f"{related.__name__}{null}"))
        else:
            expression = " | Expression" if update else ""
            keys.append(Lookup(name, f"{_python_type(field, imports)}{null}{expression}"))
    return keys


def _typed_dict(name: str, doc: str, keys: list[Lookup]) -> str:
    body = "".join(f"    {k.key}: {k.value}\n" for k in keys)
    return f'class {name}(TypedDict, total=False):\n    """{doc}"""\n\n{body}'


_QUERYSET_METHODS = """\
class {m}QuerySet(QuerySet[{m}]):
    def filter(  # type: ignore[override]
        self, *args: Q, **kwargs: Unpack[{m}Lookups]
    ) -> {m}QuerySet: ...
    def exclude(  # type: ignore[override]
        self, *args: Q, **kwargs: Unpack[{m}Lookups]
    ) -> {m}QuerySet: ...
    def get(  # type: ignore[override]
        self, *args: Q, **kwargs: Unpack[{m}Lookups]
    ) -> QuerySetSingle[{m}]: ...
    def get_or_none(  # type: ignore[override]
        self, *args: Q, **kwargs: Unpack[{m}Lookups]
    ) -> QuerySetSingle[{m} | None]: ...
    def update(self, **kwargs: Unpack[{m}Update]) -> UpdateQuery: ...  # type: ignore[override]
    def all(self) -> {m}QuerySet: ...
    def order_by(self, *orderings: str) -> {m}QuerySet: ...
    def limit(self, limit: int) -> {m}QuerySet: ...
    def offset(self, offset: int) -> {m}QuerySet: ...
    def distinct(self) -> {m}QuerySet: ...
    def only(self, *fields_for_select: str) -> {m}QuerySet: ...
    def select_related(self, *fields: str) -> {m}QuerySet: ...
    def prefetch_related(self, *args: str | Prefetch) -> {m}QuerySet: ...
    def using_db(self, _db: BaseDBAsyncClient | None) -> {m}QuerySet: ...
    def select_for_update(
        self,
        nowait: bool = False,
        skip_locked: bool = False,
        of: tuple[str, ...] = (),
        no_key: bool = False,
    ) -> {m}QuerySet: ...
"""

_RELATION_METHODS = """\
class {m}Relation(ReverseRelation[{m}]):
    \"\"\"A reverse relation to {m} (user.sessions): its querysets take typed keywords too.\"\"\"

    def filter(  # type: ignore[override]
        self, *args: Q, **kwargs: Unpack[{m}Lookups]
    ) -> {m}QuerySet: ...
    def all(self) -> {m}QuerySet: ...
    def order_by(self, *orderings: str) -> {m}QuerySet: ...
    def limit(self, limit: int) -> {m}QuerySet: ...
    def offset(self, offset: int) -> {m}QuerySet: ...
"""

_MODEL_METHODS = """\
    @classmethod
    def filter(  # type: ignore[override]
        cls, *args: Q, **kwargs: Unpack[{m}Lookups]
    ) -> {m}QuerySet: ...
    @classmethod
    def exclude(  # type: ignore[override]
        cls, *args: Q, **kwargs: Unpack[{m}Lookups]
    ) -> {m}QuerySet: ...
    @classmethod
    def all(cls, using_db: BaseDBAsyncClient | None = None) -> {m}QuerySet: ...
    @classmethod
    def get(  # type: ignore[override]
        cls, *args: Q, using_db: BaseDBAsyncClient | None = None, **kwargs: Unpack[{m}Lookups]
    ) -> QuerySetSingle[{m}]: ...
    @classmethod
    def get_or_none(  # type: ignore[override]
        cls, *args: Q, using_db: BaseDBAsyncClient | None = None, **kwargs: Unpack[{m}Lookups]
    ) -> QuerySetSingle[{m} | None]: ...
    @classmethod
    def exists(  # type: ignore[override]
        cls, *args: Q, using_db: BaseDBAsyncClient | None = None, **kwargs: Unpack[{m}Lookups]
    ) -> ExistsQuery: ...
    @classmethod
    async def create(  # type: ignore[override]
        cls, using_db: BaseDBAsyncClient | None = None, **kwargs: Unpack[{m}Values]
    ) -> {m}: ...
    @classmethod
    async def get_or_create(  # type: ignore[override]
        cls,
        defaults: {m}Values | None = None,
        using_db: BaseDBAsyncClient | None = None,
        **kwargs: Unpack[{m}Lookups],
    ) -> tuple[{m}, bool]: ...
"""


def _annotation_text(model: type[Any], name: str) -> str | None:
    text = inspect.get_annotations(model).get(name)
    return text if isinstance(text, str) or text is None else None


def _model_stub(model: type[Model], imports: Imports) -> str:
    from tortoise import fields

    meta = model._meta
    lines = [f"class {model.__name__}(Model):"]
    if model.__doc__:
        lines.append(f'    """{inspect.cleandoc(model.__doc__)}"""\n')
    for name, field in meta.fields_map.items():
        declared = _annotation_text(model, name)
        if isinstance(field, fields.relational.BackwardFKRelation):
            if declared is None or "ReverseRelation" not in declared:
                raise RuntimeError(f"annotate the reverse relation {model.__name__}.{name}")
            lines.append(f"    {name}: {field.related_model.__name__}Relation")
            continue
        if declared is not None:
            lines.append(f"    {name}: {declared.replace('fields.', '')}")
            for kind in ("ForeignKeyRelation", "OneToOneRelation"):
                if kind in declared:
                    imports.add("tortoise.fields", kind)
            continue
        python = _python_type(field, imports)
        lines.append(f"    {name}: {python}{' | None' if field.null else ''}")
    lines.append("")
    lines.append(_MODEL_METHODS.format(m=model.__name__).rstrip("\n"))
    return "\n".join(lines) + "\n"


def _module_member(name: str, value: Any, module: str, imports: Imports) -> str | None:
    """A stub line for a module-level name of models.py that is not a model."""
    if isinstance(value, type) and value.__module__ == module:
        if issubclass(value, enum.Enum):
            bases = ", ".join(
                imports.add(b.__module__, b.__name__) for b in value.__bases__ if b is not object
            )
            members = "".join(f"    {m.name} = {literal(m.value)}\n" for m in value)
            return f"class {name}({bases}):\n{members}"
        orig = getattr(value, "__orig_bases__", value.__bases__)
        bases = ", ".join(_generic_base(b, imports) for b in orig)
        return f"class {name}({bases}): ...\n"
    if isinstance(value, type | pytypes.ModuleType | Callable) or name.startswith("_"):
        return None  # imports of models.py
    if not name.isupper():
        return None
    kind = type(value)
    return f"{name}: {imports.add(kind.__module__, kind.__name__)}\n"


def _generic_base(base: Any, imports: Imports) -> str:
    origin = get_origin(base)
    if origin is None:
        return imports.add(base.__module__, base.__name__)
    args = ", ".join(_generic_base(a, imports) for a in get_args(base))
    return f"{imports.add(_public_module(origin), origin.__name__)}[{args}]"


def _public_module(kind: type[Any]) -> str:
    """tortoise.fields.data.CharField is importable as tortoise.fields.CharField."""
    from tortoise import fields

    if getattr(fields, kind.__name__, None) is kind:
        return "tortoise.fields"
    return kind.__module__


def _reverse_fields(model: type[Model]) -> list[Any]:
    meta = model._meta
    return [meta.fields_map[name] for name in meta.backward_fk_fields]


def render_stubs() -> str:
    """The source of coach_db/models.pyi."""
    from tortoise import Tortoise
    from tortoise.models import Model

    from coach_db import models as module
    from coach_db.config import APP_LABEL, MODELS_MODULE

    Tortoise.init_models([MODELS_MODULE], APP_LABEL)
    imports = Imports()
    for module_name, name in [
        ("tortoise.models", "Model"),
        ("tortoise.expressions", "Expression"),
        ("tortoise.expressions", "Q"),
        ("tortoise.queryset", "QuerySet"),
        ("tortoise.queryset", "QuerySetSingle"),
        ("tortoise.queryset", "UpdateQuery"),
        ("tortoise.queryset", "ExistsQuery"),
        ("tortoise.query_utils", "Prefetch"),
        ("tortoise.backends.base.client", "BaseDBAsyncClient"),
        ("typing", "Any"),
        ("typing", "TypeAlias"),
        ("typing", "TypedDict"),
        ("typing", "TypeVar"),
        ("typing", "Unpack"),
    ]:
        imports.add(module_name, name)
    parts: list[str] = []
    models: list[type[Model]] = []
    for name, value in vars(module).items():
        own = isinstance(value, type) and value.__module__ == module.__name__
        if own and issubclass(value, Model):
            models.append(value)
            continue
        member = _module_member(name, value, module.__name__, imports)
        if member is not None:
            parts.append(member)
    for model in models:
        m = model.__name__
        parts.append(_model_stub(model, imports))
        parts.append(
            _typed_dict(
                f"{m}Lookups",
                f"Keyword arguments of {m}.filter() / exclude() / get() / get_or_none().",
                lookups(model, imports),
            )
        )
        parts.append(
            _typed_dict(
                f"{m}Update",
                f"Keyword arguments of {m}.filter(...).update().",
                _value_keys(model, imports, update=True),
            )
        )
        parts.append(
            _typed_dict(
                f"{m}Values",
                f"Keyword arguments of {m}.create(), and defaults of get_or_create().",
                _value_keys(model, imports, update=False),
            )
        )
        parts.append(_QUERYSET_METHODS.format(m=m))
        if any(model in {f.related_model for f in _reverse_fields(other)} for other in models):
            imports.add("tortoise.fields", "ReverseRelation")
            parts.append(_RELATION_METHODS.format(m=m))
    return (
        HEADER.format(source="models.py")
        + '"""Type stub of coach_db.models: the models with typed query keywords (PEP 692)."""\n\n'
        + imports.render(skip=module.__name__)
        + "\n"
        + '_T = TypeVar("_T")\n'
        + "# Values of __in / __not_in and __range lookups.\n"
        + "_Many: TypeAlias = list[_T] | tuple[_T, ...] | set[_T] | frozenset[_T]\n"
        + "_Range: TypeAlias = tuple[_T, _T] | list[_T]\n\n"
        + "\n".join(parts)
    )
