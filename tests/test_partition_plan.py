"""The partitioning plan (docs/partition-message.sql) applies after the real migrations, and the
package's conversation tests pass against the partitioned table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import ROOT
from tests.processes import subprocess_env

PLAN = ROOT / "docs" / "partition-message.sql"


def small_ranges(tmp_path: Path) -> Path:
    """The plan with partitions of 4 session ids, so the tests' few sessions spread over p0,
    p1, p2 and the default partition, and moving a message crosses partitions."""
    sql = PLAN.read_text()
    for big, small in (("1500000", "12"), ("1000000", "8"), ("500000", "4")):
        sql = sql.replace(big, small)
    path = tmp_path / "plan.sql"
    path.write_text(sql)
    return path


async def test_the_plan_partitions_message_keeping_names_and_triggers(
    create_migrated_database: object, tmp_path: Path
) -> None:
    url: str = await create_migrated_database()  # type: ignore[operator]
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute(small_ranges(tmp_path).read_text())
        assert (
            await conn.fetchval("SELECT relkind::text FROM pg_class WHERE relname = 'message'")
            == "p"
        )
        partitions = await conn.fetch(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'message'::regclass ORDER BY c.relname"
        )
        assert [p["relname"] for p in partitions] == [
            "message_default",
            "message_p0",
            "message_p1",
            "message_p2",
        ]
        triggers = await conn.fetch(
            "SELECT tgrelid::regclass::text AS t, tgname FROM pg_trigger"
            " WHERE NOT tgisinternal AND tgname LIKE 'message_count_%' ORDER BY tgname"
        )
        assert {(t["t"], t["tgname"]) for t in triggers} == {
            ("message", "message_count_deleted"),
            ("message", "message_count_inserted"),
            ("message", "message_count_truncated"),
            ("message", "message_count_updated"),
        }
        constraints = {
            r["conname"]
            for r in await conn.fetch(
                "SELECT conname FROM pg_constraint WHERE conrelid = 'message'::regclass"
            )
        }
        assert {
            "message_pkey",
            "message_session_id_fkey",
            "message_role_valid",
            "message_content_max_chars",
            "message_metadata_max_bytes",
        } <= constraints
        indexes = {
            r["indexname"]
            for r in await conn.fetch(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'message'"
            )
        }
        assert {"idx_message_session_f19c74", "idx_message_timesta_b99ce8"} <= indexes
    finally:
        await conn.close()


@pytest.mark.once
def test_the_conversation_tests_pass_on_the_partitioned_table(
    server_url: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--basetemp={tmp_path / 'bt'}",
            "tests/test_conversations.py",
        ],
        env=subprocess_env(
            TEST_DATABASE_URL=server_url,
            COACH_DB_TEST_SCHEMA_SQL=str(small_ranges(tmp_path)),
        ),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout
