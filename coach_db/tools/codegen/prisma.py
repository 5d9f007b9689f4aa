"""`coach-db generate --prisma DIR`: a schema.prisma for Prisma Client on coach-db's database.

Rendered from the Tortoise models (their meta: tables, columns, types, defaults, relations), so
a column added to a model appears in the next schema. Model names are the models' own and
field names their camelCase (`User.passwordHash`, `ConversationSession.totalMessages`, the
relations `sessions`, `scenario`, `messages`, ...): the names of the Prisma package's schema,
mapped with `@@map` / `@map` onto coach-db's snake_case tables and columns. TypeScript services
keep their Prisma Client code; the database's triggers and CHECKs apply to their writes too.

The schema is for `prisma generate` only: coach-db's migrations own the database, so
`prisma migrate` and `prisma db push` must never run on it (the schema does not describe the
CHECKs, triggers and expression indexes they would drop).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tortoise.fields.base import Field
    from tortoise.models import Model

SCHEMA_NAME = "schema.prisma"

# Models left out, with why (the schema's header says so too). Every other model is exposed.
OMITTED = {
    "AuditEvent": "the studio's audit trail: append-only, written by the studio",
    "ErasureReceipt": "erasure receipts: append-only, written by `coach-db privacy erase`",
}
# Read-only for Prisma Client: rows the database writes itself (a trigger), said in their doc.
WRITTEN_BY_DATABASE = {
    "ScenarioVersion": "Written by the database whenever a scenario's prompts or models change "
    "(read-only: never create, update or delete these rows).",
}
# Foreign keys a BEFORE INSERT trigger fills when the INSERT leaves them out: optional in
# Prisma's create input (`@default(dbgenerated())`), like a column default.
FILLED_ON_INSERT = {("ConversationSession", "scenario_version")}

# The generator and datasource the schema starts with. A schema that already exists keeps its
# own (another output folder, binary targets, ...): only the models are rewritten.
DEFAULT_BLOCKS = """\
generator client {
  provider = "prisma-client-js"
}

datasource db {
  provider = "postgresql"
}
"""

_BLOCK = re.compile(r"^(?:generator|datasource)\s+\w+\s*\{.*?^\}[ \t]*$", re.M | re.S)
_ON_DELETE = {"CASCADE": "Cascade", "RESTRICT": "Restrict", "SET NULL": "SetNull"}
_SCALARS = {
    "IntField": ("Int", None),
    "SmallIntField": ("Int", "@db.SmallInt"),
    "BigIntField": ("BigInt", None),
    "BooleanField": ("Boolean", None),
    "TextField": ("String", None),
    "FloatField": ("Float", "@db.DoublePrecision"),
    "DatetimeField": ("DateTime", "@db.Timestamptz(6)"),
    "DateField": ("DateTime", "@db.Date"),
    "JSONField": ("Json", None),
    "UUIDField": ("String", "@db.Uuid"),
    "BinaryField": ("Bytes", None),
}


class PrismaSchemaError(RuntimeError):
    """A model uses something the Prisma schema cannot express (name and fix in the message)."""


def camel(name: str) -> str:
    """`partner_system_prompt` -> `partnerSystemPrompt`: Prisma's field naming."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@dataclass
class _Line:
    name: str
    type: str
    attributes: list[str]
    doc: str | None = None


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _scalar_type(model: type[Model], field: Field[Any]) -> tuple[str, list[str]]:
    kind = type(field).__name__.removesuffix("Instance")
    if kind in ("CharField", "CharEnumField") or hasattr(field, "max_length"):
        return "String", [f"@db.VarChar({field.max_length})"]  # type: ignore[attr-defined]
    if kind == "IntEnumField":
        return "Int", ["@db.SmallInt"]
    if kind == "DecimalField":
        digits, places = field.max_digits, field.decimal_places  # type: ignore[attr-defined]
        return "Decimal", [f"@db.Decimal({digits}, {places})"]
    if kind not in _SCALARS:
        raise PrismaSchemaError(
            f"{model.__name__}.{field.model_field_name}: no Prisma type for {kind}; add it to "
            "coach_db/tools/codegen/prisma.py (_SCALARS)."
        )
    prisma, native = _SCALARS[kind]
    return prisma, [native] if native else []


def _default(field: Field[Any]) -> str | None:
    """The `@default(...)` of a column the database fills when a write leaves it out."""
    from tortoise.fields.db_defaults import SqlDefault

    value = getattr(field, "db_default", None)
    if field.pk and field.generated:
        return "@default(autoincrement())"
    if isinstance(value, SqlDefault):
        if value.sql.upper() in ("CURRENT_TIMESTAMP", "NOW()"):
            return "@default(now())"
        return f"@default(dbgenerated({_quote(value.sql)}))"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        return f"@default({str(value).lower()})"
    if isinstance(value, int | float):
        return f"@default({value})"
    if isinstance(value, str):
        return f"@default({_quote(value)})"
    return None


def _doc(field: Field[Any]) -> str | None:
    enum_type = getattr(field, "enum_type", None)
    text = " ".join((field.description or "").split())
    # Tortoise describes an enum field without a description by its members ("USER: user ...").
    if enum_type is not None and text == " ".join(f"{m.name}: {m.value}" for m in enum_type):
        text = ""
    parts = [text if text.endswith(".") else text + "."] if text else []
    if enum_type is not None:
        values = ", ".join(str(member.value) for member in enum_type)
        parts.append(f"One of: {values} (the database refuses any other value).")
    return " ".join(parts) or None


def _column(name: str, column: str) -> list[str]:
    return [f"@map({_quote(column)})"] if column != name else []


def _data_line(model: type[Model], field: Field[Any]) -> _Line:
    name = camel(field.model_field_name)
    prisma, native = _scalar_type(model, field)
    attributes: list[str] = []
    if field.pk:
        attributes.append("@id")
    elif field.unique:
        attributes.append("@unique")
    if default := _default(field):
        attributes.append(default)
    if getattr(field, "auto_now", False):
        attributes.append("@updatedAt")  # as in the Prisma package: set by the client on update
    attributes += _column(name, field.source_field or field.model_field_name) + native
    return _Line(name, prisma + ("?" if field.null else ""), attributes, _doc(field))


def _relation_name(model: type[Model], field: Field[Any], ambiguous: Counter[Any]) -> str:
    target = field.related_model  # type: ignore[attr-defined]
    pair = frozenset((model.__name__, target.__name__))
    return (
        f"{_quote(model.__name__ + '_' + field.model_field_name)}, " if ambiguous[pair] > 1 else ""
    )


def _foreign_key_lines(
    model: type[Model], field: Field[Any], ambiguous: Counter[Any]
) -> list[_Line]:
    meta = model._meta
    target: type[Model] = field.related_model  # type: ignore[attr-defined]
    if target.__name__ in OMITTED:
        raise PrismaSchemaError(
            f"{model.__name__}.{field.model_field_name} points to an omitted model"
        )
    # Tortoise's `<name>_id` field: the scalar Prisma wants beside the relation (`userId`).
    scalar = _data_line(model, meta.fields_map[str(field.source_field)])
    if (model.__name__, field.model_field_name) in FILLED_ON_INSERT:
        scalar.attributes.insert(0, "@default(dbgenerated())")
    if type(field).__name__.startswith("OneToOne"):
        scalar.attributes.insert(0, "@unique")
    scalar.type = scalar.type.rstrip("?") + ("?" if field.null else "")
    to_field = target._meta.fields_map[field.to_field].model_field_name  # type: ignore[attr-defined]
    on_delete = _ON_DELETE.get(str(field.on_delete), "NoAction")  # type: ignore[attr-defined]
    relation = (
        f"@relation({_relation_name(model, field, ambiguous)}fields: [{scalar.name}], "
        f"references: [{camel(to_field)}], onDelete: {on_delete}, onUpdate: NoAction)"
    )
    name = camel(field.model_field_name)
    line = _Line(name, target.__name__ + ("?" if field.null else ""), [relation])
    return [line, scalar]


def _reverse_line(model: type[Model], name: str, ambiguous: Counter[Any]) -> _Line:
    field = model._meta.fields_map[name]
    source: type[Model] = field.related_model  # type: ignore[attr-defined]
    forward = source._meta.fields_map[field.relation_field.removesuffix("_id")]  # type: ignore[attr-defined]
    label = _relation_name(source, forward, ambiguous).removesuffix(", ")
    attributes = [f"@relation({label})"] if label else []
    many = not type(field).__name__.startswith("BackwardOneToOne")
    return _Line(camel(name), source.__name__ + ("[]" if many else "?"), attributes)


def _model_block(model: type[Model], ambiguous: Counter[Any]) -> str:
    meta = model._meta
    lines: list[_Line] = []
    id_names = {meta.fields_map[name].source_field for name in meta.fk_fields | meta.o2o_fields}
    for name, field in meta.fields_map.items():
        if name in meta.fk_fields or name in meta.o2o_fields:
            lines += _foreign_key_lines(model, field, ambiguous)
        elif name in meta.backward_fk_fields or name in meta.backward_o2o_fields:
            if field.related_model.__name__ not in OMITTED:  # type: ignore[attr-defined]
                lines.append(_reverse_line(model, name, ambiguous))
        elif name in meta.m2m_fields:
            raise PrismaSchemaError(f"{model.__name__}.{name}: many-to-many is not supported")
        elif name not in id_names:
            lines.append(_data_line(model, field))
    name_width = max(len(line.name) for line in lines)
    type_width = max(len(line.type) for line in lines)
    out = []
    doc = WRITTEN_BY_DATABASE.get(model.__name__) or (model.__doc__ or "").strip().split("\n")[0]
    if doc:
        out.append(f"/// {doc}")
    out.append(f"model {model.__name__} {{")
    for line in lines:
        if line.doc:
            out.append(f"  /// {line.doc}")
        text = f"  {line.name.ljust(name_width)} {line.type.ljust(type_width)} "
        out.append((text + " ".join(line.attributes)).rstrip())
    extra = [
        f"@@unique([{', '.join(_unique_names(model, group))}])" for group in meta.unique_together
    ]
    out.append("")
    out += [f"  {attribute}" for attribute in extra]
    out.append(f"  @@map({_quote(meta.db_table)})")
    out.append("}")
    return "\n".join(out)


def _unique_names(model: type[Model], group: tuple[str, ...]) -> list[str]:
    fields_map = model._meta.fields_map
    names = []
    for name in group:
        field = fields_map[name]
        names.append(camel(field.source_field if name in model._meta.fk_fields else name))  # type: ignore[arg-type]
    return names


def _models() -> list[type[Model]]:
    from tortoise import Tortoise

    from coach_db import models as module
    from coach_db.config import APP_LABEL, MODELS_MODULE

    Tortoise.init_models([MODELS_MODULE], APP_LABEL)
    found = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and value.__module__ == module.__name__
        and hasattr(value, "_meta")
        and not value._meta.abstract
    ]
    return [model for model in found if model.__name__ not in OMITTED]


def render(blocks: str = DEFAULT_BLOCKS) -> str:
    """The text of schema.prisma, with `blocks` (generator and datasource) at the top."""
    models = _models()
    ambiguous: Counter[Any] = Counter()
    for model in models:
        for name in model._meta.fk_fields | model._meta.o2o_fields:
            target = model._meta.fields_map[name].related_model  # type: ignore[attr-defined]
            ambiguous[frozenset((model.__name__, target.__name__))] += 1
    omitted = "\n".join(f"//   {name}: {why}" for name, why in OMITTED.items())
    header = (
        "// Generated by `coach-db generate --prisma` from coach_db/models.py: do not edit the\n"
        "// models (the generator and datasource blocks are yours and are kept).\n"
        "// For `prisma generate` and Prisma Client only: coach-db's migrations own this\n"
        "// database, so never run `prisma migrate` or `prisma db push` on it.\n"
        f"// Left out:\n{omitted}\n"
    )
    body = "\n\n".join(_model_block(model, ambiguous) for model in models)
    return f"{header}\n{blocks.strip()}\n\n{body}\n"


def blocks_of(text: str) -> str:
    """The generator and datasource blocks of an existing schema (or the default ones)."""
    found = _BLOCK.findall(text)
    return "\n\n".join(found) + "\n" if found else DEFAULT_BLOCKS


def write(folder: Path) -> Path:
    """Write (or rewrite, keeping its generator and datasource) `folder`/schema.prisma."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / SCHEMA_NAME
    blocks = blocks_of(path.read_text()) if path.exists() else DEFAULT_BLOCKS
    path.write_text(render(blocks))
    return path


def is_current(path: Path) -> bool:
    """Whether the schema at `path` is what `coach-db generate --prisma` writes for the models."""
    if not path.is_file():
        return False
    text = path.read_text()
    return text == render(blocks_of(text))


def configured_schema(project: Path | None = None) -> Path | None:
    """`[tool.coach-db] prisma_schema` of ./pyproject.toml (relative to it), if it names one."""
    import tomllib

    pyproject = (project or Path.cwd()) / "pyproject.toml"
    if not pyproject.is_file():
        return None
    try:
        settings = tomllib.loads(pyproject.read_text()).get("tool", {}).get("coach-db", {})
    except tomllib.TOMLDecodeError as exc:
        raise PrismaSchemaError(f"{pyproject} is not valid TOML: {exc}") from None
    value = settings.get("prisma_schema")
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise PrismaSchemaError(
            f"{pyproject}: [tool.coach-db] prisma_schema must be a path, "
            'e.g. "prisma/schema.prisma".'
        )
    path = pyproject.parent / value
    return path / SCHEMA_NAME if path.is_dir() else path


def prisma_drift(path: Path | None = None) -> list[Path]:
    """[path] when the schema there (or the configured one) is not current, else []."""
    path = path or configured_schema()
    if path is not None and path.is_dir():
        path = path / SCHEMA_NAME
    return [path] if path is not None and not is_current(path) else []
