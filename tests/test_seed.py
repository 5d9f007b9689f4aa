"""`python -m seed`: idempotent base data, passwords, demo generator, failure messages."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pwdlib import PasswordHash
from rich.console import Console
from typer.testing import CliRunner

from coach_db import passwords
from coach_db.apps.seed import Action, SeedError, SeedResult, data, demo, seed
from coach_db.apps.seed.cli import print_summary
from coach_db.apps.seed.demo import generate
from coach_db.db import TABLES
from coach_db.models import SLUG_PATTERN
from coach_db.passwords import verify_password
from coach_db.tools.cli import app
from tests.conftest import ROOT
from tests.factories import cheap_argon2, make_message, make_session, make_user
from tests.processes import subprocess_env

# A day the demo is pinned to (--today / SEED_TODAY) where a test compares exact rows.
PINNED_DAY = date(2026, 3, 14)
ADMIN = data.ADMIN_USER["email"]
TEST = data.TEST_USER["email"]
DEMO_CONTENT = """
    SELECT u.email, sc.slug, s.status, s.started_at, s.ended_at, s.total_messages,
           s.duration_seconds,
           (SELECT json_agg(json_build_array(m.role, m.content, m.timestamp, m.metadata)
                            ORDER BY m.id)
              FROM message m WHERE m.session_id = s.id) AS messages
      FROM conversation_session s
      JOIN "user" u ON u.id = s.user_id
      JOIN scenario sc ON sc.id = s.scenario_id
     ORDER BY s.started_at, s.id
"""


TRUNCATE = "TRUNCATE " + ", ".join(f'"{table}"' for table in TABLES)
REAL_HASHER = passwords._hasher
# The same algorithm at its lowest cost: like Django's test settings, this keeps the many
# seed() runs fast. The production cost is used by the one test that checks the hash itself.
FAST_HASHER = PasswordHash((cheap_argon2(),))


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No SEED_ADMIN_PASSWORD from the environment or a developer's .env; the fast hasher."""
    monkeypatch.delenv("SEED_ADMIN_PASSWORD", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(passwords, "_hasher", FAST_HASHER)


async def snapshot(raw: asyncpg.Connection) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, every column: what "nothing changed" is checked against."""
    return {
        table: [dict(row) for row in await raw.fetch(f'SELECT * FROM "{table}" ORDER BY id')]
        for table in TABLES
    }


async def password_hash(raw: asyncpg.Connection, email: str) -> str | None:
    value: str | None = await raw.fetchval(
        'SELECT password_hash FROM "user" WHERE email = $1', email
    )
    return value


def actions(result: SeedResult) -> dict[str, Action]:
    return {change.key: change.action for change in result.changes}


# --- base data -----------------------------------------------------------------------------


async def test_first_run_creates_test_user_admin_and_both_scenarios(
    raw: asyncpg.Connection,
) -> None:
    result = await seed()
    assert actions(result) == {
        TEST: Action.CREATED,
        ADMIN: Action.CREATED,
        "angry-uncle-thanksgiving": Action.CREATED,
        "difficult-coworker": Action.CREATED,
    }
    users = {r["email"]: r for r in await raw.fetch('SELECT * FROM "user"')}
    assert users[TEST]["is_staff"] is False
    assert users[ADMIN]["is_staff"] is True
    scenarios = {r["slug"]: dict(r) for r in await raw.fetch("SELECT * FROM scenario")}
    for expected in data.SCENARIOS:
        row = scenarios[expected["slug"]]
        assert {key: row[key] for key in expected} == expected


async def test_test_user_password_verifies_and_is_argon2id(
    raw: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(passwords, "_hasher", REAL_HASHER)
    await seed()
    stored = await password_hash(raw, TEST)
    assert stored is not None and stored.startswith("$argon2id$")
    assert verify_password(data.TEST_USER_PASSWORD, stored)
    assert not verify_password("password124", stored)


async def test_second_run_changes_no_row_and_reports_everything_unchanged(
    raw: asyncpg.Connection,
) -> None:
    await seed()
    before = await snapshot(raw)
    result = await seed()
    assert await snapshot(raw) == before  # same ids, same values, same updated_at
    assert set(actions(result).values()) == {Action.UNCHANGED}
    assert result.generated_admin_password is None


async def test_changed_scenario_prompt_in_data_updates_only_that_row(
    raw: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed()
    before = {r["slug"]: dict(r) for r in await raw.fetch("SELECT * FROM scenario")}
    edited = data.ANGRY_UNCLE | {"coach_system_prompt": "A new rubric.\n\nAnd its format."}
    monkeypatch.setattr(data, "SCENARIOS", (edited, data.DIFFICULT_COWORKER))

    result = await seed()

    after = {r["slug"]: dict(r) for r in await raw.fetch("SELECT * FROM scenario")}
    uncle = [c for c in result.changes if c.key == "angry-uncle-thanksgiving"]
    assert [(c.action, c.fields) for c in uncle] == [(Action.UPDATED, ("coach_system_prompt",))]
    assert (
        after["angry-uncle-thanksgiving"]["coach_system_prompt"]
        == "A new rubric.\n\nAnd its format."
    )
    assert after["angry-uncle-thanksgiving"]["id"] == before["angry-uncle-thanksgiving"]["id"]
    assert (
        after["angry-uncle-thanksgiving"]["updated_at"]
        > before["angry-uncle-thanksgiving"]["updated_at"]
    )
    assert after["difficult-coworker"] == before["difficult-coworker"]


async def test_existing_user_is_matched_by_email_case_insensitively(
    raw: asyncpg.Connection,
) -> None:
    # Another service cannot store it in mixed case (user_email_lower_trimmed) ...
    with pytest.raises(asyncpg.CheckViolationError, match="user_email_lower_trimmed"):
        await raw.execute(
            """INSERT INTO "user" (email, username) VALUES ('Test@Example.COM', 'T')"""
        )
    # ... so it wrote it in lower case, with a password someone changed.
    await raw.execute(
        """INSERT INTO "user" (email, username, password_hash)
           VALUES ('test@example.com', 'T', 'x')"""
    )
    result = await seed()
    rows = await raw.fetch("""SELECT * FROM "user" WHERE lower(email) = 'test@example.com'""")
    assert len(rows) == 1
    assert actions(result)[TEST] is Action.UPDATED
    assert verify_password(data.TEST_USER_PASSWORD, rows[0]["password_hash"])
    assert rows[0]["username"] == data.TEST_USER["username"]


async def test_seed_leaves_other_users_sessions_and_messages_alone(
    raw: asyncpg.Connection,
) -> None:
    session = await make_session(user=await make_user(email="someone@example.com"))
    await make_message(session=session)
    before = await snapshot(raw)
    await seed(demo=3)
    after = await snapshot(raw)
    for table in TABLES:
        kept = {row["id"]: row for row in after[table]}
        assert all(kept.get(row["id"]) == row for row in before[table]), table


# --- the admin password --------------------------------------------------------------------


async def test_generated_admin_password_is_new_for_every_fresh_database(
    raw: asyncpg.Connection,
) -> None:
    generated = []
    for _ in range(2):
        await raw.execute(TRUNCATE)
        result = await seed()
        assert result.generated_admin_password is not None
        assert verify_password(result.generated_admin_password, await password_hash(raw, ADMIN))
        generated.append(result.generated_admin_password)
    assert generated[0] != generated[1]
    # At least 128 random bits: 22 or more characters of the URL-safe base64 alphabet.
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22,}", password) for password in generated)


async def test_rerun_without_seed_admin_password_keeps_the_admin_password(
    raw: asyncpg.Connection,
) -> None:
    first = await seed()
    stored = await password_hash(raw, ADMIN)
    second = await seed()
    assert second.generated_admin_password is None
    assert await password_hash(raw, ADMIN) == stored
    assert first.generated_admin_password is not None
    assert verify_password(first.generated_admin_password, stored)


async def test_seed_admin_password_sets_then_resets_the_admin_password(
    raw: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed()  # an admin with a generated password
    monkeypatch.setenv("SEED_ADMIN_PASSWORD", "correct horse battery")
    result = await seed()
    assert result.generated_admin_password is None
    assert actions(result)[ADMIN] is Action.UPDATED
    assert verify_password("correct horse battery", await password_hash(raw, ADMIN))
    assert actions(await seed())[ADMIN] is Action.UNCHANGED  # same value: no rewrite


async def test_too_short_seed_admin_password_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEED_ADMIN_PASSWORD", "short")
    with pytest.raises(SeedError, match="SEED_ADMIN_PASSWORD is too short"):
        await seed()


# --- data.py -------------------------------------------------------------------------------


def test_scenarios_are_complete_prompts_not_placeholders() -> None:
    for scenario in data.SCENARIOS:
        assert re.fullmatch(SLUG_PATTERN, scenario["slug"])
        for key in ("partner_system_prompt", "coach_system_prompt"):
            # Several sections of real text: background, goals, triggers, rubric, format.
            assert scenario[key].count("\n## ") >= 4 and len(scenario[key]) > 2500, key
        assert scenario["partner_model"].startswith("claude-")
        assert scenario["coach_model"].startswith("claude-")


def test_every_phrase_tag_has_its_coach_feedback() -> None:
    for slug, bank in data.PHRASES.items():
        assert slug in {s["slug"] for s in data.SCENARIOS}
        skills = set(bank["skills"])
        assert {tag for tag, _ in bank["user_skilled"]} == skills
        assert set(bank["coach_praise"]) == set(bank["coach_why"]) == set(bank["coach_practise"])
        assert set(bank["coach_praise"]) == skills
        assert {tag for tag, _ in bank["user_slips"]} == set(bank["coach_nudge"])


# --- demo ----------------------------------------------------------------------------------


async def test_demo_counters_and_timestamps_match_the_message_rows(
    raw: asyncpg.Connection,
) -> None:
    result = await seed(demo=30, random_seed=3)
    assert result.demo_sessions == 30
    assert result.demo_messages == await raw.fetchval("SELECT count(*) FROM message")
    counts = await raw.fetch(
        """SELECT s.id, s.total_messages, count(m.id) AS actual
             FROM conversation_session s LEFT JOIN message m ON m.session_id = s.id
            GROUP BY s.id"""
    )
    assert len(counts) == 30
    assert all(row["total_messages"] == row["actual"] > 0 for row in counts)
    statuses = dict(
        await raw.fetch("SELECT status, count(*) FROM conversation_session GROUP BY status")
    )
    assert set(statuses) == {"completed", "abandoned", "active"}
    inconsistent = await raw.fetchval(
        """SELECT count(*) FROM conversation_session
            WHERE CASE WHEN status = 'active' THEN ended_at IS NOT NULL
                                                   OR duration_seconds IS NOT NULL
                       ELSE ended_at IS NULL OR ended_at < started_at
                            OR duration_seconds <> extract(epoch FROM ended_at - started_at)
                  END"""
    )
    assert inconsistent == 0
    # Strictly increasing inside the session, and inside [started_at, ended_at].
    out_of_order = await raw.fetchval(
        """SELECT count(*) FROM (
               SELECT m.timestamp, s.started_at, s.ended_at,
                      lag(m.timestamp) OVER (PARTITION BY m.session_id ORDER BY m.id) AS prev
                 FROM message m JOIN conversation_session s ON s.id = m.session_id) t
            WHERE timestamp <= coalesce(prev, started_at)
               OR timestamp > coalesce(ended_at, 'infinity')"""
    )
    assert out_of_order == 0


async def test_demo_turns_alternate_and_model_messages_carry_metadata(
    raw: asyncpg.Connection,
) -> None:
    await seed(demo=10, random_seed=4)
    rows = await raw.fetch(
        """SELECT m.session_id, m.role, m.metadata, sc.partner_model, sc.coach_model
             FROM message m
             JOIN conversation_session s ON s.id = m.session_id
             JOIN scenario sc ON sc.id = s.scenario_id
            ORDER BY m.session_id, m.id"""
    )
    turns: dict[int, list[str]] = {}
    for row in rows:
        metadata = json.loads(row["metadata"])
        if row["role"] == "user":
            assert metadata == {}
        else:
            assert set(metadata) == {"tokens_in", "tokens_out", "latency_ms", "model"}
            model = row["partner_model"] if row["role"] == "partner" else row["coach_model"]
            assert metadata["model"] == model
            assert metadata["tokens_in"] > 0 and metadata["tokens_out"] > 0
        if row["role"] != "coach":
            turns.setdefault(row["session_id"], []).append(row["role"])
    for roles in turns.values():  # the partner opens, then user and partner take turns
        assert roles[::2] == ["partner"] * len(roles[::2])
        assert roles[1::2] == ["user"] * len(roles[1::2])
    assert any(row["role"] == "coach" for row in rows)


async def test_same_random_seed_gives_identical_demo_content_and_rerun_replaces_it(
    raw: asyncpg.Connection,
) -> None:
    # The day pinned: unpinned, the times follow the clock's second, and the two runs straddled
    # one whenever the first took long enough (a flaky failure on a loaded machine).
    first = await seed(demo=8, random_seed=5, today=PINNED_DAY)
    content = await raw.fetch(DEMO_CONTENT)
    again = await seed(demo=8, random_seed=5, today=PINNED_DAY)
    assert await raw.fetch(DEMO_CONTENT) == content  # replaced, not added: still 8
    assert again.bulk["demo session"][Action.DELETED] == 8
    assert again.bulk["demo message"][Action.DELETED] == first.demo_messages
    await seed(demo=8, random_seed=6, today=PINNED_DAY)
    assert await raw.fetch(DEMO_CONTENT) != content


async def test_run_without_demo_keeps_the_demo_conversations(raw: asyncpg.Connection) -> None:
    await seed(demo=3)
    before = await snapshot(raw)
    await seed()
    assert await snapshot(raw) == before


async def test_demo_written_in_several_rounds_is_exactly_what_the_generator_made(
    raw: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rounds are generated in a thread while the previous one is copied: nothing lost or mixed."""
    monkeypatch.setattr(demo, "CHUNK", 7)  # 30 conversations: 5 rounds, the last one short
    result = await seed(demo=30, random_seed=9, today=PINNED_DAY)
    rows = await raw.fetch(
        """SELECT u.email, sc.slug, s.status, s.started_at, s.ended_at, s.duration_seconds,
                  s.total_messages,
                  array_agg(m.role ORDER BY m.id) AS roles,
                  array_agg(m.content ORDER BY m.id) AS contents,
                  array_agg(m.timestamp ORDER BY m.id) AS timestamps,
                  array_agg(m.metadata ORDER BY m.id) AS metadata
             FROM conversation_session s
             JOIN "user" u ON u.id = s.user_id
             JOIN scenario sc ON sc.id = s.scenario_id
             JOIN message m ON m.session_id = s.id
            GROUP BY s.id, u.email, sc.slug ORDER BY s.id"""
    )
    expected = [
        (
            demo.demo_email(s.user),
            s.scenario,
            s.status.value,
            s.started_at,
            s.ended_at,
            s.duration_seconds,
            len(s.messages),
            [m.role.value for m in s.messages],
            [m.content for m in s.messages],
            [m.timestamp for m in s.messages],
            [m.metadata for m in s.messages],
        )
        for s in generate(30, 9, demo.demo_now(PINNED_DAY))
    ]
    actual = [(*row[:10], [json.loads(m) for m in row["metadata"]]) for row in rows]
    assert actual == expected
    assert result.demo_messages == sum(len(s.messages) for s in generate(30, 9, demo.demo_now()))


async def test_demo_that_fails_in_a_later_round_writes_nothing(
    raw: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = demo.generate

    def failing(n: int, random_seed: int, now: datetime) -> Iterator[demo.DemoSession]:
        for i, session in enumerate(real(n, random_seed, now)):
            if i == 12:
                raise RuntimeError("generator broke")
            yield session

    await seed(demo=3)
    before = await snapshot(raw)
    monkeypatch.setattr(demo, "CHUNK", 5)  # rounds 1 and 2 are copied before round 3 fails
    monkeypatch.setattr(demo, "generate", failing)
    with pytest.raises(RuntimeError, match="generator broke"):
        await seed(demo=30)
    assert await snapshot(raw) == before


def test_generator_is_a_pure_function_of_count_random_seed_and_now() -> None:
    now = demo.demo_now(PINNED_DAY)
    assert list(generate(5, 11, now)) == list(generate(5, 11, now))
    assert list(generate(5, 11, now)) != list(generate(5, 12, now))
    # Another day moves the times only: the conversations themselves stay the same.
    later = list(generate(5, 11, now + timedelta(days=400)))
    assert [[m.content for m in s.messages] for s in later] == [
        [m.content for m in s.messages] for s in generate(5, 11, now)
    ]


async def test_demo_ends_at_the_time_of_the_run_so_the_30_day_chart_is_alive(
    raw: asyncpg.Connection,
) -> None:
    """A fresh studio's dashboard charts the last 30 days: the demo must be in them."""
    await seed(demo=20)
    newest, recent, total = await raw.fetchrow(
        "SELECT max(started_at), "
        "count(*) FILTER (WHERE started_at > now() - interval '30 days'), count(*) "
        "FROM conversation_session"
    )
    latest = await raw.fetchval("SELECT max(timestamp) FROM message")
    now = await raw.fetchval("SELECT now()")
    assert now - timedelta(days=3) < newest <= now
    assert latest <= now + timedelta(minutes=1), "no demo message is in the future"
    assert recent >= total // 3, (recent, total)


async def test_today_pins_the_demo_dates_so_rows_are_the_same_on_any_day(
    raw: asyncpg.Connection, tmp_path: Path, database_url: str
) -> None:
    result = await run_cli(
        "--demo", "5", "--today", "2026-03-14", url=database_url, tmp_path=tmp_path
    )
    assert result.returncode == 0, result.stderr
    rows = await raw.fetch("SELECT started_at FROM conversation_session ORDER BY id")
    pinned_now = datetime(2026, 3, 14, 18, tzinfo=rows[0]["started_at"].tzinfo)
    expected = [s.started_at for s in generate(5, 0, demo.demo_now(PINNED_DAY))]
    assert [row["started_at"] for row in rows] == expected
    assert all(pinned_now - timedelta(days=61) < t <= pinned_now for t in expected)
    bad = await run_cli("--demo", "5", "--today", "14/03/2026", url=database_url, tmp_path=tmp_path)
    assert bad.returncode == 2 and "not a date (YYYY-MM-DD)" in bad.stderr, bad.stderr


async def test_demo_users_have_no_password_and_no_staff_rights(raw: asyncpg.Connection) -> None:
    result = await seed(demo=2)
    demo = await raw.fetch("""SELECT * FROM "user" WHERE email LIKE 'demo%@example.com'""")
    assert len(demo) == len(data.DEMO_USER_NAMES)
    assert all(row["password_hash"] is None and not row["is_staff"] for row in demo)
    assert (await seed(demo=2)).counts()["demo user"] == {Action.UNCHANGED: len(demo)}
    assert result.counts()["demo user"] == {Action.CREATED: len(demo)}


# --- the command line ----------------------------------------------------------------------


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


async def run_cli(*args: str, url: str | None, tmp_path: Path) -> Run:
    """The real command in a clean environment (and a cwd without .env)."""
    env = subprocess_env(url, home=tmp_path / "home", PYTHONPATH=str(ROOT))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "seed",
        *args,
        cwd=tmp_path,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return Run(process.returncode, stdout.decode(), stderr.decode())


def assert_one_line_failure(result: Run, *expected: str) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout == ""
    message = result.stderr.strip()
    assert "\n" not in message and "Traceback" not in message, message
    for text in expected:
        assert text in message
    return message


FAILURES = {
    "no url": None,
    "unreachable": "postgres://u:secret@127.0.0.1:1/x",
    "no migrations": "<empty database>",
}


@pytest.fixture(scope="module")
async def failed_runs(
    create_database: Callable[[], Awaitable[str]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Run]:
    """The failing commands, started together: each costs a second of interpreter start-up."""
    empty = await create_database()
    cwd = tmp_path_factory.mktemp("cli")
    runs = [
        run_cli(url=empty if url == "<empty database>" else url, tmp_path=cwd)
        for url in FAILURES.values()
    ]
    return dict(zip(FAILURES, await asyncio.gather(*runs), strict=True))


def test_cli_without_database_url_fails_in_one_line(failed_runs: dict[str, Run]) -> None:
    assert_one_line_failure(failed_runs["no url"], "DATABASE_URL is not set")


def test_coach_db_seed_runs_the_same_command(monkeypatch: pytest.MonkeyPatch) -> None:
    # In-process is safe here: the missing URL stops it before any connection is made.
    monkeypatch.delenv("DATABASE_URL", raising=False)
    result = CliRunner().invoke(app, ["seed", "--demo", "--random-seed", "3"])
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("coach-db seed: DATABASE_URL is not set")


def test_cli_with_unreachable_server_fails_without_showing_the_password(
    failed_runs: dict[str, Run],
) -> None:
    message = assert_one_line_failure(
        failed_runs["unreachable"], "Can't reach the database server at 127.0.0.1:1"
    )
    assert "secret" not in message


def test_cli_on_database_without_migrations_says_to_run_coach_db_deploy(
    failed_runs: dict[str, Run],
) -> None:
    assert_one_line_failure(
        failed_runs["no migrations"],
        "migrations are not applied",
        "apply the migrations with `coach-db deploy`",
    )


async def test_cli_without_a_terminal_writes_the_generated_password_to_a_private_file(
    database_url: str, raw: asyncpg.Connection, tmp_path: Path
) -> None:
    """In a container the output is a log: the password goes to a 0600 file, not the log."""
    result = await run_cli("--demo", url=database_url, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Seed summary" in result.stdout
    assert "20 conversations" in result.stdout  # --demo alone means 20
    path = tmp_path / "home" / "admin-password.txt"
    assert f"Generated a password for admin@example.com: it is in {path}" in result.stdout
    assert path.stat().st_mode & 0o777 == 0o600
    password = path.read_text().strip()
    assert verify_password(password, await password_hash(raw, ADMIN))
    assert password not in result.stdout + result.stderr


async def test_summary_counts_rows_per_kind_and_shows_the_password_only_once() -> None:
    first, second = Console(record=True, width=120), Console(record=True, width=120)
    result = await seed(demo=2)
    print_summary(result, first)
    print_summary(await seed(), second)
    shown, again = first.export_text(), second.export_text()
    assert result.generated_admin_password is not None
    assert result.generated_admin_password in shown
    assert "Generated a password" not in again
    # Columns: created, updated, unchanged, deleted ("·" for none).
    assert re.search(r"users\W+·\W+·\W+2\W+·", again), again
    assert re.search(r"demo sessions\W+2\W+·\W+·\W+·", shown), shown


async def test_two_seeds_started_together_both_succeed_without_duplicates(
    create_migrated_database: Callable[[], Awaitable[str]], tmp_path: Path
) -> None:
    """Two containers or terminals seeding at once take turns (advisory lock)."""
    url = await create_migrated_database()
    runs = await asyncio.gather(*(run_cli(url=url, tmp_path=tmp_path) for _ in range(2)))
    assert [r.returncode for r in runs] == [0, 0], [r.stderr for r in runs]
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval('SELECT count(*) FROM "user"') == 2
        assert await conn.fetchval("SELECT count(*) FROM scenario") == len(data.SCENARIOS)
    finally:
        await conn.close()
