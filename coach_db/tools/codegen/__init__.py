"""`coach-db generate`: static Pydantic types, typed query stubs and TypeScript from the models.

Three outputs, all rendered from the live Tortoise models so they cannot disagree with them:

- ``coach_db/types.py``: the types of ``reference.reference_types()`` as ordinary
  classes with every field spelt out (what mypy and pyright read; behaviour checked equal);
- ``coach_db/models.pyi``: a stub beside the models whose ``filter`` / ``exclude`` / ``get`` /
  ``get_or_none`` / ``update`` take ``**kwargs: Unpack[<Model>Lookups]`` (PEP 692), one key
  per field and lookup Tortoise accepts, with its value type;
- TypeScript interfaces from the JSON Schemas (``--ts DIR``).

``coach-db check`` fails when the committed files differ from what this would write now.
"""

from __future__ import annotations

from pathlib import Path

from coach_db.tools.codegen.pydantic_types import render_types
from coach_db.tools.codegen.source import STUBS_FILE, TYPES_FILE
from coach_db.tools.codegen.stubs import lookups, render_stubs
from coach_db.tools.codegen.typescript import render_typescript

# --- write and check --------------------------------------------------------------------------


def generated_files() -> dict[Path, str]:
    """Each committed generated file and the text it must have."""
    return {TYPES_FILE: render_types(), STUBS_FILE: render_stubs()}


def drift() -> list[Path]:
    """The committed generated files that differ from what `coach-db generate` would write."""
    return [
        path
        for path, text in generated_files().items()
        if not path.exists() or path.read_text() != text
    ]


def write_generated() -> list[Path]:
    written = []
    for path, text in generated_files().items():
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            written.append(path)
    return written


__all__ = [
    "drift",
    "generated_files",
    "lookups",
    "render_stubs",
    "render_types",
    "render_typescript",
    "write_generated",
]
