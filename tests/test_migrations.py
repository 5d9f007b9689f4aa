"""The committed migrations build the schema, match the models, and drift is caught offline."""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest
from typer.testing import CliRunner

from coach_db.errors import MigrationsMissing
from coach_db.migrations import check_drift, deploy, migration_status
from coach_db.tools import cli
from tests.conftest import ROOT, run_aerich
from tests.processes import subprocess_env

CHECKS = "SELECT conname FROM pg_constraint WHERE contype = 'c' AND conrelid <> 0"
TRIGGERS = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
FUNCTIONS = "SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
TABLES = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
INDEXES = "SELECT indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = 'public'"

# Migration 4 (studio_indexes): newest-first studio lists and the latest message, by name.
STUDIO_INDEXES = {
    "idx_conversatio_started_be669c CREATE INDEX idx_conversatio_started_be669c ON "
    "public.conversation_session USING btree (started_at, id)",
    "idx_message_timesta_b99ce8 CREATE INDEX idx_message_timesta_b99ce8 ON "
    'public.message USING btree ("timestamp", id)',
}

# Migration 5 (search_and_dashboard): the message search's GIN index and the dashboard's rollups.
SEARCH_INDEX = (
    "message_content_words CREATE INDEX message_content_words ON public.message USING gin "
    "(to_tsvector('simple'::regconfig, content))"
)
ROLLUP_TABLES = {"message_daily", "session_by_status"}
ROLLUP_TRIGGERS = {
    "message_daily_inserted",
    "message_daily_deleted",
    "message_daily_updated",
    "message_daily_truncated",
    "session_by_status_inserted",
    "session_by_status_deleted",
    "session_by_status_updated",
    "session_by_status_truncated",
}
ROLLUP_FUNCTIONS = {"message_daily_count", "session_by_status_count", "message_has_words"}

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
# Migration 11 (readable_refusals): the user table's refusals with a message and a HINT.
REFUSALS_TRIGGERS = {"user_refuse_invalid"}
REFUSALS_FUNCTIONS = {"user_refuse_invalid"}
AUDIT_INDEXES = {
    "idx_audit_event_model_140cd9",
    "idx_audit_event_actor_i_0df092",
    "idx_audit_event_subject_51ae36",
    "idx_audit_event_action_ed6e8c",
    "idx_audit_event_created_5aa5b8",
    "idx_erasure_rec_email_h_a47a9a",
}
INDEX_NAMES = "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"
# Migration 8 (audit_chain), by name.
AUDIT_CHAIN_VERSION = "8"
CHAIN_CHECKS = {"audit_chain_head_one_row", "erasure_receipt_email_hash_key_valid"}
CHAIN_TRIGGERS = {
    "audit_event_check_insert",
    "audit_event_seal",
    "audit_event_head",
    "audit_chain_head_no_truncate",
}
CHAIN_TABLES = {"audit_chain_head"}
CHAIN_FUNCTIONS = {
    "audit_enc",
    "audit_sha256",
    "audit_by_owner",
    "audit_names",
    "audit_written_here",
    "audit_seal_row",
    "audit_event_check_insert",
    "audit_event_seal",
    "audit_chain_head_move",
    "erasure_counts",
    "erase_person",
}
# Migration 10 (idempotency_keys), by name.
IDEMPOTENCY_CHECKS = {
    "message_idempotency_key_length",
    "conversation_session_idempotency_key_length",
}
IDEMPOTENCY_INDEXES = {
    "message_session_idempotency_key",
    "conversation_session_user_idempotency_key",
}
INVARIANTS_CHECKS = {
    "user_email_lower_trimmed",
    "message_content_max_chars",
    "message_metadata_max_bytes",
    "message_metadata_max_depth",
}
# Migration 9: the sessions list's filters with the sort column, and a foreign key.
FILTER_INDEXES = {
    "conversation_session_status_started",
    "conversation_session_status_id",
    "conversation_session_scenario_started",
    "conversation_session_scenario_id",
    "conversation_session_scenario_version",
}

# Migration 12 (audit_person_indexes): a person's audit rows found by index; audit_names is
# redefined on top of the two new functions.
PERSON_INDEXES = {"audit_event_actor_email_lower", "audit_event_string_digests"}
PERSON_FUNCTIONS = {"audit_string_digests", "audit_names_exactly"}
# Migration 13 (audit_model_order): the audit list of one model, newest first.
MODEL_ORDER_INDEX = "audit_event_model_id"
# Migration 15 (audit_row_order): the audit list of one row id, any model, newest first.
ROW_ORDER_INDEX = "audit_event_row_id"

# Migration 6 (prompt_versions): versions of scenarios and studio roles, by name.
VERSIONS_CHECKS = {"scenario_version_number_positive", "user_role_valid"}
VERSIONS_TRIGGERS = {
    "scenario_version_on_insert",
    "scenario_version_on_update",
    "scenario_version_immutable",
    "conversation_session_scenario_version_insert",
    "conversation_session_scenario_version_update",
    "user_credentials_version",
}
VERSIONS_FUNCTIONS = {
    "scenario_version_record",
    "scenario_version_immutable",
    "conversation_session_scenario_version",
    "user_credentials_version",
}
VERSIONS_FOREIGN_KEY = "fk_conversa_scenario_59b01d34"  # session -> version, ON DELETE RESTRICT
FOREIGN_KEYS = "SELECT conname FROM pg_constraint WHERE contype = 'f'"


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
        tables
        == {
            "user",
            "scenario",
            "scenario_version",
            "conversation_session",
            "message",
            "aerich",
        }
        | ROLLUP_TABLES
        | AUDIT_TABLES
        | CHAIN_TABLES
    )
    assert checks == (
        CONSTRAINTS_CHECKS
        | TRIGGERS_CHECKS
        | INVARIANTS_CHECKS
        | VERSIONS_CHECKS
        | AUDIT_CHECKS
        | CHAIN_CHECKS
        | IDEMPOTENCY_CHECKS
    )
    assert triggers == (
        TRIGGERS_TRIGGERS
        | ROLLUP_TRIGGERS
        | VERSIONS_TRIGGERS
        | AUDIT_TRIGGERS
        | CHAIN_TRIGGERS
        | REFUSALS_TRIGGERS
    )
    assert indexes >= STUDIO_INDEXES | {SEARCH_INDEX}
    assert applied == len(migration_files(ROOT))


async def test_hand_written_migrations_downgrade_and_upgrade_again(
    create_database: Callable[[], Awaitable[str]],
) -> None:
    url = await create_database()
    assert run_aerich("upgrade", url=url).returncode == 0
    conn = await asyncpg.connect(url)
    try:
        assert ROW_ORDER_INDEX in await names(conn, INDEX_NAMES)
        down = run_aerich("downgrade", "--yes", url=url)  # audit_row_order
        assert down.returncode == 0, down.stderr
        assert ROW_ORDER_INDEX not in await names(conn, INDEX_NAMES)
        down = run_aerich("downgrade", "--yes", url=url)  # analyze_audit_event
        assert down.returncode == 0, down.stderr
        down = run_aerich("downgrade", "--yes", url=url)  # audit_model_order
        assert down.returncode == 0, down.stderr
        assert MODEL_ORDER_INDEX not in await names(conn, INDEX_NAMES)
        down = run_aerich("downgrade", "--yes", url=url)  # audit_person_indexes
        assert down.returncode == 0, down.stderr
        assert PERSON_INDEXES.isdisjoint(await names(conn, INDEX_NAMES))
        assert PERSON_FUNCTIONS.isdisjoint(await names(conn, FUNCTIONS))
        assert "audit_names" in await names(conn, FUNCTIONS)
        down = run_aerich("downgrade", "--yes", url=url)  # readable_refusals
        assert down.returncode == 0, down.stderr
        assert REFUSALS_TRIGGERS.isdisjoint(await names(conn, TRIGGERS))
        assert REFUSALS_FUNCTIONS.isdisjoint(await names(conn, FUNCTIONS))
        down = run_aerich("downgrade", "--yes", url=url)  # idempotency_keys
        assert down.returncode == 0, down.stderr
        assert IDEMPOTENCY_CHECKS.isdisjoint(await names(conn, CHECKS))
        assert IDEMPOTENCY_INDEXES.isdisjoint(await names(conn, INDEX_NAMES))
        columns = "SELECT attname FROM pg_attribute WHERE attrelid = 'message'::regclass"
        assert "idempotency_key" not in await names(conn, columns)
        assert await names(conn, INDEX_NAMES) >= FILTER_INDEXES
        down = run_aerich("downgrade", "--yes", url=url)  # studio_filter_indexes (issue 20)
        assert down.returncode == 0, down.stderr
        assert FILTER_INDEXES.isdisjoint(await names(conn, INDEX_NAMES))
        down = run_aerich("downgrade", "--yes", url=url)  # audit_chain
        assert down.returncode == 0, down.stderr
        assert CHAIN_TRIGGERS.isdisjoint(await names(conn, TRIGGERS))
        assert CHAIN_FUNCTIONS.isdisjoint(await names(conn, FUNCTIONS))
        assert await names(conn, TRIGGERS) >= AUDIT_TRIGGERS
        # A trail and a studio receipt from before: chained, and the e-mail made a staff id.
        await conn.execute(EXISTING_TRAIL)
        assert run_aerich("upgrade", url=url).returncode == 0
        await _trail_upgraded(conn, url)
        # Migration 14 analysed the trail: the expression indexes of migration 12 have
        # statistics (without them the planner guessed an actor's share of the trail).
        expression_stats = "SELECT count(*) FROM pg_stats WHERE tablename = $1"
        assert await conn.fetchval(expression_stats, "audit_event_actor_email_lower") > 0
        # Back to before audit_chain (-v: that migration and every one after it).
        down = run_aerich("downgrade", "-v", AUDIT_CHAIN_VERSION, "--yes", url=url)
        assert down.returncode == 0, down.stderr
        assert CHAIN_FUNCTIONS.isdisjoint(await names(conn, FUNCTIONS))
        down = run_aerich("downgrade", "--yes", url=url)  # audit_and_erasure
        assert down.returncode == 0, down.stderr
        assert AUDIT_TRIGGERS.isdisjoint(await names(conn, TRIGGERS))
        assert AUDIT_CHECKS.isdisjoint(await names(conn, CHECKS))
        assert AUDIT_INDEXES.isdisjoint(await names(conn, INDEX_NAMES))
        assert "append_only" not in await names(conn, FUNCTIONS)
        tables = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        assert AUDIT_TABLES.isdisjoint(await names(conn, tables))
        down = run_aerich("downgrade", "--yes", url=url)  # prompt_versions
        assert down.returncode == 0, down.stderr
        found = [await names(conn, q) for q in (CHECKS, TRIGGERS, FUNCTIONS)]
        assert found == [
            CONSTRAINTS_CHECKS | TRIGGERS_CHECKS | INVARIANTS_CHECKS,
            TRIGGERS_TRIGGERS | ROLLUP_TRIGGERS,
            TRIGGERS_FUNCTIONS | ROLLUP_FUNCTIONS,
        ]
        assert VERSIONS_FOREIGN_KEY not in await names(conn, FOREIGN_KEYS)
        assert await conn.fetchval("SELECT to_regclass('scenario_version')") is None
        down = run_aerich("downgrade", "--yes", url=url)  # search_and_dashboard
        assert down.returncode == 0, down.stderr
        assert SEARCH_INDEX not in await names(conn, INDEXES)
        assert await names(conn, INDEXES) >= STUDIO_INDEXES
        assert await names(conn, TRIGGERS) == TRIGGERS_TRIGGERS
        assert ROLLUP_FUNCTIONS.isdisjoint(await names(conn, FUNCTIONS))
        assert ROLLUP_TABLES.isdisjoint(await names(conn, TABLES))
        await conn.execute(EXISTING_ROWS)  # for migration 5's backfill, when upgrading again
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
        found = [await names(conn, q) for q in (CHECKS, TRIGGERS, FUNCTIONS, TABLES)]
        everything = [
            CONSTRAINTS_CHECKS
            | TRIGGERS_CHECKS
            | INVARIANTS_CHECKS
            | VERSIONS_CHECKS
            | AUDIT_CHECKS
            | CHAIN_CHECKS
            | IDEMPOTENCY_CHECKS,
            TRIGGERS_TRIGGERS
            | ROLLUP_TRIGGERS
            | VERSIONS_TRIGGERS
            | AUDIT_TRIGGERS
            | CHAIN_TRIGGERS
            | REFUSALS_TRIGGERS,
            TRIGGERS_FUNCTIONS
            | ROLLUP_FUNCTIONS
            | VERSIONS_FUNCTIONS
            | {"append_only"}
            | CHAIN_FUNCTIONS
            | REFUSALS_FUNCTIONS
            | PERSON_FUNCTIONS,
        ]
        assert found[:3] == everything and found[3] >= ROLLUP_TABLES | AUDIT_TABLES
        assert await names(conn, INDEXES) >= STUDIO_INDEXES | {SEARCH_INDEX}
        assert await names(conn, INDEX_NAMES) >= (
            AUDIT_INDEXES
            | IDEMPOTENCY_INDEXES
            | PERSON_INDEXES
            | {MODEL_ORDER_INDEX, ROW_ORDER_INDEX}
        )
        assert await conn.fetchval("SELECT length(salt) FROM erasure_salt") == 64
        assert VERSIONS_FOREIGN_KEY in await names(conn, FOREIGN_KEYS)
        per_day = await conn.fetch(
            "SELECT day, sum(messages) AS n FROM message_daily GROUP BY day ORDER BY day"
        )
        by_status = await conn.fetch(
            "SELECT status, sum(sessions) AS n, sum(timed) AS timed,"
            " sum(duration_seconds) AS seconds FROM session_by_status GROUP BY 1 ORDER BY 1"
        )
    finally:
        await conn.close()
    # The rollups started from a backfill of the rows already there.
    assert [(str(r["day"]), r["n"]) for r in per_day] == [("2026-01-01", 2), ("2026-01-02", 1)]
    assert [tuple(r.values()) for r in by_status] == [("active", 1, 0, 0), ("completed", 1, 1, 60)]


# Migration 7's trail: three audit rows (one by a staff member) and a studio receipt.
EXISTING_TRAIL = """
    INSERT INTO "user" (email, username, is_staff) VALUES ('boss@example.com', 'Boss', true);
    INSERT INTO audit_event (actor_id, actor_email, action, model, row_id, changes)
        SELECT id, email, 'update', 'scenario', 1, '{"name": ["a", "b"]}' FROM "user"
         WHERE email = 'boss@example.com';
    INSERT INTO audit_event (action, model, row_id)
        VALUES ('view', 'message', 2), ('erase', 'user', 3);
    INSERT INTO erasure_receipt (email_hash, counts, erased_by)
        VALUES (repeat('a', 64), '{}', 'studio: boss@example.com'),
               (repeat('b', 64), '{}', 'studio: gone@example.com');
"""


async def _trail_upgraded(conn: asyncpg.Connection, url: str) -> None:
    from coach_db.tools import audit_chain

    report = await audit_chain.verify(url)
    assert report.problem is None and report.rows == 3, report
    boss = await conn.fetchval("SELECT id FROM \"user\" WHERE email = 'boss@example.com'")
    assert await conn.fetchval("SELECT seq FROM audit_chain_head") == 3
    assert [
        r["erased_by"]
        for r in await conn.fetch("SELECT erased_by FROM erasure_receipt ORDER BY id")
    ] == [
        f"studio: staff #{boss}",
        "studio: [erased]",
    ]
    assert set(
        await conn.fetchval("SELECT array_agg(DISTINCT email_hash_key) FROM erasure_receipt")
    ) == {"database salt"}
    await conn.execute('DELETE FROM "user" WHERE id = $1', boss)


# Two sessions (one ended after a minute) and three messages on two UTC days, by raw SQL.
EXISTING_ROWS = """
    INSERT INTO "user" (id, email, username) VALUES (1, 'a@example.com', 'a');
    INSERT INTO scenario (id, slug, name, description, partner_persona, partner_system_prompt,
                          coach_system_prompt, partner_model, coach_model)
    VALUES (1, 's', 'S', 'd', 'p', 'p', 'c', 'm', 'm');
    INSERT INTO conversation_session (id, user_id, scenario_id, started_at)
    VALUES (1, 1, 1, '2026-01-01 10:00Z'), (2, 1, 1, '2026-01-01 10:00Z');
    INSERT INTO message (session_id, role, content, timestamp) VALUES
        (1, 'user', 'one', '2026-01-01 10:00:10Z'), (1, 'user', 'two', '2026-01-01 23:59:59Z'),
        (1, 'user', 'three', '2026-01-02 00:00:00Z');
    UPDATE conversation_session SET status = 'completed', ended_at = '2026-01-01 10:01Z'
    WHERE id = 2;
"""


def test_drift_check_is_clean_for_the_committed_models() -> None:
    drift = check_drift()
    assert drift.clean, drift.sql
    assert "No changes detected" in drift.output


def drifted_models(tmp_path: Path) -> str:
    """A copy of the models with one more column, importable from tmp_path; its config path."""
    models = (ROOT / "coach_db" / "models.py").read_text()
    anchor = "    is_active = fields.BooleanField("
    changed = models.replace(anchor, "    difficulty = fields.IntField(default=1)\n" + anchor, 1)
    assert changed != models, "the anchor line in models.py moved: update this test"
    (tmp_path / "drifted_models.py").write_text(changed)
    (tmp_path / "drifted_config.py").write_text(
        "TORTOISE_ORM = {'connections': {'default': 'postgres://offline@127.0.0.1:1/offline'},"
        " 'apps': {'models': {'models': ['drifted_models', 'aerich.models']}}}\n"
    )
    return "drifted_config.TORTOISE_ORM"


def test_drift_check_catches_a_model_change_without_a_migration(tmp_path: Path) -> None:
    drift = check_drift(tortoise_orm=drifted_models(tmp_path), pythonpath=tmp_path)
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
    # On stdout, like `coach-db status`: both are reports, and a CI gate pipes them alike.
    assert result.stdout.splitlines() == [
        "✓ Generated files: types.py and models.pyi match the models.",
        "✓ Migrations: the models match the last migration.",
        "All checks passed.",
    ]
    assert result.stderr == ""


def test_coach_db_check_with_stale_generated_files_says_so_coherently(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not "Drift: …" twice, then "No drift", then exit 1: one line per check, then why."""
    from coach_db.tools import codegen

    stale = [ROOT / "coach_db" / "types.py", ROOT / "coach_db" / "models.pyi"]
    monkeypatch.setattr(codegen, "drift", lambda: stale)
    result = CliRunner().invoke(cli.app, ["check"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("✗ Generated files: types.py is not what")
    assert lines[1].startswith("✗ Generated files: models.pyi is not what")
    assert lines[2] == "✓ Migrations: the models match the last migration."
    assert lines[3] == "Check failed: 2 generated file(s) out of date."
    assert "No drift" not in result.stdout
    help_text = CliRunner().invoke(cli.app, ["check", "--help"]).stdout
    assert "types.py" in help_text and "migration" in help_text


def test_coach_db_check_on_drift_shows_the_sql_difference_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not Aerich's whole file (its base64 MODELS_STATE was ~40 of 45 lines): the SQL."""
    config = drifted_models(tmp_path)
    monkeypatch.setattr(
        cli.migrations,
        "check_drift",
        functools.partial(check_drift, tortoise_orm=config, pythonpath=tmp_path),
    )
    result = CliRunner().invoke(cli.app, ["check"])
    assert result.exit_code == 1
    assert result.stderr == ""
    assert 'ALTER TABLE "scenario" ADD "difficulty" INT NOT NULL DEFAULT 1;' in result.stdout
    for noise in ("MODELS_STATE", "async def", "downgrade", "DROP COLUMN"):
        assert noise not in result.stdout, result.stdout
    assert len(result.stdout.strip().splitlines()) <= 4, result.stdout


async def test_deploy_without_migration_files_is_an_error_naming_the_folder(
    create_database: Callable[[], Awaitable[str]], tmp_path: Path
) -> None:
    """An install without its migrations never reports an empty database "up to date"."""
    url = await create_database()
    (tmp_path / "models").mkdir()
    for folder in (tmp_path / "absent", tmp_path):
        with pytest.raises(MigrationsMissing, match=f"No migration files in {folder / 'models'}"):
            await deploy(url, folder)
        with pytest.raises(MigrationsMissing):
            await migration_status(url, folder)
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT to_regclass('aerich')") is None  # nothing applied
    finally:
        await conn.close()
