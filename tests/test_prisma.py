"""`coach-db generate --prisma`: Prisma Client 7 (the real npm packages) on coach-db's database."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from coach_db import ConversationSession, Message, ScenarioVersion, User
from coach_db.passwords import authenticate
from coach_db.tools.codegen.prisma import OMITTED, camel, configured_schema, prisma_drift, render
from tests.node import PRISMA, node, prisma_packages
from tests.processes import coach_db_cmd, subprocess_env

TSC = PRISMA.parent / "typescript" / "node_modules" / "typescript" / "bin" / "tsc"
SCRIPT = PRISMA / "client-check.mjs"


@pytest.fixture(scope="module")
def client_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A service's folder: schema.prisma from `coach-db generate --prisma`, `prisma generate`
    run on it offline (a stub schema engine: generate does not need it), the script beside."""
    folder = tmp_path_factory.mktemp("service")
    result = coach_db_cmd("generate", "--prisma", str(folder))
    assert result.returncode == 0, result.stderr
    (folder / "node_modules").symlink_to(prisma_packages() / "node_modules")
    (folder / SCRIPT.name).write_text(SCRIPT.read_text())
    env = subprocess_env(PRISMA_SCHEMA_ENGINE_BINARY="/bin/true", CHECKPOINT_DISABLE="1")
    cli = str(folder / "node_modules" / "prisma" / "build" / "index.js")
    generate = node([cli, "generate", "--schema", "schema.prisma"], folder, env)
    assert generate.returncode == 0, generate.stdout + generate.stderr
    return folder


async def test_prisma_client_writes_go_through_coach_db_rules(
    client_dir: Path, database_url: str
) -> None:
    """Nested writes and the README's nested include through Prisma Client; coach-db then reads
    exact counters, the recorded prompt version and the bcryptjs hash, which it upgrades."""
    result = node([SCRIPT.name], client_dir, subprocess_env(database_url))
    assert result.returncode == 0, result.stderr
    out: dict[str, Any] = json.loads(result.stdout)

    assert out["scenarioSlug"] == "asking-for-a-raise"
    assert out["roles"] == ["user", "partner", "coach"]
    assert out["totalMessages"] == 3  # counted by the database's trigger, not by the client
    assert out["metadata"] == [{}, {}, {"tokens": 12}]  # the column default, then the value
    assert out["endedDuration"] == 90 and out["endedVersion"] == 2
    assert out["counterWrite"] is None  # accepted, and ignored (below: still 3)

    session = await ConversationSession.get(pk=out["sessionId"])
    assert session.total_messages == await Message.filter(session_id=session.pk).count() == 3
    version = await ScenarioVersion.get(pk=session.scenario_version_id)  # type: ignore[attr-defined]
    assert out["scenarioVersionId"] == version.pk and version.version == 1
    assert version.scenario_id == session.scenario_id  # type: ignore[attr-defined]
    assert session.status == "completed" and session.duration_seconds == 90
    assert [str(m.pk) for m in await Message.filter(session_id=session.pk)] == out["messageIds"]

    # The database's refusals, as a TypeScript developer sees them: the constraint by name and,
    # for the user table (migration 11), what is wrong in the message and the fix in the hint.
    bad_role, mixed_case, staff_role = out["badRole"], out["mixedCase"], out["badStaffRole"]
    for refusal in (bad_role, mixed_case, staff_role):
        assert refusal["name"] == "PrismaClientKnownRequestError"
    assert 'violates check constraint "message_role_valid"' in bad_role["message"]
    assert (
        'user.email must be stored in lower case (check constraint "user_email_lower_trimmed")'
        in mixed_case["message"]
    )
    assert "email.trim().toLowerCase()" in mixed_case["meta"]["driverAdapterError"]["cause"]["hint"]
    assert "Failing row" not in json.dumps(mixed_case)  # no row (password hash) in the error
    assert (
        'user.role must be viewer, editor or admin (check constraint "user_role_valid")'
        in staff_role["message"]
    )
    assert "viewer reads" in staff_role["meta"]["driverAdapterError"]["cause"]["hint"]
    assert not await User.filter(email__in=["grace@example.com", "lin@example.com"]).exists()

    # The Node app's bcrypt hash, written through Prisma, signs in through the package.
    user = await authenticate("Ada@Example.com", "password123")
    assert user is not None and user.pk == out["userId"]
    assert str((await User.get(pk=user.pk)).password_hash).startswith("$argon2id$")


def test_the_script_type_checks_against_the_generated_client(client_dir: Path) -> None:
    """The generated client's types carry the seed's names: a misspelt field is an error."""
    wrong = SCRIPT.read_text().replace("session.totalMessages", "session.messageCount")
    (client_dir / "wrong.mjs").write_text(wrong)
    flags = ["--noEmit", "--allowJs", "--checkJs", "--strict", "--skipLibCheck"]
    flags += ["--target", "es2022", "--module", "nodenext", "--moduleResolution", "nodenext"]
    result = node([str(TSC), *flags, SCRIPT.name, "wrong.mjs"], client_dir)
    errors = re.findall(r"^([\w.-]+)\(\d+,\d+\): error (TS\d+)", result.stdout, re.M)
    assert errors == [("wrong.mjs", "TS2339")], result.stdout


async def test_schema_maps_every_column_of_the_exposed_tables(raw: asyncpg.Connection) -> None:
    """Every column coach-db's migrations made (and any added later) is a field, by its name."""
    schema = render()
    blocks = dict(re.findall(r"^model (\w+) \{\n(.*?)^\}", schema, re.M | re.S))
    assert set(blocks) == {"User", "Scenario", "ScenarioVersion", "ConversationSession", "Message"}
    assert not set(OMITTED) & set(blocks)
    for model, block in blocks.items():
        table = re.search(r'@@map\("(\w+)"\)', block)
        assert table is not None
        columns = await raw.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = $1",
            table.group(1),
        )
        assert columns
        for row in columns:
            column = row["column_name"]
            field = camel(column)
            mapped = f'@map("{column}")' if field != column else ""
            assert re.search(rf"^  {field}\s+\S+.*{re.escape(mapped)}", block, re.M), (
                model,
                column,
            )


def test_schema_uses_the_seed_names_and_database_defaults() -> None:
    """Compared with runs of spaces folded: the column alignment moves when a model gains a
    longer field name."""
    schema = re.sub(r" +", " ", render())
    for line in [
        'passwordHash       String?               @map("password_hash") @db.VarChar(255)',
        "sessions           ConversationSession[]",
        'totalMessages     Int             @default(0) @map("total_messages")',
        "scenario          Scenario        @relation(fields: [scenarioId], references: [id], "
        "onDelete: Restrict, onUpdate: NoAction)",
        'scenarioVersionId Int             @default(dbgenerated()) @map("scenario_version_id")',
        "messages          Message[]",
        'createdAt           DateTime              @default(now()) @map("created_at")',
        "metadata  Json                @default(dbgenerated(\"'{}'::jsonb\"))",
        "id        BigInt              @id @default(autoincrement())",
        "@@unique([scenarioId, version])",
        '@@map("conversation_session")',
    ]:
        line = re.sub(r" +", " ", line)
        assert line in schema, line
    assert "/// One of: user, partner, coach (the database refuses any other value)." in schema


def test_regenerating_keeps_the_services_own_generator_block(tmp_path: Path) -> None:
    generator = 'generator client {\n  provider = "prisma-client"\n  output   = "../src/db"\n}'
    (tmp_path / "schema.prisma").write_text(generator + "\n\nmodel Old {\n  id Int @id\n}\n")
    assert coach_db_cmd("generate", "--prisma", str(tmp_path)).returncode == 0
    text = (tmp_path / "schema.prisma").read_text()
    assert generator in text and "model Old" not in text and "model User {" in text


def test_check_tells_when_a_kept_schema_prisma_no_longer_matches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "prisma").mkdir()
    schema = tmp_path / "prisma" / "schema.prisma"
    schema.write_text(render())
    (tmp_path / "pyproject.toml").write_text(
        textwrap.dedent("""\
            [tool.coach-db]
            prisma_schema = "prisma/schema.prisma"
        """)
    )
    monkeypatch.chdir(tmp_path)  # where `coach-db check` looks for pyproject.toml
    assert configured_schema() == schema
    assert prisma_drift() == []

    without_audio = re.sub(r"\n  audioUrl +String\? +@map\(\"audio_url\"\)", "", render())
    assert without_audio != render()
    schema.write_text(without_audio)
    assert prisma_drift() == [schema]
    stale = coach_db_cmd("check", "--prisma", str(schema))  # the option, from anywhere
    assert stale.returncode == 1
    assert "schema.prisma is not what `coach-db generate --prisma" in stale.stdout
