"""coach_db/types.py: the reference types as ordinary classes, every field spelt out."""

from __future__ import annotations

import enum
import inspect
import types as pytypes
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin

import pydantic
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

if TYPE_CHECKING:
    pass


from coach_db.tools.codegen.source import HEADER, Imports, call, literal

# --- Pydantic types ---------------------------------------------------------------------------

# Nested types pydantic_model_creator builds without a name: (type, field) -> our class name.
# A nested type with the same fields as a top-level type (ScenarioRead, MessageRead) reuses it.
NESTED_NAMES = {("UserWithSessions", "sessions"): "SessionWithHistory"}


def _fields_key(model: type[BaseModel]) -> list[tuple[str, str]]:
    return [(name, repr(info)) for name, info in model.model_fields.items()]


@dataclass
class _TypePlan:
    name: str
    model: type[BaseModel]


def _plan_types(reference: dict[str, type[BaseModel]]) -> tuple[list[_TypePlan], dict[Any, str]]:
    """Every class to write, dependencies first, and the name each runtime class gets."""
    names: dict[Any, str] = {}
    plans: list[_TypePlan] = []
    by_shape = {
        (model.model_config.get("orig_model"), repr(_fields_key(model))): name
        for name, model in reference.items()
    }

    def visit(name: str, model: type[BaseModel]) -> None:
        if model in names:
            return
        names[model] = name
        for field, info in model.model_fields.items():
            for nested in _nested_models(info.annotation):
                if nested in names:
                    continue
                shape = (nested.model_config.get("orig_model"), repr(_fields_key(nested)))
                if shape in by_shape:
                    visit(by_shape[shape], reference[by_shape[shape]])
                    names[nested] = by_shape[shape]
                elif (name, field) in NESTED_NAMES:
                    visit(NESTED_NAMES[(name, field)], nested)
                else:
                    raise RuntimeError(
                        f"{name}.{field} nests a type without a name: add "
                        f"({name!r}, {field!r}) to NESTED_NAMES in coach_db/codegen.py"
                    )
        plans.append(_TypePlan(name, model))

    for name, model in reference.items():
        visit(name, model)
    return plans, names


def _nested_models(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in get_args(annotation):
        yield from _nested_models(arg)


def _annotation(tp: Any, imports: Imports, names: dict[Any, str]) -> str:
    if tp is type(None):
        return "None"
    if tp is Any:
        return imports.add("typing", "Any")
    origin = get_origin(tp)
    if origin is Union or origin is pytypes.UnionType:
        return " | ".join(_annotation(arg, imports, names) for arg in get_args(tp))
    if origin is not None:
        args = ", ".join(_annotation(arg, imports, names) for arg in get_args(tp))
        return f"{_annotation(origin, imports, names)}[{args}]"
    if tp in names:
        return str(names[tp])
    if isinstance(tp, type):
        module = tp.__module__
        if module.startswith("pydantic.") and getattr(pydantic, tp.__name__, None) is tp:
            module = "pydantic"
        return imports.add(module, tp.__name__)
    raise RuntimeError(f"cannot write the annotation {tp!r}")


def _value(value: Any, imports: Imports) -> str:
    if isinstance(value, enum.Enum):
        imports.add(type(value).__module__, type(value).__name__)
        return f"{type(value).__name__}.{value.name}"
    if callable(value):
        return imports.add(value.__module__, value.__name__)
    return literal(value)


# FieldInfo.metadata entries that are Field() keywords; anything else goes into Annotated[].
_CONSTRAINTS = ("min_length", "max_length", "ge", "le", "gt", "lt", "pattern")


def _field_line(name: str, info: FieldInfo, imports: Imports, names: dict[Any, str]) -> str:
    annotation = _annotation(info.annotation, imports, names)
    extra: list[str] = []
    kwargs: list[str] = []
    if info.default is not PydanticUndefined:
        kwargs.append(f"default={_value(info.default, imports)}")
    if info.default_factory is not None:
        kwargs.append(f"default_factory={_value(info.default_factory, imports)}")
    for attr in ("title", "description"):
        if getattr(info, attr) is not None:
            kwargs.append(f"{attr}={literal(getattr(info, attr))}")
    if info.json_schema_extra:  # pydantic_model_creator sets {} (no effect) on most fields
        kwargs.append(f"json_schema_extra={literal(info.json_schema_extra)}")
    for item in info.metadata:
        constraint = next((a for a in _CONSTRAINTS if getattr(item, a, None) is not None), None)
        if constraint is not None:
            kwargs.append(f"{constraint}={literal(getattr(item, constraint))}")
        elif hasattr(item, "func"):
            kind = imports.add(type(item).__module__.split(".")[0], type(item).__name__)
            extra.append(f"{kind}({_value(item.func, imports)})")
        else:
            raise RuntimeError(f"cannot write the metadata {item!r} of {name}")
    if extra:
        annotation = f"{imports.add('typing', 'Annotated')}[{annotation}, {', '.join(extra)}]"
    if not kwargs:
        return f"    {name}: {annotation}"
    if kwargs == [kwargs[0]] and kwargs[0].startswith("default="):
        return f"    {name}: {annotation} = {kwargs[0].removeprefix('default=')}"
    imports.add("pydantic", "Field")
    return call(f"    {name}: {annotation} = Field(", kwargs, ")", indent=4)


def render_types(reference: dict[str, type[BaseModel]] | None = None) -> str:
    """The source of coach_db/types.py."""
    if reference is None:
        from coach_db.tools.codegen.reference import reference_types

        reference = dict(reference_types())
    plans, names = _plan_types(reference)
    imports = Imports()
    imports.add("tortoise.contrib.pydantic", "PydanticModel")
    imports.add("coach_db.validation", "orm_config")
    classes = []
    for plan in plans:
        model = plan.model
        orig: Any = model.model_config.get("orig_model")
        if orig is None:
            raise RuntimeError(f"{plan.name} is not built from a Tortoise model")
        imports.add(orig.__module__, orig.__name__)
        doc = inspect.cleandoc(model.__doc__ or "")
        lines = [f"class {plan.name}(PydanticModel):", f'    """{doc}"""', ""]
        lines.append(f'    model_config = orm_config({orig.__name__}, "{plan.name}")')
        lines.append("")
        lines += [_field_line(n, i, imports, names) for n, i in model.model_fields.items()]
        classes.append("\n".join(lines) + "\n")
    # Re-exported for services that import the enums with the types.
    imports.add("coach_db.models", "MessageRole")
    imports.add("coach_db.models", "SessionStatus")
    exported = sorted({*(plan.name for plan in plans), "MessageRole", "SessionStatus"})
    all_list = "__all__ = [\n" + "".join(f'    "{n}",\n' for n in exported) + "]\n"
    return (
        HEADER.format(source="tools/codegen/reference.py")
        + '"""Pydantic types of the models for APIs and services, fields spelt out.\n\n'
        "Turn ORM rows into them with ``await SessionRead.from_queryset(query)`` or\n"
        "``await UserWithSessions.from_tortoise_orm(user)`` (fetches the nested relations).\n"
        "No ``from __future__ import annotations``: Tortoise reads nested classes at run time.\n"
        '"""\n\n' + imports.render() + "\n\n" + "\n\n".join(classes) + "\n\n" + all_list
    )
