"""The schema map at /admin/schema: the live schema read from pg_catalog, drawn by mermaid.

Tables with their columns (type, nullability, primary and foreign keys) and the relations
between them, as a mermaid erDiagram the browser draws (the built assets, no CDN); each
table's indexes and CHECK constraints are listed under the map, opened on demand.
"""

from __future__ import annotations

# compat's shims run before fastapi_admin is first imported (see compat).
from coach_db.apps.studio import compat  # noqa: F401

# isort: split

import re
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from fastapi_admin.depends import get_resources
from tortoise import connections

from coach_db.apps.studio.auth import require_staff
from coach_db.apps.studio.roles import require_role
from coach_db.apps.studio.templating import render

router = APIRouter(dependencies=[Depends(require_staff)])
Sidebar = Annotated[Any, Depends(get_resources)]

# The current schema's tables (not extensions'), their columns, keys, indexes and checks.
_TABLES = """
SELECT c.oid, c.relname AS name, obj_description(c.oid, 'pg_class') AS comment
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
ORDER BY c.relname
"""
_COLUMNS = """
SELECT a.attrelid AS oid, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
       a.attnotnull AS not_null,
       EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = a.attrelid AND k.contype = 'p'
               AND a.attnum = ANY (k.conkey)) AS pk,
       EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = a.attrelid AND k.contype = 'f'
               AND a.attnum = ANY (k.conkey)) AS fk
FROM pg_attribute a
WHERE a.attrelid = ANY ($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""
_CONSTRAINTS = """
SELECT k.conrelid AS oid, k.conname AS name, k.contype::text AS kind, k.confrelid AS target,
       pg_get_constraintdef(k.oid) AS definition,
       (SELECT string_agg(a.attname, ', ' ORDER BY a.attnum) FROM pg_attribute a
        WHERE a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey)) AS columns,
       (SELECT bool_and(a.attnotnull) FROM pg_attribute a
        WHERE a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey)) AS required
FROM pg_constraint k WHERE k.conrelid = ANY ($1::oid[]) AND k.contype IN ('f', 'c')
ORDER BY k.conrelid, k.conname
"""
_INDEXES = """
SELECT i.indrelid AS oid, c.relname AS name, pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = ANY ($1::oid[]) ORDER BY i.indrelid, c.relname
"""
# Shorter names of common types, so the boxes stay narrow.
_SHORT_TYPES = {
    "timestamp with time zone": "timestamptz",
    "timestamp without time zone": "timestamp",
    "character varying": "varchar",
    "double precision": "float8",
    "boolean": "bool",
    "integer": "int",
}


@dataclass
class Table:
    name: str
    comment: str | None
    columns: list[dict[str, Any]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    foreign_keys: list[dict[str, Any]] = field(default_factory=list)
    indexes: list[dict[str, Any]] = field(default_factory=list)


async def read_schema() -> list[Table]:
    """Every table of the current schema, from the catalogue (never a hand-kept list)."""
    conn = connections.get("default")
    tables = await conn.execute_query_dict(_TABLES)
    by_oid = {t["oid"]: Table(t["name"], t["comment"]) for t in tables}
    oids = list(by_oid)
    for column in await conn.execute_query_dict(_COLUMNS, [oids]):
        by_oid[column["oid"]].columns.append(column)
    names = {oid: t.name for oid, t in by_oid.items()}
    for constraint in await conn.execute_query_dict(_CONSTRAINTS, [oids]):
        table = by_oid[constraint["oid"]]
        if constraint["kind"] == "c":
            table.checks.append(constraint)
        elif constraint["target"] in names:
            table.foreign_keys.append({**constraint, "target_name": names[constraint["target"]]})
    for index in await conn.execute_query_dict(_INDEXES, [oids]):
        by_oid[index["oid"]].indexes.append(index)
    return list(by_oid.values())


def _word(text: str) -> str:
    """A name as mermaid's erDiagram accepts it (letters, digits, _)."""
    return re.sub(r"\W", "_", text) or "_"


def short_type(pg_type: str) -> str:
    for long, short in _SHORT_TYPES.items():
        pg_type = pg_type.replace(long, short)
    return _word(pg_type.replace("(", "_").replace(")", "").replace(",", "_")).strip("_")


def mermaid_source(tables: list[Table]) -> str:
    """The erDiagram: each table with its columns, then one line per foreign key."""
    lines = ["erDiagram"]
    for table in tables:
        lines.append(f"    {_word(table.name)} {{")
        for column in table.columns:
            keys = ",".join(k for k, on in (("PK", column["pk"]), ("FK", column["fk"])) if on)
            null = "" if column["not_null"] else ' "null"'
            lines.append(
                f"        {short_type(column['type'])} {_word(column['name'])}"
                f"{' ' + keys if keys else ''}{null}"
            )
        lines.append("    }")
    for table in tables:
        for fk in table.foreign_keys:
            # The parent has exactly one row per child row; a nullable key: zero or one.
            parent = "||" if fk["required"] else "|o"
            lines.append(
                f"    {_word(fk['target_name'])} {parent}--o{{ {_word(table.name)} : "
                f'"{_word(fk["columns"] or "")}"'
            )
    return "\n".join(lines)


@router.get("/schema")
async def schema_page(request: Request, resources: Sidebar) -> Response:
    await require_role(request, "viewer")
    tables = await read_schema()
    context = {
        "resources": resources,
        "resource_label": "Schema map",
        "page_pre_title": "The live schema, from the database's catalogue",
        "page_title": "Schema map",
        "tables": tables,
        "diagram": mermaid_source(tables),
    }
    return render(request, "schema.html", context)
