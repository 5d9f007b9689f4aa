"""Issue 13: the append-only audit trail, a person's data (export, erasure), research export."""

from __future__ import annotations

import asyncio
import io
import json
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from coach_db import (
    ConversationSession,
    Message,
    MessageRole,
    Scenario,
    SessionStatus,
    User,
    add_message,
    end_session,
    privacy,
)
from coach_db.errors import CoachDbError
from tests.factories import backfill, make_message, make_scenario, make_session, make_user
from tests.processes import coach_db_cmd


async def test_audit_rows_cannot_be_updated_deleted_or_truncated(raw: asyncpg.Connection) -> None:
    """Migration 7's triggers refuse changes to the trail, whoever writes (raw SQL here)."""
    event = await raw.fetchval(
        "INSERT INTO audit_event (action, model, row_id, changes)"
        " VALUES ('update', 'user', 1, '{\"username\": [\"a\", \"b\"]}') RETURNING id"
    )
    receipt = await raw.fetchval(
        "INSERT INTO erasure_receipt (email_hash, counts, erased_by)"
        " VALUES ('x', '{}', 'cli') RETURNING id"
    )
    refused = [
        ("audit_event_append_only", f"UPDATE audit_event SET changes = NULL WHERE id = {event}"),
        ("audit_event_append_only", f"DELETE FROM audit_event WHERE id = {event}"),
        ("audit_event_append_only", "TRUNCATE audit_event"),
        (
            "erasure_receipt_append_only",
            f"UPDATE erasure_receipt SET counts = '{{}}' WHERE id = {receipt}",
        ),
        ("erasure_receipt_append_only", f"DELETE FROM erasure_receipt WHERE id = {receipt}"),
        ("erasure_receipt_append_only", "TRUNCATE erasure_receipt"),
        ("erasure_salt_append_only", "UPDATE erasure_salt SET salt = 'known'"),
        ("erasure_salt_append_only", "DELETE FROM erasure_salt"),
    ]
    for constraint, statement in refused:
        with pytest.raises(asyncpg.RestrictViolationError) as caught:
            await raw.execute(statement)
        assert caught.value.constraint_name == constraint, statement
    assert await raw.fetchval("SELECT count(*) FROM audit_event") == 1
    assert await raw.fetchval("SELECT changes::text FROM audit_event") == '{"username": ["a", "b"]}'


async def test_only_the_owner_declaring_a_redaction_may_change_personal_columns_and_nothing_else(
    raw: asyncpg.Connection,
) -> None:
    """Migration 8: erase_person() runs as the owner and declares coach_db.redacting; a setting
    alone (migration 7's coach_db.erasure) is no permission any more. (The runtime role's side:
    tests/test_audit_forgery.py.)"""
    event = await raw.fetchval(
        "INSERT INTO audit_event (action, model, row_id, actor_email, changes)"
        " VALUES ('view', 'conversationsession', 7, 'a@b.co', '{}') RETURNING id"
    )
    with pytest.raises(asyncpg.RestrictViolationError):
        async with raw.transaction():
            await raw.execute("SET LOCAL coach_db.erasure = 'on'")
            await raw.execute(f"UPDATE audit_event SET actor_email = NULL WHERE id = {event}")
    async with raw.transaction():
        await raw.execute("SET LOCAL coach_db.redacting = 'on'")
        await raw.execute(f"UPDATE audit_event SET actor_email = NULL WHERE id = {event}")
        for statement in (
            f"UPDATE audit_event SET action = 'create' WHERE id = {event}",
            f"UPDATE audit_event SET actor_id = 5 WHERE id = {event}",
            f"UPDATE audit_event SET created_at = now() - interval '1 day' WHERE id = {event}",
            f"UPDATE audit_event SET chain_hash = repeat('1', 64) WHERE id = {event}",
            f"DELETE FROM audit_event WHERE id = {event}",
        ):
            with pytest.raises(asyncpg.RestrictViolationError):
                async with raw.transaction():
                    await raw.execute(statement)
    assert await raw.fetchval("SELECT actor_email FROM audit_event") is None
    # Only for that transaction: LOCAL.
    with pytest.raises(asyncpg.RestrictViolationError):
        await raw.execute(f"UPDATE audit_event SET row_id = NULL WHERE id = {event}")


# --- export-user ------------------------------------------------------------------------------


async def _person_with_history() -> tuple[User, list[ConversationSession]]:
    user = await make_user(password_hash="argon2-hash-never-exported")
    scenario = await make_scenario()
    first = await make_session(user=user, scenario=scenario)
    for text in ("I need to talk about Thanksgiving.", "Call me on +44 20 7946 0958"):
        await add_message(first, MessageRole.USER, text)
    second = await make_session(user=user)
    return user, [first, second]


async def test_export_user_is_one_document_valid_against_the_shipped_schema(
    database_url: str,
) -> None:
    user, sessions = await _person_with_history()
    other = await make_message()  # someone else's: never in the export
    buffer = io.StringIO()
    counts = await privacy.export_user(database_url, user.email.upper(), buffer)
    document = json.loads(buffer.getvalue())
    schema = json.loads(privacy.SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    Draft202012Validator(schema, format_checker=FormatChecker()).validate(document)
    assert counts == {"sessions": 2, "messages": 2, "audit_events": 0}
    assert document["account"]["email"] == user.email
    assert "password" not in buffer.getvalue() and "argon2" not in buffer.getvalue()
    assert [s["id"] for s in document["sessions"]] == [s.id for s in sessions]
    assert [m["content"] for m in document["sessions"][0]["messages"]] == [
        "I need to talk about Thanksgiving.",
        "Call me on +44 20 7946 0958",
    ]
    assert document["sessions"][1]["messages"] == []
    assert {s["slug"] for s in document["scenarios_used"]} == {
        (await s.scenario).slug for s in sessions
    }
    assert other.content not in buffer.getvalue()
    # The prompt version each session ran with (migration 6), and that version's prompts.
    first_scenario = await sessions[0].scenario
    await Scenario.filter(pk=first_scenario.pk).update(coach_system_prompt="A newer prompt.")
    used = {(v["scenario_id"], v["version"]): v for v in document["scenarios_used"]}
    assert [s["scenario_version"] for s in document["sessions"]] == [1, 1]
    assert used[(first_scenario.pk, 1)]["coach_system_prompt"] == first_scenario.coach_system_prompt
    later = io.StringIO()
    await privacy.export_user(database_url, user.email, later)
    again = json.loads(later.getvalue())
    assert again["scenarios_used"] == document["scenarios_used"]  # what it ran with, not now


async def test_export_user_of_an_unknown_e_mail_is_a_clear_error(database_url: str) -> None:
    with pytest.raises(privacy.UserNotFound, match=r"nobody@example\.com"):
        await privacy.export_user(database_url, "nobody@example.com", io.StringIO())


# --- erase-user -------------------------------------------------------------------------------


async def traces(raw: asyncpg.Connection, user_id: int, needles: list[str]) -> list[str]:
    """Every column of every table holding one of the needles (text, varchar, JSON), and every
    column that points at the user: foreign keys to "user", and the audit's person columns."""
    found = []
    columns = await raw.fetch(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = 'public'"
        " AND data_type IN ('text', 'character varying', 'json', 'jsonb', 'character')"
    )
    assert {(c["table_name"], c["column_name"]) for c in columns} >= {
        ("user", "email"),
        ("message", "content"),
        ("audit_event", "changes"),
        ("erasure_receipt", "erased_by"),
    }
    for column in columns:
        for needle in needles:
            hits = await raw.fetchval(
                f'SELECT count(*) FROM "{column["table_name"]}"'
                f' WHERE strpos(lower("{column["column_name"]}"::text), lower($1)) > 0',
                needle,
            )
            if hits:
                found.append(f"{column['table_name']}.{column['column_name']} has {needle!r}")
    references = await raw.fetch(
        """SELECT kcu.table_name, kcu.column_name
             FROM information_schema.referential_constraints rc
             JOIN information_schema.key_column_usage kcu
               ON kcu.constraint_name = rc.constraint_name
             JOIN information_schema.constraint_column_usage ccu
               ON ccu.constraint_name = rc.unique_constraint_name
            WHERE ccu.table_name = 'user'"""
    )
    assert ("conversation_session", "user_id") in {tuple(r) for r in references}
    person_columns = [(r["table_name"], r["column_name"]) for r in references]
    # audit_event.actor_id is not here: an erased staff member stays the pseudonymous actor
    # #id of what they did (migration 8), their e-mail goes (tests/test_audit_forgery.py).
    person_columns += [("audit_event", "subject_id"), ("user", "id")]
    for table, column in person_columns:
        if await raw.fetchval(f'SELECT count(*) FROM "{table}" WHERE "{column}" = $1', user_id):
            found.append(f"{table}.{column} = {user_id}")
    return found


async def test_erasure_leaves_no_trace_of_the_person_in_any_table(
    database_url: str, raw: asyncpg.Connection
) -> None:
    user, sessions = await _person_with_history()
    secret = f"my secret {uuid.uuid4().hex}"
    await add_message(sessions[1], MessageRole.USER, secret)
    keeper, _ = await _person_with_history()
    # The trail about them, by them (they are staff too), and naming them elsewhere.
    await raw.execute(
        "INSERT INTO audit_event (actor_id, actor_email, action, model, row_id, subject_id,"
        " changes) VALUES"
        " (NULL, 'boss@example.com', 'update', 'user', $1::int, $1::int, $3),"
        " ($1::int, $2, 'view', 'conversationsession', 99, $4, NULL),"
        " (NULL, 'boss@example.com', 'update', 'message', 5, $4, $5)",
        user.id,
        user.email,
        json.dumps({"email": ["old@example.com", user.email], "password": "changed"}),
        keeper.id,
        json.dumps({"email": [user.email, "new@example.com"]}),
    )
    assert await traces(raw, user.id, [user.email, secret])  # the search finds them before

    planned = await privacy.erasure_counts(database_url, user.email)
    assert planned.counts == {"user": 1, "sessions": 2, "messages": 3, "audit_events_redacted": 3}
    done = await privacy.erase_user(database_url, user.email, "test")

    assert await traces(raw, user.id, [user.email, secret]) == []
    assert done.counts == planned.counts
    receipt = await raw.fetchrow("SELECT * FROM erasure_receipt WHERE id = $1", done.receipt_id)
    assert json.loads(receipt["counts"]) == planned.counts
    assert receipt["erased_by"] == "test"
    assert receipt["email_hash_key"] == "external key"
    # The trail still says what was done and when, without the values.
    changes = await raw.fetchval(
        "SELECT changes::text FROM audit_event WHERE model = 'user' AND action = 'update'"
    )
    assert json.loads(changes) == {"email": "[erased]", "password": "[erased]"}
    erase = await raw.fetchrow("SELECT * FROM audit_event WHERE action = 'erase'")
    assert erase["row_id"] == user.id and erase["subject_id"] is None
    # Someone else's data is untouched.
    assert await User.filter(id=keeper.id).exists()
    assert (
        await raw.fetchval(
            "SELECT count(*) FROM message m JOIN conversation_session s ON s.id = m.session_id"
            " WHERE s.user_id = $1",
            keeper.id,
        )
        == 2
    )
    # The receipt is found by the e-mail (its salted hash), which it does not hold.
    receipts = await privacy.list_erasures(database_url, user.email.upper())
    assert [r["id"] for r in receipts] == [done.receipt_id]
    assert await privacy.list_erasures(database_url, keeper.email) == []


# audit_names(changes, email): the e-mail as a whole string value at any depth, any case.
NAMES = [
    ({"email": "Ann@Example.com"}, True),
    ({"email": ["old@example.com", {"deep": [["ann@example.com"]]}]}, True),
    ("ann@example.com", True),  # a bare string is a value too
    ({"ann@example.com": "renamed"}, False),  # a key is not a value
    ({"note": "write to ann@example.com"}, False),  # nor is a substring
    ({"email": "ann@example.com.evil"}, False),
    ({"n": 1, "b": True, "z": None}, False),
    (None, False),
]


@pytest.mark.parametrize("changes, named", NAMES)
async def test_an_audit_row_names_a_person_by_a_whole_value_at_any_depth(
    raw: asyncpg.Connection, changes: Any, named: bool
) -> None:
    found = await raw.fetchval(
        "SELECT coalesce(audit_names($1::jsonb, 'ann@example.com'), false)",
        None if changes is None else json.dumps(changes),
    )
    assert found is named


async def test_the_audit_rows_of_one_person_are_found_through_indexes(
    raw: asyncpg.Connection,
) -> None:
    """The erase confirmation page read the whole audit trail to count a person's rows (181 ms at
    29,664 events, the studio's 5 s budget near 800,000). Each way an audit row names them
    (subject, actor, the actor's e-mail, the e-mail as a value in `changes`) now has an index
    (migration 12). With sequential scans priced out, the count's plan reads audit_event only
    through them: without one of the indexes it would still have to scan the table."""
    user, _ = await _person_with_history()
    async with raw.transaction():
        await raw.execute("SET LOCAL enable_seqscan = off")
        rows = await raw.fetch("EXPLAIN " + privacy.LIMITED_COUNTS, user.id, 1001)
    plan = "\n".join(row[0] for row in rows)
    assert "Seq Scan on audit_event" not in plan, plan
    for index in (
        "idx_audit_event_subject_51ae36",
        "idx_audit_event_actor_i_0df092",
        "audit_event_actor_email_lower",
        "audit_event_string_digests",
    ):
        assert f"on {index}" in plan, plan


async def test_the_erase_pages_capped_count_never_scans_the_trail(raw: asyncpg.Connection) -> None:
    """The erase page counts a person's audit rows up to a limit. With statistics (migration
    14), PostgreSQL expected thousands of rows for someone with 492, took the LIMIT to end a
    scan early, and tested all 82,390 events of the trail instead (560 ms at 10M; 8 ms through
    the indexes). The capped count runs with sequential scans priced out, so the indexes of
    migration 12 (test_the_audit_rows_of_one_person_are_found_through_indexes) are used."""

    class Watching:
        """The connection, noting the setting each count statement ran with."""

        def __init__(self, conn: asyncpg.Connection) -> None:
            self.conn, self.seen = conn, []

        def transaction(self, **options: Any) -> Any:
            return self.conn.transaction(**options)

        async def execute(self, *args: Any) -> Any:
            return await self.conn.execute(*args)

        async def fetchrow(self, *args: Any) -> Any:
            self.seen.append(await self.conn.fetchval("SHOW enable_seqscan"))
            return await self.conn.fetchrow(*args)

    user, _ = await _person_with_history()
    watching = Watching(raw)
    counts = await privacy.counts_in(watching, user.id, limit=1000)  # type: ignore[arg-type]
    assert counts["sessions"] == 2
    assert watching.seen == ["off"]


async def test_a_failed_erasure_changes_nothing(database_url: str, raw: asyncpg.Connection) -> None:
    user, _ = await _person_with_history()
    # The receipt, written after the deletes and the redaction, is refused: all must roll back.
    await raw.execute(
        "ALTER TABLE erasure_receipt ADD CONSTRAINT test_refused CHECK (false) NOT VALID"
    )
    await raw.execute(
        "INSERT INTO audit_event (action, model, row_id, subject_id, changes)"
        " VALUES ('update', 'user', $1::int, $1::int, '{\"username\": [\"a\", \"b\"]}')",
        user.id,
    )
    try:
        with pytest.raises(asyncpg.CheckViolationError):
            await privacy.erase_user(database_url, user.email, "test")
    finally:
        await raw.execute("ALTER TABLE erasure_receipt DROP CONSTRAINT test_refused")
    assert await User.filter(id=user.id).exists()
    assert await raw.fetchval("SELECT count(*) FROM erasure_receipt") == 0
    assert (
        await raw.fetchval("SELECT count(*) FROM conversation_session WHERE user_id = $1", user.id)
        == 2
    )
    assert await raw.fetchval("SELECT subject_id FROM audit_event") == user.id


async def test_erasure_without_its_key_is_a_clear_error_and_changes_nothing(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The receipts' key lives outside the database (COACH_DB_ERASURE_KEY_FILE or
    COACH_DB_ERASURE_KEY); without it nothing is erased, and the message says what to set."""
    user, _ = await _person_with_history()
    monkeypatch.delenv("COACH_DB_ERASURE_KEY")
    with pytest.raises(CoachDbError, match="COACH_DB_ERASURE_KEY_FILE"):
        await privacy.erase_user(database_url, user.email, "test")
    monkeypatch.setenv("COACH_DB_ERASURE_KEY", "short")
    with pytest.raises(CoachDbError, match="too short") as caught:
        await privacy.erase_user(database_url, user.email, "test")
    assert "short" not in str(caught.value).replace("too short", "")
    monkeypatch.setenv("COACH_DB_ERASURE_KEY_FILE", str(tmp_path / "missing.txt"))
    with pytest.raises(CoachDbError, match="Can't read the erasure key file"):
        await privacy.erase_user(database_url, user.email, "test")
    assert await User.filter(id=user.id).exists()
    key_file = tmp_path / "erasure_key.txt"
    key_file.write_text("f" * 64 + "\n")
    monkeypatch.setenv("COACH_DB_ERASURE_KEY_FILE", str(key_file))
    done = await privacy.erase_user(database_url, user.email, "test")
    assert done.email_hash == privacy.email_hash(user.email, b"f" * 64)
    assert [r["id"] for r in await privacy.list_erasures(database_url, user.email)] == [
        done.receipt_id
    ]


def test_erase_user_command_shows_counts_asks_and_lists_the_receipt(database_url: str) -> None:
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    asyncio.run(_user_in_subprocess_db(database_url, email))
    refused = coach_db_cmd("erase-user", email, url=database_url)
    assert refused.returncode == 1
    assert "messages" in refused.stderr and "confirm with --yes" in refused.stderr
    done = coach_db_cmd("erase-user", email, "--yes", url=database_url)
    assert done.returncode == 0, done.stderr
    assert "receipt #1" in done.stderr
    listed = coach_db_cmd("erasures", "--email", email, url=database_url)
    assert listed.returncode == 0, listed.stderr
    receipts = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["id"], r["counts"]) for r in receipts] == [
        (1, {"user": 1, "sessions": 1, "messages": 1, "audit_events_redacted": 0})
    ]
    assert receipts[0]["erased_by"].startswith("coach-db erase-user (")
    assert email not in listed.stdout
    again = coach_db_cmd("erase-user", email, "--yes", url=database_url)
    assert again.returncode == 1 and "No user with the e-mail" in again.stderr
    assert "erased on" in again.stderr and "receipt #1" in again.stderr  # not just "no user"
    assert "Traceback" not in again.stderr


def test_erasures_on_an_80_column_terminal_shows_whole_dates(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from rich.console import Console

    from coach_db.tools.cli import privacy as privacy_cli

    email = f"{uuid.uuid4().hex[:8]}@example.com"
    asyncio.run(_user_in_subprocess_db(database_url, email))
    done = coach_db_cmd("erase-user", email, "--yes", url=database_url)
    assert done.returncode == 0, done.stderr
    screen = io.StringIO()
    terminal = Console(file=screen, width=80, force_terminal=True, color_system=None)
    monkeypatch.setattr(privacy_cli, "out", terminal)
    monkeypatch.setenv("DATABASE_URL", database_url)
    privacy_cli.erasures(email=None, limit=5)
    text = screen.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", text), text


async def _user_in_subprocess_db(url: str, email: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        user_id = await conn.fetchval(
            "INSERT INTO \"user\" (email, username) VALUES ($1, 'x') RETURNING id", email
        )
        scenario = await conn.fetchval(
            "INSERT INTO scenario (name, slug, description, partner_persona,"
            " partner_system_prompt, coach_system_prompt, partner_model, coach_model)"
            " VALUES ('S', $1, 'd', 'p', 'p', 'c', 'm', 'm') RETURNING id",
            f"s-{uuid.uuid4().hex[:8]}",
        )
        session = await conn.fetchval(
            "INSERT INTO conversation_session (user_id, scenario_id) VALUES ($1, $2) RETURNING id",
            user_id,
            scenario,
        )
        await conn.execute(
            "INSERT INTO message (session_id, role, content) VALUES ($1, 'user', 'hi')", session
        )
    finally:
        await conn.close()


# --- export-transcripts -----------------------------------------------------------------------


async def _export(url: str, **filters: Any) -> list[dict[str, Any]]:
    buffer = io.StringIO()
    await privacy.export_transcripts(url, buffer, privacy.TranscriptFilter(**filters))
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


async def test_export_transcripts_writes_a_line_per_session_pseudonymised_and_scrubbed(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(privacy, "BATCH", 2)  # several batches and cursor fetches
    alice, bob = await make_user(), await make_user()
    scenario = await make_scenario()
    sessions = [
        await make_session(user=user, scenario=scenario) for user in (alice, bob, alice, bob, alice)
    ]
    await add_message(sessions[0], MessageRole.USER, f"I am {alice.email}, call +1 415-555-2671")
    await add_message(sessions[0], MessageRole.PARTNER, "It costs $45.00 on 2026-11-26.")
    for i in range(3):
        await add_message(sessions[3], MessageRole.USER, f"turn {i}")
    lines = await _export(database_url)
    assert len(lines) == len(sessions)
    assert [m["content"] for m in lines[0]["messages"]] == [
        "I am [email], call [phone]",
        "It costs $45.00 on 2026-11-26.",
    ]
    assert [m["content"] for m in lines[3]["messages"]] == ["turn 0", "turn 1", "turn 2"]
    assert lines[1]["messages"] == [] and lines[4]["messages"] == []
    assert {line["scenario"] for line in lines} == {scenario.slug}
    participants = [line["participant"] for line in lines]
    assert participants[0] == participants[2] == participants[4] != participants[1]
    assert participants[1] == participants[3]
    text = json.dumps(lines)
    for identity in (alice.email, bob.email, alice.username, '"user_id"'):
        assert identity not in text
    # A new export, a new key: pseudonyms cannot be linked across exports.
    assert (await _export(database_url))[0]["participant"] != participants[0]


async def test_export_transcripts_filters_by_scenario_status_and_date(database_url: str) -> None:
    scenario, other = await make_scenario(), await make_scenario()
    old = await make_session(
        scenario=scenario,
        status=SessionStatus.COMPLETED,
        started_at=datetime(2020, 1, 1, tzinfo=UTC),
        ended_at=datetime(2020, 1, 1, 1, tzinfo=UTC),
    )
    done = await make_session(scenario=scenario, status=SessionStatus.COMPLETED)
    active = await make_session(scenario=scenario)
    elsewhere = await make_session(scenario=other, status=SessionStatus.COMPLETED)
    # The export carries no session id: each session is recognised by its one message.
    for name, session in {"old": old, "done": done, "active": active, "else": elsewhere}.items():
        async with backfill():
            at = session.started_at + timedelta(minutes=1)
            await Message.create(session=session, role=MessageRole.USER, content=name, timestamp=at)

    async def names(**filters: Any) -> list[str]:
        lines = await _export(database_url, **filters)
        return sorted(line["messages"][0]["content"] for line in lines)

    assert await names(scenario=scenario.slug) == ["active", "done", "old"]
    assert await names(status=SessionStatus.COMPLETED) == ["done", "else", "old"]
    assert await names(since=date(2025, 1, 1)) == ["active", "done", "else"]
    both = await names(
        scenario=scenario.slug, status=SessionStatus.COMPLETED, since=date(2025, 1, 1)
    )
    assert both == ["done"]
    with pytest.raises(CoachDbError, match="No scenario with the slug 'nope'"):
        await _export(database_url, scenario="nope")


async def test_two_research_exports_share_no_key_and_carry_no_database_id_or_time(
    database_url: str, raw: asyncpg.Connection
) -> None:
    """Issue 18: nothing in an export equals a database id or a stored time, and the two
    exports of the same data have no pseudonym or other key in common."""
    # Ids far from any small number an export may hold (offsets, durations, versions).
    for sequence in ("user_id_seq", "conversation_session_id_seq", "message_id_seq"):
        await raw.execute(f"SELECT setval('{sequence}', 7654321)")
    scenario = await make_scenario()
    people = [await make_user(), await make_user()]
    for person in people * 2:
        session = await make_session(user=person, scenario=scenario)
        for i in range(3):
            await add_message(session, MessageRole.USER, f"turn {i}")
        await end_session(session)
    first, second = await _export(database_url), await _export(database_url)
    assert len(first) == len(second) == 4
    ids = [
        *(await raw.fetch('SELECT id FROM "user"')),
        *(await raw.fetch("SELECT id FROM conversation_session")),
        *(await raw.fetch("SELECT id FROM message")),
    ]
    times = await raw.fetch(
        "SELECT started_at AS t FROM conversation_session UNION ALL"
        " SELECT ended_at FROM conversation_session UNION ALL SELECT timestamp FROM message"
    )
    text = json.dumps(first) + json.dumps(second)
    for row in ids:
        assert str(row[0]) not in text
    for row in times:
        for shown in (row[0].isoformat(), row[0].strftime("%Y-%m-%dT%H:%M:%S"), str(row[0])):
            assert shown not in text
    assert str(int(times[0][0].timestamp())) not in text  # nor as epoch seconds

    def keys(lines: list[dict[str, Any]]) -> set[str]:
        shared = {"scenario", "scenario_version", "status", "started_month", "duration_seconds"}
        values = set()
        for line in lines:
            assert set(line) == shared | {"participant", "messages"}
            values.add(line["participant"])
        return values

    assert not keys(first) & keys(second)
    assert [m["offset_seconds"] for m in first[0]["messages"]] == sorted(
        m["offset_seconds"] for m in first[0]["messages"]
    )


def test_export_transcripts_command_writes_the_file_or_nothing(
    database_url: str, tmp_path: Path
) -> None:
    target = tmp_path / "out.jsonl"
    bad = coach_db_cmd(
        "export-transcripts", "--out", str(target), "--scenario", "nope", url=database_url
    )
    assert bad.returncode == 1 and "No scenario" in bad.stderr and not target.exists()
    assert list(tmp_path.iterdir()) == []  # no partial file left behind
    bad_date = coach_db_cmd(
        "export-transcripts", "--out", str(target), "--since", "2026-13-45", url=database_url
    )
    assert bad_date.returncode == 2 and "not a date" in bad_date.stderr
    ok = coach_db_cmd("export-transcripts", "--out", str(target), url=database_url)
    assert ok.returncode == 0, ok.stderr
    assert target.stat().st_mode & 0o777 == 0o600
