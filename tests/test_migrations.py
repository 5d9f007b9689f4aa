"""The committed migrations build the schema, match the models, and drift is caught offline."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

from coach_db.schema import check_drift
from tests.conftest import ROOT, run_aerich
from tests.processes import subprocess_env

CHECKS = "SELECT conname FROM pg_constraint WHERE contype = 'c' AND conrelid <> 0"
TRIGGERS = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
FUNCTIONS = "SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
INDEXES = "SELECT indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = 'public'"

# Migration 4 (studio_indexes): newest-first studio lists and the latest message, by name.
STUDIO_INDEXES = {
    "idx_conversatio_started_be669c CREATE INDEX idx_conversatio_started_be669c ON "
    "public.conversation_session USING btree (started_at, id)",
    "idx_message_timesta_b99ce8 CREATE INDEX idx_message_timesta_b99ce8 ON "
    'public.message USING btree ("timestamp", id)',
}

# What each hand-written migration adds, by name.
CONSTRAINTS_CHECKS = {
    "user_email_format",
    "user_username_not_blank",
    "scenario_slug_format",
    "scenario_name_not_blank",
    "conversation_session_status_valid",
    "conversation_session_total_messages_nonnegative",
    "conversation_session_duration_nonnegative",
    "conversation_session_ended_after_started",
    "message_role_valid",
    "message_content_not_empty",
    "message_metadata_is_object",
}
TRIGGERS_CHECKS = {
    "conversation_session_ended_at_matches_status",
    "conversation_session_duration_spans_start_to_end",
}
TRIGGERS_TRIGGERS = {
    "conversation_session_guard_insert",
    "conversation_session_guard_update",
    "message_count_inserted",
    "message_count_deleted",
    "message_count_updated",
    "message_count_truncated",
}
TRIGGERS_FUNCTIONS = {
    "conversation_session_guard",
    "message_count_inserted",
    "message_count_deleted",
    "message_count_updated",
    "message_count_truncated",
}
# Migration 7 (audit_and_erasure), by name.
AUDIT_CHECKS = {"audit_event_action_valid", "erasure_salt_one_row"}
AUDIT_TRIGGERS = {
    "audit_event_append_only",
    "audit_event_no_truncate",
    "erasure_receipt_append_only",
    "erasure_receipt_no_truncate",
    "erasure_salt_append_only",
    "erasure_salt_no_truncate",
}
AUDIT_TABLES = {"audit_event", "erasure_receipt", "erasure_salt"}
AUDIT_INDEXES = {
    "idx_audit_event_model_140cd9",
    "idx_audit_event_actor_i_0df092",
    "idx_audit_event_subject_51ae36",
    "idx_audit_event_action_ed6e8c",
    "idx_audit_event_created_5aa5b8",
    "idx_erasure_rec_email_h_a47a9a",
}
INDEX_NAMES = "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"
INVARIANTS_CHECKS = {
    "user_email_lower_trimmed",
    "message_content_max_chars",
    "message_metadata_max_bytes",
    "message_metadata_max_depth",
}


async def names(conn: asyncpg.Connection, query: str) -> set[str]:
    return {row[0] for row in await conn.fetch(query)}


def copy_of_repo(tmp_path: Path) -> Path:
    """pyproject.toml + migrations/ in a temp folder, so Aerich can never rewrite the real files."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(ROOT / "migrations", tmp_path / "migrations")
    return tmp_path


def migration_files(folder: Path) -> list[str]:
    return sorted(p.name for p in (folder / "migrations" / "models").glob("*.py"))


def test_migrate_after_upgrade_reports_no_changes(database_url: str, tmp_path: Path) -> None:
    work = copy_of_repo(tmp_path)
    before = migration_files(work)
    result = run_aerich("migrate", "--name", "should_be_empty", url=database_url, cwd=work)
    assert result.returncode == 0, result.stderr
    assert "No changes detected" in result.stdout
    assert migration_files(work) == before


def test_nothing_is_pending_after_upgrade(database_url: str) -> None:
    result = run_aerich("heads", url=database_url)
    assert result.returncode == 0, result.stderr
    assert "No available heads" in result.stdout
    history = run_aerich("history", url=database_url).stdout
    assert "_init.py" in history and "_constraints.py" in history


async def test_upgrade_builds_the_schema_on_an_empty_database(
    create_database: Callable[[], Awaitable[str]],
) -> None:
    url = await create_database()
    result = run_aerich("upgrade", url=url)
    assert result.returncode == 0, result.stderr
    conn = await asyncpg.connect(url)
    try:
        tables = {
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        }
        checks = await names(conn, CHECKS)
        triggers = await names(conn, TRIGGERS)
        indexes = await names(conn, INDEXES)
        applied = await conn.fetchval("SELECT count(*) FROM aerich")
    finally:
        await conn.close()
    assert (
        tables == {"user", "scenario", "conversation_session", "message", "aerich"} | AUDIT_TABLES
    )
    assert checks == CONSTRAINTS_CHECKS | TRIGGERS_CHECKS | INVARIANTS_CHECKS | AUDIT_CHECKS
    assert triggers == TRIGGERS_TRIGGERS | AUDIT_TRIGGERS
    assert indexes >= STUDIO_INDEXES
    assert applied == len(migration_files(ROOT))


async def test_hand_written_migrations_downgrade_and_upgrade_again(
    create_database: Callable[[], Awaitable[str]],
) -> None:
    url = await create_database()
    assert run_aerich("upgrade", url=url).returncode == 0
    conn = await asyncpg.connect(url)
    try:
        down = run_aerich("downgrade", "--yes", url=url)  # audit_and_erasure
        assert down.returncode == 0, down.stderr
        assert AUDIT_TRIGGERS.isdisjoint(await names(conn, TRIGGERS))
        assert AUDIT_CHECKS.isdisjoint(await names(conn, CHECKS))
        assert AUDIT_INDEXES.isdisjoint(await names(conn, INDEX_NAMES))
        assert "append_only" not in await names(conn, FUNCTIONS)
        tables = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        assert AUDIT_TABLES.isdisjoint(await names(conn, tables))
        down = run_aerich("downgrade", "--yes", url=url)  # studio_indexes
        assert down.returncode == 0, down.stderr
        assert STUDIO_INDEXES.isdisjoint(await names(conn, INDEXES))
        down = run_aerich("downgrade", "--yes", url=url)  # invariants
        assert down.returncode == 0, down.stderr
        found = [await names(conn, q) for q in (CHECKS, TRIGGERS, FUNCTIONS)]
        assert found == [
            CONSTRAINTS_CHECKS | TRIGGERS_CHECKS,
            TRIGGERS_TRIGGERS,
            TRIGGERS_FUNCTIONS,
        ]
        columns = (
            "SELECT attname FROM pg_attribute WHERE attrelid = 'conversation_session'::regclass"
        )
        assert "version" not in await names(conn, columns)
        down = run_aerich("downgrade", "--yes", url=url)  # conversation_triggers
        assert down.returncode == 0, down.stderr
        found = [await names(conn, q) for q in (CHECKS, TRIGGERS, FUNCTIONS)]
        assert found == [CONSTRAINTS_CHECKS, set(), set()]
        down = run_aerich("downgrade", "--yes", url=url)  # constraints
        assert down.returncode == 0, down.stderr
        assert await names(conn, CHECKS) == set()
        assert run_aerich("upgrade", url=url).returncode == 0
        found = [await names(conn, q) for q in (CHECKS, TRIGGERS, FUNCTIONS)]
        everything = [
            CONSTRAINTS_CHECKS | TRIGGERS_CHECKS | INVARIANTS_CHECKS | AUDIT_CHECKS,
            TRIGGERS_TRIGGERS | AUDIT_TRIGGERS,
            TRIGGERS_FUNCTIONS | {"append_only"},
        ]
        assert found == everything
        assert await names(conn, INDEXES) >= STUDIO_INDEXES
        assert await names(conn, INDEX_NAMES) >= AUDIT_INDEXES
        assert await conn.fetchval("SELECT length(salt) FROM erasure_salt") == 64
    finally:
        await conn.close()


def test_drift_check_is_clean_for_the_committed_models() -> None:
    drift = check_drift()
    assert drift.clean, drift.sql
    assert "No changes detected" in drift.output


def test_drift_check_catches_a_model_change_without_a_migration(tmp_path: Path) -> None:
    models = (ROOT / "coach_db" / "models.py").read_text()
    anchor = "    is_active = fields.BooleanField("
    changed = models.replace(anchor, "    difficulty = fields.IntField(default=1)\n" + anchor, 1)
    assert changed != models, "the anchor line in models.py moved: update this test"
    (tmp_path / "drifted_models.py").write_text(changed)
    (tmp_path / "drifted_config.py").write_text(
        "TORTOISE_ORM = {'connections': {'default': 'postgres://offline@127.0.0.1:1/offline'},"
        " 'apps': {'models': {'models': ['drifted_models', 'aerich.models']}}}\n"
    )
    drift = check_drift(tortoise_orm="drifted_config.TORTOISE_ORM", pythonpath=tmp_path)
    assert not drift.clean
    assert 'ADD "difficulty" INT NOT NULL' in drift.sql
    assert migration_files(ROOT) == sorted(  # the real migrations folder is untouched
        p.name for p in (ROOT / "migrations" / "models").glob("*.py")
    )


def test_coach_db_check_command_needs_no_database() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "coach_db", "check"],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "No drift" in result.stderr
